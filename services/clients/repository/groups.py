"""Solidarity groups and their memberships."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from services.clients.domain.group import MemberState
from services.clients.repository import Conn


@dataclass(frozen=True)
class Group:
    id: str
    partner_id: str
    name: str
    leader_id: str
    status: str
    formed_by: str
    created_at: dt.datetime
    dissolved_at: dt.datetime | None
    member_ids: list[str]
    office_id: str = "ho"
    office_path: str = "ho"
    officer_id: str | None = None


async def member_states(conn: Conn, ids: list[str]) -> list[MemberState]:
    """Lock the clients' rows (in id order) and read what a group needs of them."""
    rows = await conn.fetch(
        "SELECT c.id, c.partner_id, c.kyc_status, c.blocked, c.office_path, c.office_id,"
        " (SELECT m.group_id FROM group_members m WHERE m.client_id = c.id AND m.active)"
        "   AS active_group_id"
        " FROM clients c WHERE c.id = ANY($1::text[]) ORDER BY c.id FOR UPDATE OF c", ids)
    return [MemberState(r["id"], r["partner_id"], r["kyc_status"], r["blocked"],
                        r["active_group_id"], r["office_path"], r["office_id"]) for r in rows]


async def insert(conn: Conn, *, group_id: str, partner_id: str, name: str,
                 leader_id: str, formed_by: str, member_ids: list[str], office_id: str,
                 office_path: str, officer_id: str | None) -> None:
    await conn.execute(
        "INSERT INTO groups (id, partner_id, name, leader_id, formed_by, office_id, office_path,"
        " officer_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        group_id, partner_id, name, leader_id, formed_by, office_id, office_path, officer_id)
    await conn.executemany(
        "INSERT INTO group_members (group_id, client_id) VALUES ($1, $2)",
        [(group_id, cid) for cid in member_ids])


async def get(conn: Conn, group_id: str, *, for_update: bool = False
              ) -> Group | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        "SELECT id, partner_id, name, leader_id, status, formed_by, created_at, dissolved_at,"
        f" office_id, office_path, officer_id FROM groups WHERE id = $1{lock}", group_id)
    if row is None:
        return None
    members = await conn.fetch(
        "SELECT client_id FROM group_members WHERE group_id = $1 ORDER BY client_id", group_id)
    return Group(**dict(row), member_ids=[m["client_id"] for m in members])


async def dissolve(conn: Conn, group_id: str) -> None:
    await conn.execute(
        "UPDATE groups SET status = 'dissolved', dissolved_at = now() WHERE id = $1", group_id)
    await conn.execute("UPDATE group_members SET active = false WHERE group_id = $1", group_id)


async def active_group_of(conn: Conn, client_id: str) -> str | None:
    gid: str | None = await conn.fetchval(
        "SELECT group_id FROM group_members WHERE client_id = $1 AND active", client_id)
    return gid


async def reassign_portfolio(conn: Conn, from_officer_id: str, to_officer_id: str
                             ) -> list[str]:
    """Give every active group of one officer to another; the ids of the groups moved."""
    await conn.execute("SELECT id FROM groups WHERE officer_id = $1 AND status = 'active'"
                       " ORDER BY id FOR UPDATE", from_officer_id)
    rows = await conn.fetch(
        "UPDATE groups SET officer_id = $2 WHERE officer_id = $1 AND status = 'active'"
        " RETURNING id", from_officer_id, to_officer_id)
    return sorted(r["id"] for r in rows)
