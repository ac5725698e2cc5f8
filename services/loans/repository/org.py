"""The organisation as loans knows it (from ``clients.events``): each client's and each
loan's office and loan officer, offices, staff and groups; and the office scope of a
token in SQL (an office's subtree is every path equal to it or under it)."""

from __future__ import annotations

from dataclasses import dataclass

from services.loans.repository import Conn

HEAD_OFFICE = "ho"


def in_subtree(column: str, param: int) -> str:
    """SQL: ``column`` is the office path ``$param`` or below it (NULL = no restriction)."""
    return (f"(${param}::text IS NULL OR {column} = ${param}"
            f" OR starts_with({column}, ${param} || '/'))")


def branch_of(office_id: str, office_path: str) -> str:
    """The branch an office belongs to: head office → region → branch → mobile unit, so a
    path's third id is its branch (an office above branch level is its own)."""
    parts = office_path.split("/")
    return parts[2] if len(parts) >= 3 else office_id


@dataclass(frozen=True)
class Office:
    office_id: str
    kind: str
    name: str
    path: str


@dataclass(frozen=True)
class Staff:
    staff_id: str
    full_name: str
    office_id: str
    office_path: str


@dataclass(frozen=True)
class Group:
    group_id: str
    name: str
    leader_id: str
    office_id: str
    office_path: str
    officer_id: str | None
    dissolved: bool


# -- clients -------------------------------------------------------------------------
async def client_registered(conn: Conn, client_id: str, *, office_id: str | None,
                            office_path: str | None, officer_id: str | None,
                            full_name: str, phone: str) -> None:
    await conn.execute(
        "UPDATE client_projection SET office_id = COALESCE($2, office_id),"
        " office_path = COALESCE($3, office_path), officer_id = COALESCE($4, officer_id),"
        " full_name = $5, phone = $6, updated_at = now() WHERE client_id = $1",
        client_id, office_id, office_path if office_id else None, officer_id, full_name,
        phone)


async def client_phone(conn: Conn, client_id: str, phone: str) -> None:
    await conn.execute("UPDATE client_projection SET phone = $2, updated_at = now()"
                       " WHERE client_id = $1", client_id, phone)


async def transfer_client(conn: Conn, client_id: str, office_id: str, office_path: str,
                          officer_id: str | None) -> int:
    """The client and every loan of it move to the office (and officer); loans moved."""
    await conn.execute(
        "INSERT INTO client_projection (client_id, office_id, office_path, officer_id)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (client_id) DO UPDATE SET"
        " office_id = $2, office_path = $3, officer_id = $4, updated_at = now()",
        client_id, office_id, office_path, officer_id)
    tag = await conn.execute(
        "UPDATE loans SET office_id = $2, office_path = $3, officer_id = $4,"
        " updated_at = now() WHERE client_id = $1", client_id, office_id, office_path,
        officer_id)
    return int(tag.rsplit(" ", 1)[-1])


async def reassign_client(conn: Conn, client_id: str, from_officer: str, to_officer: str
                          ) -> int:
    await conn.execute(
        "UPDATE client_projection SET officer_id = $2, updated_at = now()"
        " WHERE client_id = $1", client_id, to_officer)
    tag = await conn.execute(
        "UPDATE loans SET officer_id = $2, updated_at = now() WHERE client_id = $1"
        " AND officer_id IS DISTINCT FROM $2", client_id, to_officer)
    return int(tag.rsplit(" ", 1)[-1])


async def reassign_group(conn: Conn, group_id: str, from_officer: str, to_officer: str
                         ) -> int:
    """The group and its members' loans still with ``from_officer`` go to ``to_officer``."""
    await conn.execute(
        "UPDATE group_projection SET officer_id = $2, updated_at = now() WHERE group_id = $1",
        group_id, to_officer)
    tag = await conn.execute(
        "UPDATE loans l SET officer_id = $3, updated_at = now() FROM group_members m"
        " WHERE m.group_id = $1 AND l.client_id = m.client_id AND l.officer_id = $2",
        group_id, from_officer, to_officer)
    return int(tag.rsplit(" ", 1)[-1])


async def client_office(conn: Conn, client_id: str) -> tuple[str, str, str | None]:
    row = await conn.fetchrow(
        "SELECT office_id, office_path, officer_id FROM client_projection"
        " WHERE client_id = $1", client_id)
    if row is None:
        return HEAD_OFFICE, HEAD_OFFICE, None
    return row["office_id"], row["office_path"], row["officer_id"]


