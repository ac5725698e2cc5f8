"""Schedule versions, a loan's servicing figures (TEG, restructured marker) and the
rescheduling requests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from services.loans.domain.allocation import InstallmentDue
from services.loans.repository import Conn
from services.loans.repository.loans import _INST_COLS, Installment

ZERO = Decimal("0.00")
OPEN = ("pending", "overdue")


async def set_price(conn: Conn, loan_id: str, teg: Decimal, cost: Decimal) -> None:
    await conn.execute("UPDATE loans SET teg = $2, total_cost_of_credit = $3 WHERE id = $1",
                       loan_id, teg, cost)


async def servicing(conn: Conn, loan_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """TEG, cost of credit, schedule version and restructured marker of each loan."""
    rows = await conn.fetch(
        "SELECT id, teg, total_cost_of_credit, schedule_version, restructured,"
        " restructured_on FROM loans WHERE id = ANY($1::text[])", list(loan_ids))
    return {r["id"]: {
        "teg": None if r["teg"] is None else str(r["teg"]),
        "total_cost_of_credit": None if r["total_cost_of_credit"] is None
        else str(r["total_cost_of_credit"]),
        "schedule_version": r["schedule_version"], "restructured": r["restructured"],
        "restructured_on": r["restructured_on"].isoformat() if r["restructured_on"] else None,
    } for r in rows}


async def snapshot_version(conn: Conn, loan_id: str, items: Sequence[Installment], *,
                           reason: str, by: str, business_date: date,
                           detail: dict[str, Any]) -> int:
    """Keep the schedule as it is now as its version; return the new version's number."""
    current: int = await conn.fetchval(
        "UPDATE loans SET schedule_version = schedule_version + 1 WHERE id = $1"
        " RETURNING schedule_version - 1", loan_id)
    await conn.execute(
        "INSERT INTO schedule_versions (loan_id, version, reason, replaced_by, created_by,"
        " business_date, installments, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        loan_id, current, reason, current + 1, by, business_date,
        [i.to_json() for i in items], detail)
    return current + 1


async def versions(conn: Conn, loan_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT version, reason, replaced_by, created_by, business_date, installments,"
        " detail, created_at FROM schedule_versions WHERE loan_id = $1 ORDER BY version",
        loan_id)
    return [{"version": r["version"], "reason": r["reason"], "replaced_by": r["replaced_by"],
             "created_by": r["created_by"], "business_date": r["business_date"].isoformat(),
             "installments": r["installments"], "detail": r["detail"],
             "created_at": r["created_at"].isoformat()} for r in rows]


async def replace_owed(conn: Conn, loan_id: str, items: Sequence[Installment],
                       new_rows: Sequence[InstallmentDue], numbers: Sequence[int]
                       ) -> list[Installment]:
    """Make the open installments ``numbers`` owe what ``new_rows`` say (row k goes to
    ``numbers[k]``, or to a new installment after the last if there are more rows).

    What each installment has been paid stays; its amounts due become paid + owed. An
    open installment of ``numbers`` left with no row owes nothing more: it is deleted if
    nothing was ever paid on it, else closed as paid at what it was paid. Every
    installment touched is ``pending`` again (its new due date decides when it is late).
    Returns the loan's installments as they now are.
    """
    by_number = {i.number: i for i in items}
    top = max(by_number, default=0)
    targets = list(numbers)
    while len(targets) < len(new_rows):
        top += 1
        targets.append(top)
    upserts = []
    for row, number in zip(new_rows, targets, strict=False):
        old = by_number.get(number)
        paid = (old.principal_paid, old.interest_paid, old.fees_paid,
                old.penalties_paid) if old else (ZERO, ZERO, ZERO, ZERO)
        upserts.append((number, row.due_date, paid[0] + row.principal,
                        paid[1] + row.interest, paid[2] + row.fees, paid[3] + row.penalties))
    for number in targets[len(new_rows):]:
        old = by_number[number]
        if old.paid == 0:
            await conn.execute("DELETE FROM installments WHERE loan_id = $1 AND number = $2",
                               loan_id, number)
        else:
            await conn.execute(
                "UPDATE installments SET principal_due = principal_paid,"
                " interest_due = interest_paid, fees_due = fees_paid,"
                " penalties_due = penalties_paid, status = 'paid',"
                " paid_on = COALESCE(paid_on, due_date) WHERE loan_id = $1 AND number = $2",
                loan_id, number)
    if upserts:
        await conn.executemany(
            "INSERT INTO installments (loan_id, number, due_date, principal_due, interest_due,"
            " fees_due, penalties_due) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (loan_id, number) DO UPDATE SET due_date = EXCLUDED.due_date,"
            " principal_due = EXCLUDED.principal_due, interest_due = EXCLUDED.interest_due,"
            " fees_due = EXCLUDED.fees_due, penalties_due = EXCLUDED.penalties_due,"
            " status = 'pending', paid_on = NULL, penalty_applied_on = NULL",
            [(loan_id, *u) for u in upserts])
    rows = await conn.fetch(
        f"SELECT {_INST_COLS} FROM installments WHERE loan_id = $1 ORDER BY number", loan_id)
    return [Installment(**dict(r)) for r in rows]


