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
    live_group_loan_ids: tuple[str, ...] = ()
    """the group's live group loans (from loans' events): it keeps its members meanwhile"""


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
        "SELECT client_id FROM group_members WHERE group_id = $1 AND left_at IS NULL"
        " ORDER BY client_id", group_id)
    return Group(**dict(row), member_ids=[m["client_id"] for m in members],
                 live_group_loan_ids=tuple(await live_group_loans(conn, group_id)))


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


async def lock(conn: Conn, group_id: str) -> None:
    """Lock the group's row (if clients knows the group)."""
    await conn.execute("SELECT id FROM groups WHERE id = $1 FOR UPDATE", group_id)


async def active_member_ids(conn: Conn, group_id: str) -> list[str]:
    rows = await conn.fetch("SELECT client_id FROM group_members WHERE group_id = $1"
                            " AND active ORDER BY client_id", group_id)
    return [r["client_id"] for r in rows]


async def remove_member(conn: Conn, group_id: str, client_id: str) -> None:
    """The member leaves: free for another group, no longer listed among the members."""
    await conn.execute(
        "UPDATE group_members SET active = false, left_at = now()"
        " WHERE group_id = $1 AND client_id = $2", group_id, client_id)


# -- the group's group loans, from loans.events (group_loans_live) ----------------------
async def group_loan_live(conn: Conn, *, group_id: str, group_loan_id: str,
                          loan_ids: list[str], member_ids: list[str]) -> bool:
    """Record a group loan as live; False if it was already known (live or ended)."""
    tag = await conn.execute(
        "INSERT INTO group_loans_live (group_loan_id, group_id, live, loan_ids, member_ids,"
        " became_live_at) VALUES ($1, $2, true, $3, $4, now())"
        " ON CONFLICT (group_loan_id) DO NOTHING",
        group_loan_id, group_id, loan_ids, member_ids)
    return bool(tag.endswith(" 1"))


async def group_loan_ended(conn: Conn, *, group_id: str, group_loan_id: str, ended_by: str,
                           member_ids: list[str], payouts_to_recover: list[str]) -> bool:
    """Record a group loan as ended (even one never heard live); False if it already was."""
    tag = await conn.execute(
        "INSERT INTO group_loans_live (group_loan_id, group_id, live, member_ids, ended_by,"
        " payouts_to_recover, ended_at) VALUES ($1, $2, false, $3, $4, $5, now())"
        " ON CONFLICT (group_loan_id) DO UPDATE SET live = false,"
        " ended_by = EXCLUDED.ended_by, payouts_to_recover = EXCLUDED.payouts_to_recover,"
        " ended_at = EXCLUDED.ended_at WHERE group_loans_live.live",
        group_loan_id, group_id, member_ids, ended_by, payouts_to_recover)
    return bool(tag.endswith(" 1"))


async def live_group_loans(conn: Conn, group_id: str) -> list[str]:
    """The group's live group loans, oldest first."""
    rows = await conn.fetch(
        "SELECT group_loan_id FROM group_loans_live WHERE group_id = $1 AND live"
        " ORDER BY became_live_at, group_loan_id", group_id)
    return [r["group_loan_id"] for r in rows]