# -- loans ---------------------------------------------------------------------------
async def stamp_loan(conn: Conn, loan_id: str, client_id: str) -> str:
    """A new application takes its client's office and officer; the office id."""
    office_id, office_path, officer_id = await client_office(conn, client_id)
    await conn.execute(
        "UPDATE loans SET office_id = $2, office_path = $3, officer_id = $4 WHERE id = $1",
        loan_id, office_id, office_path, officer_id)
    return office_id


async def loan_office(conn: Conn, loan_id: str) -> tuple[str, str] | None:
    row = await conn.fetchrow("SELECT office_id, office_path FROM loans WHERE id = $1",
                              loan_id)
    return None if row is None else (row["office_id"], row["office_path"])


# -- offices, staff, groups ------------------------------------------------------------
async def office_opened(conn: Conn, office_id: str, kind: str, name: str, path: str,
                        status: str = "open") -> None:
    await conn.execute(
        "INSERT INTO office_projection (office_id, kind, name, path, status)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (office_id) DO UPDATE SET kind = $2,"
        " name = $3, path = $4, status = $5, updated_at = now()",
        office_id, kind, name, path, status)


async def office(conn: Conn, office_id: str) -> Office | None:
    row = await conn.fetchrow(
        "SELECT office_id, kind, name, path FROM office_projection WHERE office_id = $1",
        office_id)
    return None if row is None else Office(row["office_id"], row["kind"], row["name"],
                                           row["path"])


async def staff_assigned(conn: Conn, staff_id: str, full_name: str, role: str,
                         office_id: str, office_path: str, active: bool) -> None:
    await conn.execute(
        "INSERT INTO staff_projection (staff_id, full_name, role, office_id, office_path,"
        " active) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (staff_id) DO UPDATE SET"
        " full_name = $2, role = $3, office_id = $4, office_path = $5, active = $6,"
        " updated_at = now()", staff_id, full_name, role, office_id, office_path, active)


async def staff(conn: Conn, staff_id: str) -> Staff | None:
    row = await conn.fetchrow(
        "SELECT staff_id, full_name, office_id, office_path FROM staff_projection"
        " WHERE staff_id = $1", staff_id)
    return None if row is None else Staff(row["staff_id"], row["full_name"],
                                          row["office_id"], row["office_path"])


async def group_formed(conn: Conn, group_id: str, partner_id: str, name: str, leader_id: str,
                       member_ids: list[str], office_id: str | None, office_path: str | None,
                       officer_id: str | None) -> None:
    await conn.execute(
        "INSERT INTO group_projection (group_id, partner_id, name, leader_id, office_id,"
        " office_path, officer_id) VALUES ($1, $2, $3, $4, COALESCE($5, 'ho'),"
        " COALESCE($6, 'ho'), $7) ON CONFLICT (group_id) DO UPDATE SET name = $3,"
        " leader_id = $4, office_id = COALESCE($5, group_projection.office_id),"
        " office_path = COALESCE($6, group_projection.office_path), officer_id = $7,"
        " dissolved = false, updated_at = now()",
        group_id, partner_id, name, leader_id, office_id, office_path if office_id else None,
        officer_id)
    await conn.execute(
        "INSERT INTO group_members (group_id, client_id) SELECT $1, unnest($2::text[])"
        " ON CONFLICT DO NOTHING", group_id, member_ids)


async def group_member_removed(conn: Conn, group_id: str, client_id: str) -> None:
    """The member leaves the group's roster: its sheets and its next application."""
    await conn.execute("DELETE FROM group_members WHERE group_id = $1 AND client_id = $2",
                       group_id, client_id)
    await conn.execute("UPDATE group_projection SET updated_at = now() WHERE group_id = $1",
                       group_id)


async def group_dissolved(conn: Conn, group_id: str) -> None:
    await conn.execute("UPDATE group_projection SET dissolved = true, updated_at = now()"
                       " WHERE group_id = $1", group_id)


async def group(conn: Conn, group_id: str) -> Group | None:
    row = await conn.fetchrow(
        "SELECT group_id, name, leader_id, office_id, office_path, officer_id, dissolved"
        " FROM group_projection WHERE group_id = $1", group_id)
    return None if row is None else Group(**dict(row))