async def set_owed(conn: Conn, loan_id: str, items: Sequence[Installment],
                   rows: Sequence[InstallmentDue]) -> list[Installment]:
    """Set what each installment of ``rows`` owes (paid + owed), keeping dates and status
    (an early settlement's waiver). Returns the loan's installments as they now are."""
    by_number = {i.number: i for i in items}
    await conn.executemany(
        "UPDATE installments SET principal_due = $3, interest_due = $4, fees_due = $5,"
        " penalties_due = $6 WHERE loan_id = $1 AND number = $2",
        [(loan_id, r.number, by_number[r.number].principal_paid + r.principal,
          by_number[r.number].interest_paid + r.interest,
          by_number[r.number].fees_paid + r.fees,
          by_number[r.number].penalties_paid + r.penalties) for r in rows])
    fresh = await conn.fetch(
        f"SELECT {_INST_COLS} FROM installments WHERE loan_id = $1 ORDER BY number", loan_id)
    return [Installment(**dict(r)) for r in fresh]


# -- rescheduling requests -------------------------------------------------------------
_REQ_COLS = ("id, kind, loan_id, loan_version, params, preview, status, requested_by,"
             " decided_by, decided_at, result, created_at")


async def insert_request(conn: Conn, *, request_id: str, kind: str, loan_id: str | None,
                         loan_version: int | None, params: dict[str, Any],
                         preview: dict[str, Any], by: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO reschedule_requests (id, kind, loan_id, loan_version, params, preview,"
        f" requested_by) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_REQ_COLS}",
        request_id, kind, loan_id, loan_version, params, preview, by)
    assert row is not None
    return row


async def request(conn: Conn, request_id: str, *, lock: bool = False
                  ) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {_REQ_COLS} FROM reschedule_requests WHERE id = $1"
        + (" FOR UPDATE" if lock else ""), request_id)
    return row


async def decide_request(conn: Conn, request_id: str, status: str, by: str,
                         result: dict[str, Any]) -> asyncpg.Record:
    row = await conn.fetchrow(
        "UPDATE reschedule_requests SET status = $2, decided_by = $3, decided_at = now(),"
        f" result = $4 WHERE id = $1 RETURNING {_REQ_COLS}", request_id, status, by, result)
    assert row is not None
    return row


async def mark_restructured(conn: Conn, loan_id: str, on: date, from_number: int,
                            cure_count: int) -> None:
    await conn.execute(
        "UPDATE loans SET restructured = true, restructured_on = $2,"
        " restructure_from_number = $3, restructure_cure_count = $4 WHERE id = $1",
        loan_id, on, from_number, cure_count)


async def active_loans(conn: Conn, *, loan_ids: Sequence[str] | None,
                       partner_id: str | None) -> list[str]:
    rows = await conn.fetch(
        "SELECT id FROM loans WHERE status = 'active'"
        " AND ($1::text[] IS NULL OR id = ANY($1::text[]))"
        " AND ($2::text IS NULL OR partner_id = $2) ORDER BY id",
        None if loan_ids is None else list(loan_ids), partner_id)
    return [r["id"] for r in rows]


# The restructured marker is kept until the borrower has paid N installments of the new
# schedule on time (paid on or before their due date); close of business lifts it.
CURE_RESTRUCTURED = """
UPDATE loans l SET restructured = false
 WHERE l.restructured AND l.status = 'active'
   AND (SELECT count(*) FROM installments i
         WHERE i.loan_id = l.id AND i.number >= l.restructure_from_number
           AND i.status = 'paid' AND i.paid_on <= i.due_date)
       >= COALESCE(l.restructure_cure_count, 0)
"""


async def cure_restructured(conn: Conn) -> int:
    tag = await conn.execute(CURE_RESTRUCTURED)
    return int(tag.rsplit(" ", 1)[-1]) if tag and tag[-1].isdigit() else 0
