"""Templates: every version of each (name, language); the highest version is current.

The message path reads them from :class:`TemplateCache`: every version in memory,
tagged with the templates' generation (migration 0008) read in the same statement.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from services.notifications.domain.templates import Template
from shared.db import Conn


def _template(row: asyncpg.Record) -> Template:
    return Template(name=row["name"], version=row["version"], language=row["language"],
                    body=row["body"], variables=dict(row["variables"]), urgent=row["urgent"],
                    policy=row["policy"])


@dataclass(frozen=True)
class TemplateSet:
    """Every version of every template, as of one generation."""

    generation: int
    current: dict[tuple[str, str], Template]
    versions: dict[tuple[str, str], list[Template]]  # (name, language) -> by version
    shipped: frozenset[tuple[str, str, int]]  # versions that came with a migration

    def shipped_with_the_code(self, t: Template) -> bool:
        return (t.name, t.language, t.version) in self.shipped


async def template_set(conn: Conn) -> TemplateSet:
    """Every version and the generation they are of, in one statement (one snapshot)."""
    rows = await conn.fetch(
        "SELECT g.generation, t.* FROM template_generation g"
        " LEFT JOIN templates t ON true ORDER BY t.name, t.language, t.version")
    generation = rows[0]["generation"]
    versions: dict[tuple[str, str], list[Template]] = {}
    shipped: set[tuple[str, str, int]] = set()
    for r in rows:
        if r["name"] is None:
            continue  # no template at all
        versions.setdefault((r["name"], r["language"]), []).append(_template(r))
        if r["created_by"] == "migration":
            shipped.add((r["name"], r["language"], r["version"]))
    current = {key: vs[-1] for key, vs in versions.items()}
    return TemplateSet(generation, current, versions, frozenset(shipped))


@dataclass
class TemplateCache:
    """The templates of one schema, kept in memory while their generation holds.

    :meth:`get` takes the generation the caller read in its own statement (see
    ``contacts.look_up``): the set in memory is used only if it is of that
    generation, else every version is read again (with the generation it is of).
    A template edited by anyone, in any process, is so used by every message whose
    transaction read after the edit committed; nothing is cached by time.
    """

    _set: TemplateSet | None = None

    async def get(self, conn: Conn, generation: int) -> TemplateSet:
        cached = self._set
        if cached is not None and cached.generation == generation:
            return cached
        # read again (two concurrent readers both read: harmless); a generation is only
        # ever moved forward, so the newest set read is the one kept
        fresh = await template_set(conn)
        if self._set is None or fresh.generation >= self._set.generation:
            self._set = fresh
        return fresh


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
