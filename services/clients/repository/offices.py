"""Offices and staff: rows ↔ ``Office`` / ``StaffMember``, subtree listings."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.clients.domain.office import Office, StaffMember
from services.clients.repository import Conn

OFFICE_COLUMNS = ("id, kind, name, parent_id, path, status, opened_by, created_at, updated_at,"
                  " version")
STAFF_COLUMNS = ("id, full_name, role, office_id, office_path, active, created_by, created_at,"
                 " updated_at, version")


def subtree_sql(column: str, path: str | None, args: list[Any]) -> str | None:
    """A condition keeping rows whose ``column`` path is ``path`` or below it (ids are
    slugs, so a path holds no LIKE wildcard); None when ``path`` is None (everything)."""
    if path is None:
        return None
    args.append(path)
    n = len(args)
    return f"({column} = ${n} OR {column} LIKE ${n} || '/%')"


def _office(row: asyncpg.Record) -> Office:
    return Office(**dict(row))


def _staff(row: asyncpg.Record) -> StaffMember:
    return StaffMember(**dict(row))


async def insert_office(conn: Conn, o: Office) -> Office:
    row = await conn.fetchrow(
        "INSERT INTO offices (id, kind, name, parent_id, path, opened_by)"
        f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {OFFICE_COLUMNS}",
        o.id, o.kind, o.name, o.parent_id, o.path, o.opened_by)
    assert row is not None
    return _office(row)


async def get_office(conn: Conn, office_id: str, *, for_update: bool = False) -> Office | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {OFFICE_COLUMNS} FROM offices WHERE id = $1{lock}",
                              office_id)
    return _office(row) if row else None


async def update_office(conn: Conn, o: Office) -> Office:
    row = await conn.fetchrow(
        "UPDATE offices SET name = $2, status = $3, updated_at = now(), version = version + 1"
        f" WHERE id = $1 RETURNING {OFFICE_COLUMNS}", o.id, o.name, o.status)
    assert row is not None
    return _office(row)


async def list_offices(conn: Conn, *, within: str | None, parent_id: str | None,
                       kind: str | None, limit: int, after: str | None) -> list[Office]:
    """Offices in path order (parents before children), keyset-paged on the path."""
    args: list[Any] = []
    where = [c for c in [subtree_sql("path", within, args)] if c]
    if parent_id is not None:
        args.append(parent_id)
        where.append(f"parent_id = ${len(args)}")
    if kind is not None:
        args.append(kind)
        where.append(f"kind = ${len(args)}")
    if after is not None:
        args.append(after)
        where.append(f"path > ${len(args)}")
    args.append(limit)
    sql = f"SELECT {OFFICE_COLUMNS} FROM offices"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY path LIMIT ${len(args)}"
    return [_office(r) for r in await conn.fetch(sql, *args)]


async def occupancy(conn: Conn, office: Office) -> tuple[int, int, int]:
    """(open offices below, active staff, clients and groups) in the office's subtree."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM offices WHERE path LIKE $1 || '/%' AND status = 'open')"
        "   AS children,"
        " (SELECT count(*) FROM staff WHERE (office_path = $1 OR office_path LIKE $1 || '/%')"
        "   AND active) AS members,"
        " (SELECT count(*) FROM clients WHERE office_path = $1 OR office_path LIKE $1 || '/%')"
        " + (SELECT count(*) FROM groups WHERE status = 'active'"
        "   AND (office_path = $1 OR office_path LIKE $1 || '/%')) AS clients",
        office.path)
    assert row is not None
    return int(row["children"]), int(row["members"]), int(row["clients"])


async def insert_staff(conn: Conn, s: StaffMember) -> StaffMember:
    row = await conn.fetchrow(
        "INSERT INTO staff (id, full_name, role, office_id, office_path, created_by)"
        f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {STAFF_COLUMNS}",
        s.id, s.full_name, s.role, s.office_id, s.office_path, s.created_by)
    assert row is not None
    return _staff(row)


async def get_staff(conn: Conn, staff_id: str, *, for_update: bool = False
                    ) -> StaffMember | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {STAFF_COLUMNS} FROM staff WHERE id = $1{lock}",
                              staff_id)
    return _staff(row) if row else None


async def update_staff(conn: Conn, s: StaffMember) -> StaffMember:
    row = await conn.fetchrow(
        "UPDATE staff SET full_name = $2, office_id = $3, office_path = $4, active = $5,"
        f" updated_at = now(), version = version + 1 WHERE id = $1 RETURNING {STAFF_COLUMNS}",
        s.id, s.full_name, s.office_id, s.office_path, s.active)
    assert row is not None
    return _staff(row)


async def list_staff(conn: Conn, *, within: str | None, office_id: str | None,
                     role: str | None, active: bool | None, limit: int, after: str | None
                     ) -> list[StaffMember]:
    """Staff by id, keyset-paged on the id."""
    args: list[Any] = []
    where = [c for c in [subtree_sql("office_path", within, args)] if c]
    for column, value in (("office_id", office_id), ("role", role), ("active", active)):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    if after is not None:
        args.append(after)
        where.append(f"id > ${len(args)}")
    args.append(limit)
    sql = f"SELECT {STAFF_COLUMNS} FROM staff"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY id LIMIT ${len(args)}"
    return [_staff(r) for r in await conn.fetch(sql, *args)]


async def portfolio_size(conn: Conn, officer_id: str) -> int:
    n: int = await conn.fetchval(
        "SELECT (SELECT count(*) FROM clients WHERE officer_id = $1)"
        " + (SELECT count(*) FROM groups WHERE officer_id = $1 AND status = 'active')",
        officer_id)
    return n
