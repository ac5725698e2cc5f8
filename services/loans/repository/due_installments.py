"""Installments of active loans due on one date, with what is still owed on each."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from services.loans.repository import Conn

# $1 due date, $2 partner (NULL = every partner). Served by installments_due_date.
_FROM = """
  FROM installments i JOIN loans l ON l.id = i.loan_id
 WHERE i.due_date = $1::date AND l.status = 'active'
   AND ($2::text IS NULL OR l.partner_id = $2)
"""
def _office(n: int) -> str:
    """The loan's office is the office path ``$n`` or below it (NULL: every office)."""
    return (f"   AND (${n}::text IS NULL OR l.office_path = ${n}"
            f" OR starts_with(l.office_path, ${n} || '/'))\n")


_TOTAL = "(i.principal_due + i.interest_due + i.fees_due + i.penalties_due)"
_PAID = "(i.principal_paid + i.interest_paid + i.fees_paid + i.penalties_paid)"

PAGE = f"""
SELECT i.loan_id, l.client_id, l.partner_id, i.number, i.due_date, i.status,
       {_TOTAL} AS total, {_PAID} AS paid, l.days_in_arrears
{_FROM}{_office(6)}   AND ($3::text IS NULL OR (i.loan_id, i.number) > ($3::text, $4::int))
 ORDER BY i.loan_id, i.number
 LIMIT $5
"""

TOTALS = f"""
SELECT count(*) AS n,
       COALESCE(sum(GREATEST({_TOTAL} - {_PAID}, 0)), 0)::numeric(16,2) AS amount_due,
       COALESCE(sum({_PAID}), 0)::numeric(16,2) AS paid,
       COALESCE(sum({_TOTAL}), 0)::numeric(16,2) AS total,
       count(*) FILTER (WHERE {_TOTAL} <= {_PAID}) AS n_paid,
       count(*) FILTER (WHERE {_PAID} > 0 AND {_TOTAL} > {_PAID}) AS n_partly_paid
{_FROM}{_office(3)}"""


def status_of(total: Decimal, paid: Decimal) -> str:
    if paid >= total:
        return "paid"
    return "partly_paid" if paid > 0 else "due"


async def page(conn: Conn, due_date: date, partner_id: str | None,
               after: tuple[str, int] | None, limit: int, office_path: str | None = None
               ) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        PAGE, due_date, partner_id, after[0] if after else None, after[1] if after else None,
        limit, office_path)
    return rows


async def totals(conn: Conn, due_date: date, partner_id: str | None,
                 office_path: str | None = None) -> dict[str, Any]:
    row = await conn.fetchrow(TOTALS, due_date, partner_id, office_path)
    assert row is not None
    return {"count": row["n"], "amount_due": str(row["amount_due"]), "paid": str(row["paid"]),
            "total": str(row["total"]),
            "by_status": {"due": row["n"] - row["n_paid"] - row["n_partly_paid"],
                          "partly_paid": row["n_partly_paid"], "paid": row["n_paid"]}}
