"""Partners: rows ↔ ``Partner``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.clients.repository import Conn

COLUMNS = ("partner_id, kind, name, client_id, keycloak_id, scopes, status, created_by,"
           " created_at, secret_rotated_at, disabled_by, disabled_at, version")


@dataclass(frozen=True)
class Partner:
    partner_id: str
    kind: str
    name: str
    client_id: str
    keycloak_id: str | None
    scopes: list[str]
    status: str
    created_by: str
    created_at: datetime
    secret_rotated_at: datetime
    disabled_by: str | None
    disabled_at: datetime | None
    version: int


def _partner(row: asyncpg.Record | None) -> Partner:
    assert row is not None, "the partner's row was locked by the caller"
    return Partner(**{**dict(row), "scopes": list(row["scopes"])})


async def insert(conn: Conn, *, partner_id: str, kind: str, name: str, client_id: str,
                 scopes: list[str], created_by: str) -> Partner | None:
    """The new partner, or None if the id is taken."""
    row = await conn.fetchrow(
        "INSERT INTO partners (partner_id, kind, name, client_id, scopes, created_by)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
        f" RETURNING {COLUMNS}", partner_id, kind, name, client_id, scopes, created_by)
    return _partner(row) if row else None


async def get(conn: Conn, partner_id: str, *, for_update: bool = False) -> Partner | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM partners WHERE partner_id = $1{lock}",
                              partner_id)
    return _partner(row) if row else None


async def set_keycloak_id(conn: Conn, partner_id: str, keycloak_id: str) -> Partner:
    row = await conn.fetchrow(
        "UPDATE partners SET keycloak_id = $2, version = version + 1 WHERE partner_id = $1"
        f" RETURNING {COLUMNS}", partner_id, keycloak_id)
    return _partner(row)


async def secret_rotated(conn: Conn, partner_id: str) -> Partner:
    row = await conn.fetchrow(
        "UPDATE partners SET secret_rotated_at = now(), version = version + 1"
        f" WHERE partner_id = $1 RETURNING {COLUMNS}", partner_id)
    return _partner(row)


async def set_status(conn: Conn, partner_id: str, status: str, by: str) -> Partner:
    row = await conn.fetchrow(
        "UPDATE partners SET status = $2, disabled_by = CASE WHEN $2 = 'disabled' THEN $3"
        " END, disabled_at = CASE WHEN $2 = 'disabled' THEN now() END,"
        f" version = version + 1 WHERE partner_id = $1 RETURNING {COLUMNS}",
        partner_id, status, by)
    return _partner(row)


async def page(conn: Conn, *, kind: str | None, limit: int, after: str | None
               ) -> list[Partner]:
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM partners WHERE ($1::text IS NULL OR kind = $1)"
        " AND ($2::text IS NULL OR partner_id > $2) ORDER BY partner_id LIMIT $3",
        kind, after, limit)
    return [_partner(r) for r in rows]
