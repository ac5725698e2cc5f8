"""Loan servicing in payments' tables: a repayment matched to its loan by payment id
(``resolved_loan_id``), payments held for review, and the servicing memos
(``loan_servicing_memos``)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import asyncpg

from services.payments.repository import Conn
from services.payments.repository.payments import PAYMENT_COLS

HELD = "held"
_COLS = PAYMENT_COLS + ", resolved_loan_id"


async def payment(conn: Conn, payment_id: uuid.UUID, *, lock: bool = False
                  ) -> asyncpg.Record | None:
    """The payment with the loan it was resolved to (None until loans applied it or
    operators matched it)."""
    suffix = " FOR UPDATE" if lock else ""
    return await conn.fetchrow(f"SELECT {_COLS} FROM payments WHERE id = $1{suffix}",
                               payment_id)


async def mark_applied(conn: Conn, payment_id: uuid.UUID, loan_id: str) -> None:
    """``received`` → ``posted``, remembering the loan loans applied it to."""
    await conn.execute(
        "UPDATE payments SET status = 'posted', resolved_loan_id = $2, updated_at = now()"
        " WHERE id = $1 AND status = 'received'", payment_id, loan_id)


async def remember_loan(conn: Conn, payment_id: uuid.UUID, loan_id: str) -> None:
    await conn.execute("UPDATE payments SET resolved_loan_id = $2 WHERE id = $1",
                       payment_id, loan_id)


async def hold(conn: Conn, payment_id: uuid.UUID, reason: str) -> bool:
    """``received`` → ``held`` (kept in suspense for an operator); False if it was not
    waiting for loans' answer."""
    row = await conn.fetchval(
        "UPDATE payments SET status = 'held', rejection_reason = $2, updated_at = now()"
        " WHERE id = $1 AND status = 'received' RETURNING 1", payment_id, reason[:500])
    return row is not None


async def release_to_loan(conn: Conn, payment_id: uuid.UUID, loan_id: str) -> bool:
    """``held`` → ``received`` for ``loan_id`` (operators matched it; loans answers
    again)."""
    row = await conn.fetchval(
        "UPDATE payments SET status = 'received', resolved_loan_id = $2, updated_at = now()"
        " WHERE id = $1 AND status = 'held' RETURNING 1", payment_id, loan_id)
    return row is not None


async def held_payments(conn: Conn, limit: int, *,
                        after: tuple[dt.datetime, uuid.UUID] | None = None
                        ) -> list[asyncpg.Record]:
    """Payments held for review, oldest first (keyset on received_at, id), each with the
    decision waiting for a second operator, if any."""
    after_at, after_id = after if after is not None else (None, None)
    cols = ", ".join("p." + c.strip() for c in _COLS.split(","))
    return list(await conn.fetch(
        f"SELECT {cols}, q.id AS proposal_id, q.body AS proposal, q.proposed_by,"
        " q.proposed_at FROM payments p"
        " LEFT JOIN payout_approvals q ON q.kind = 'held_payment' AND q.target_id = p.id"
        "   AND q.status = 'proposed'"
        " WHERE p.status = 'held'"
        "   AND ($2::timestamptz IS NULL OR (p.received_at, p.id) > ($2, $3::uuid))"
        " ORDER BY p.received_at, p.id LIMIT $1", limit, after_at, after_id))


# -- servicing memos ------------------------------------------------------------------


async def record_memo(conn: Conn, *, kind: str, source_id: str, loan_id: str,
                      amount: Decimal, booked: Decimal, basis: str,
                      business_date: dt.date | None, transfer_id: str | None,
                      detail: dict[str, Any]) -> bool:
    """Once per (kind, source id); False if it was recorded before."""
    row = await conn.fetchval(
        "INSERT INTO loan_servicing_memos (kind, source_id, loan_id, amount, booked, basis,"
        " business_date, transfer_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
        " $9::jsonb) ON CONFLICT (kind, source_id) DO NOTHING RETURNING 1",
        kind, source_id, loan_id, amount, booked, basis, business_date, transfer_id, detail)
    return row is not None


async def memo_exists(conn: Conn, kind: str, source_id: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT 1 FROM loan_servicing_memos WHERE kind = $1 AND source_id = $2",
        kind, source_id))


async def memos_of(conn: Conn, loan_id: str) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        "SELECT * FROM loan_servicing_memos WHERE loan_id = $1 ORDER BY id", loan_id))
