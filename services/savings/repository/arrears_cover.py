"""Group loans and overdue installments as savings hears them from loans.events, and the
requests that compulsory savings cover a member's arrears."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import asyncpg

from services.savings.repository import Conn

# -- the projection of loans.events ---------------------------------------------------


async def group_loan_active(conn: Conn, *, group_loan_id: str, group_id: str,
                            members: list[tuple[str, str]], cover_arrears: bool | None
                            ) -> None:
    """``members``: (client id, loan id) in the group loan's order."""
    await conn.executemany(
        "INSERT INTO group_loan_members (group_loan_id, group_id, client_id, loan_id,"
        " position, cover_arrears) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (group_loan_id, loan_id) DO UPDATE SET live = true,"
        " cover_arrears = COALESCE(EXCLUDED.cover_arrears, group_loan_members.cover_arrears)",
        [(group_loan_id, group_id, client, loan, i, cover_arrears)
         for i, (client, loan) in enumerate(members)])


async def group_loan_ended(conn: Conn, group_loan_id: str) -> None:
    await conn.execute("UPDATE group_loan_members SET live = false WHERE group_loan_id = $1",
                       group_loan_id)


async def installment_overdue(conn: Conn, loan_id: str, installment: int, due_date: dt.date,
                              owed: Decimal, as_of: dt.date) -> None:
    """What loans says the installment still owes on ``as_of`` (an older report never
    replaces a newer one)."""
    await conn.execute(
        "INSERT INTO loan_overdue (loan_id, installment, due_date, owed, as_of)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (loan_id, installment) DO UPDATE"
        " SET owed = EXCLUDED.owed, due_date = EXCLUDED.due_date, as_of = EXCLUDED.as_of,"
        " updated_at = now() WHERE loan_overdue.as_of <= EXCLUDED.as_of",
        loan_id, installment, due_date, owed, as_of)


async def repaid(conn: Conn, loan_id: str, lines: list[tuple[int, Decimal]]) -> None:
    """A repayment loans applied: what it allocated to each overdue installment."""
    await conn.executemany(
        "UPDATE loan_overdue SET owed = greatest(owed - $3, 0), updated_at = now()"
        " WHERE loan_id = $1 AND installment = $2",
        [(loan_id, n, amount) for n, amount in lines])


async def clear_loan(conn: Conn, loan_id: str) -> None:
    await conn.execute("DELETE FROM loan_overdue WHERE loan_id = $1", loan_id)


async def overdue(conn: Conn, loan_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT installment, due_date, owed, as_of FROM loan_overdue"
        " WHERE loan_id = $1 AND owed > 0 ORDER BY due_date, installment", loan_id)
    return rows


async def member(conn: Conn, group_id: str, loan_id: str) -> asyncpg.Record | None:
    """The member's line of a live group loan of ``group_id``."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT group_loan_id, group_id, client_id, loan_id, position, cover_arrears"
        " FROM group_loan_members WHERE group_id = $1 AND loan_id = $2 AND live"
        " ORDER BY position LIMIT 1", group_id, loan_id)
    return row


async def members(conn: Conn, group_loan_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT client_id, loan_id, position FROM group_loan_members"
        " WHERE group_loan_id = $1 ORDER BY position", group_loan_id)
    return rows


async def compulsory_accounts(conn: Conn, client_ids: list[str]) -> list[asyncpg.Record]:
    """The compulsory accounts of these clients that can pay (open, not under a legal
    block), in the clients' order, then oldest first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT a.id, a.client_id, a.linked_loan_id, a.ledger_balance - a.held_balance"
        "       AS available"
        "  FROM accounts a JOIN unnest($1::text[]) WITH ORDINALITY AS c(client_id, n)"
        "       ON c.client_id = a.client_id"
        " WHERE a.kind = 'compulsory' AND a.status IN ('active', 'dormant') AND NOT a.blocked"
        " ORDER BY c.n, a.opened_on, a.created_at, a.id", client_ids)
    return rows


# -- the requests ---------------------------------------------------------------------

_COLS = ("id, group_id, group_loan_id, loan_id, client_id, partner_id, office_id, office_path,"
         " amount, installments, sources, other_members_allowed, status, requested_by,"
         " decided_by, reason, paid, created_at, decided_at")


def _row(r: asyncpg.Record | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return dict(r)


async def insert(conn: Conn, req: dict[str, Any]) -> dict[str, Any] | None:
    """None when a request for the loan is already waiting."""
    row = await conn.fetchrow(
        "INSERT INTO arrears_cover_requests (id, group_id, group_loan_id, loan_id, client_id,"
        " partner_id, office_id, office_path, amount, installments, sources,"
        " other_members_allowed, status, requested_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12, 'pending',"
        " $13) ON CONFLICT (loan_id) WHERE status = 'pending' DO NOTHING"
        f" RETURNING {_COLS}",
        req["id"], req["group_id"], req["group_loan_id"], req["loan_id"], req["client_id"],
        req["partner_id"], req["office_id"], req["office_path"], req["amount"],
        req["installments"], req["sources"],
        req["other_members_allowed"], req["requested_by"])
    return _row(row)


async def get(conn: Conn, request_id: str, *, for_update: bool = False
              ) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    return _row(await conn.fetchrow(
        f"SELECT {_COLS} FROM arrears_cover_requests WHERE id = $1{lock}", request_id))


async def pending_for_loan(conn: Conn, loan_id: str) -> dict[str, Any] | None:
    return _row(await conn.fetchrow(
        f"SELECT {_COLS} FROM arrears_cover_requests WHERE loan_id = $1"
        " AND status = 'pending'", loan_id))


async def decide(conn: Conn, request_id: str, *, status: str, by: str, reason: str | None,
                 sources: list[dict[str, Any]] | None = None, paid: Decimal | None = None
                 ) -> dict[str, Any]:
    row = await conn.fetchrow(
        "UPDATE arrears_cover_requests SET status = $2, decided_by = $3, reason = $4,"
        " sources = COALESCE($5::jsonb, sources), paid = $6, decided_at = now()"
        f" WHERE id = $1 RETURNING {_COLS}",
        request_id, status, by, reason, sources,
        paid)
    out = _row(row)
    assert out is not None
    return out


async def list_for(conn: Conn, *, status: str | None, group_id: str | None,
                   partner_id: str | None, office_path: str | None, limit: int
                   ) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_COLS} FROM arrears_cover_requests"
        " WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR group_id = $2)"
        "   AND ($3::text IS NULL OR partner_id = $3)"
        "   AND ($4::text IS NULL OR office_path = $4 OR starts_with(office_path, $4 || '/'))"
        " ORDER BY created_at DESC, id LIMIT $5",
        status, group_id, partner_id, office_path, limit)
    return [r for r in (_row(x) for x in rows) if r is not None]
