"""Templates: every version of each (name, language); the highest version is current."""

from __future__ import annotations

import asyncpg

from services.notifications.domain.templates import Template
from shared.db import Conn


def _template(row: asyncpg.Record) -> Template:
    return Template(name=row["name"], version=row["version"], language=row["language"],
                    body=row["body"], variables=dict(row["variables"]), urgent=row["urgent"],
                    policy=row["policy"])


async def current_templates(conn: Conn) -> dict[tuple[str, str], Template]:
    rows = await conn.fetch(
        "SELECT DISTINCT ON (name, language) * FROM templates"
        " ORDER BY name, language, version DESC")
    return {(r["name"], r["language"]): _template(r) for r in rows}


async def template_versions(conn: Conn, name: str,
                            language: str | None = None) -> list[Template]:
    rows = await conn.fetch(
        "SELECT * FROM templates WHERE name = $1 AND ($2::text IS NULL OR language = $2)"
        " ORDER BY language, version", name, language)
    return [_template(r) for r in rows]


async def shipped_with_the_code(conn: Conn, name: str, language: str, version: int) -> bool:
    """True when the version came with a migration, not from an operator."""
    author = await conn.fetchval(
        "SELECT created_by FROM templates WHERE name = $1 AND language = $2 AND version = $3",
        name, language, version)
    return bool(author == "migration")


async def add_template_version(conn: Conn, name: str, language: str, body: str,
                               variables: dict[str, str], urgent: bool, policy: str,
                               created_by: str) -> Template:
    # Serialise concurrent authors of one template: the next version is max + 1.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"template.{name}")
    version = await conn.fetchval(
        "SELECT COALESCE(max(version), 0) + 1 FROM templates WHERE name = $1 AND language = $2",
        name, language)
    row = await conn.fetchrow(
        "INSERT INTO templates (name, language, version, body, variables, urgent, policy,"
        " created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
        name, language, version, body, variables, urgent, policy, created_by)
    assert row is not None
    return _template(row)
