"""Maker-checker requests on a loan (write-offs, waivers) and the late-charge waivers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from services.loans.repository import Conn

_COLS = ("id, loan_id, kind, status, amount, reason, proposed_by, proposed_at, decided_by,"
         " decided_at, detail")


def request_json(r: asyncpg.Record) -> dict[str, Any]:
    return {"id": r["id"], "loan_id": r["loan_id"], "kind": r["kind"], "status": r["status"],
            "amount": None if r["amount"] is None else str(r["amount"]),
            "reason": r["reason"], "proposed_by": r["proposed_by"],
            "proposed_at": r["proposed_at"].isoformat(), "decided_by": r["decided_by"],
            "decided_at": r["decided_at"].isoformat() if r["decided_at"] else None}


async def insert(conn: Conn, request_id: str, loan_id: str, kind: str, amount: Decimal | None,
                 reason: str, proposed_by: str) -> asyncpg.Record | None:
    """The new pending request; None when one of this kind is already pending."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "INSERT INTO loan_requests (id, loan_id, kind, amount, reason, proposed_by)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
        f" RETURNING {_COLS}", request_id, loan_id, kind, amount, reason, proposed_by)
    return row


async def pending_for(conn: Conn, loan_id: str, kind: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {_COLS} FROM loan_requests WHERE loan_id = $1 AND kind = $2"
        " AND status = 'pending'", loan_id, kind)
    return row


async def get(conn: Conn, request_id: str, *, for_update: bool = False
              ) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {_COLS} FROM loan_requests WHERE id = $1{lock}", request_id)
    return row


async def decide(conn: Conn, request_id: str, status: str, by: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "UPDATE loan_requests SET status = $2, decided_by = $3, decided_at = now()"
        f" WHERE id = $1 RETURNING {_COLS}", request_id, status, by)
    assert row is not None
    return row


async def listing(conn: Conn, status: str | None, kind: str | None, loan_id: str | None,
                  limit: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {_COLS} FROM loan_requests WHERE ($1::text IS NULL OR status = $1)"
        " AND ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR loan_id = $3)"
        " ORDER BY proposed_at, id LIMIT $4", status, kind, loan_id, limit)
    return rows


async def waive_penalties(conn: Conn, loan_id: str, amount: Decimal | None
                          ) -> list[tuple[int, Decimal]]:
    """Reduce what the open installments owe of penalties, oldest first, by ``amount``
    (None: all of it); what each installment was relieved of. An installment left owing
    nothing is marked paid."""
    rows = await conn.fetch(
        "SELECT number, penalties_due - penalties_paid AS owed FROM installments"
        " WHERE loan_id = $1 AND is_open"
        " AND penalties_due > penalties_paid ORDER BY due_date, number FOR UPDATE", loan_id)
    left = amount
    out: list[tuple[int, Decimal]] = []
    for r in rows:
        take: Decimal = r["owed"] if left is None else min(left, r["owed"])
        if take <= 0:
            break
        out.append((r["number"], take))
        if left is not None:
            left -= take
    if out:
        await conn.execute(
            "UPDATE installments i SET penalties_due = i.penalties_due - w.amount,"
            " status = CASE WHEN i.principal_paid >= i.principal_due"
            "   AND i.interest_paid >= i.interest_due AND i.fees_paid >= i.fees_due"
            "   AND i.penalties_paid >= i.penalties_due - w.amount THEN 'paid' ELSE i.status END"
            " FROM unnest($2::int[], $3::numeric[]) AS w(number, amount)"
            " WHERE i.loan_id = $1 AND i.number = w.number",
            loan_id, [n for n, _ in out], [a for _, a in out])
    return out


async def penalties_owed(conn: Conn, loan_id: str) -> Decimal:
    owed: Decimal = await conn.fetchval(
        "SELECT COALESCE(sum(penalties_due - penalties_paid), 0)::numeric(14,2)"
        " FROM installments WHERE loan_id = $1 AND is_open", loan_id)
    return owed


async def loan_id_by_reference(conn: Conn, reference: str) -> str | None:
    found: str | None = await conn.fetchval(
        "SELECT id FROM loans WHERE reference = $1", reference)
    return found


async def late_charges(conn: Conn, loan_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT number, charged_on, amount FROM late_charges WHERE loan_id = $1"
        " ORDER BY charged_on, number", loan_id)
    return [{"installment": r["number"], "charged_on": r["charged_on"].isoformat(),
             "amount": str(r["amount"])} for r in rows]


async def add_recovery(conn: Conn, loan_id: str, numbers: list[int], parts: list[list[Decimal]],
                       on: date) -> None:
    """Add what a recovery paid to the written-off installments (they stay written off)."""
    await conn.execute(
        "UPDATE installments i SET principal_paid = i.principal_paid + a.p,"
        " interest_paid = i.interest_paid + a.i, fees_paid = i.fees_paid + a.f,"
        " penalties_paid = i.penalties_paid + a.n, paid_on = $7"
        " FROM unnest($2::int[], $3::numeric[], $4::numeric[], $5::numeric[], $6::numeric[])"
        " AS a(number, p, i, f, n) WHERE i.loan_id = $1 AND i.number = a.number",
        loan_id, numbers, [x[0] for x in parts], [x[1] for x in parts], [x[2] for x in parts],
        [x[3] for x in parts], on)
