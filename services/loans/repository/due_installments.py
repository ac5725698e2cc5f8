"""Installments of active loans: everything unpaid and due on or before a date (the
collections list, ``scope=unpaid``), or every installment due on the date itself, paid or
not (``scope=on_date``), with what is still owed on each and how many days late."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from services.loans.repository import Conn

_TOTAL = "(i.principal_due + i.interest_due + i.fees_due + i.penalties_due)"
_PAID = "(i.principal_paid + i.interest_paid + i.fees_paid + i.penalties_paid)"
# $1 the date, $2 partner (NULL = every partner). on_date: served by installments_due_date;
# unpaid: by installments_open_due (open installments by due date).
# the loan's office is the token's or below it ($O, NULL = every office)
_OFFICE = ("\n   AND ($O::text IS NULL OR l.office_path = $O"
           " OR starts_with(l.office_path, $O || '/'))"
           "\n   AND ($F::text IS NULL OR l.officer_id = $F)")   # the loan officer
_FROM = f"""
  FROM installments i JOIN loans l ON l.id = i.loan_id
 WHERE i.due_date = $1::date AND l.status = 'active'
   AND ($2::text IS NULL OR l.partner_id = $2){_OFFICE}
"""
_FROM_UNPAID = f"""
  FROM installments i JOIN loans l ON l.id = i.loan_id
 WHERE i.due_date <= $1::date AND i.is_open AND l.status = 'active'
   AND {_TOTAL} > {_PAID} AND ($2::text IS NULL OR l.partner_id = $2){_OFFICE}
"""

_PAGE = """
SELECT i.loan_id, l.client_id, l.partner_id, i.number, i.due_date, i.status,
       {total} AS total, {paid} AS paid, l.days_in_arrears, l.reference,
       GREATEST($1::date - i.due_date, 0) AS days_late
{source}
   AND ($3::text IS NULL OR (i.loan_id, i.number) > ($3::text, $4::int))
 ORDER BY i.loan_id, i.number
 LIMIT $5
"""
PAGE = (_PAGE.format(total=_TOTAL, paid=_PAID, source=_FROM)
        .replace("$O", "$6").replace("$F", "$7"))
PAGE_UNPAID = (_PAGE.format(total=_TOTAL, paid=_PAID, source=_FROM_UNPAID)
               .replace("$O", "$6").replace("$F", "$7"))
# by due date, oldest first: the keyset is (due_date, loan_id, number), $8 the due date
_PAGE_BY_DUE = """
SELECT i.loan_id, l.client_id, l.partner_id, i.number, i.due_date, i.status,
       {total} AS total, {paid} AS paid, l.days_in_arrears, l.reference,
       GREATEST($1::date - i.due_date, 0) AS days_late
{source}
   AND ($3::text IS NULL OR (i.due_date, i.loan_id, i.number) > ($8::date, $3::text, $4::int))
 ORDER BY i.due_date, i.loan_id, i.number
 LIMIT $5
"""
PAGE_BY_DUE = (_PAGE_BY_DUE.format(total=_TOTAL, paid=_PAID, source=_FROM)
               .replace("$O", "$6").replace("$F", "$7"))
PAGE_UNPAID_BY_DUE = (_PAGE_BY_DUE.format(total=_TOTAL, paid=_PAID, source=_FROM_UNPAID)
                      .replace("$O", "$6").replace("$F", "$7"))

_TOTALS = f"""
SELECT count(*) AS n,
       COALESCE(sum(GREATEST({_TOTAL} - {_PAID}, 0)), 0)::numeric(16,2) AS amount_due,
       COALESCE(sum({_PAID}), 0)::numeric(16,2) AS paid,
       COALESCE(sum({_TOTAL}), 0)::numeric(16,2) AS total,
       count(*) FILTER (WHERE {_TOTAL} <= {_PAID}) AS n_paid,
       count(*) FILTER (WHERE {_PAID} > 0 AND {_TOTAL} > {_PAID}) AS n_partly_paid
{{source}}
"""
TOTALS = _TOTALS.replace("{source}", _FROM).replace("$O", "$3").replace("$F", "$4")
TOTALS_UNPAID = (_TOTALS.replace("{source}", _FROM_UNPAID).replace("$O", "$3")
                 .replace("$F", "$4"))


def status_of(total: Decimal, paid: Decimal) -> str:
    if paid >= total:
        return "paid"
    return "partly_paid" if paid > 0 else "due"


async def page(conn: Conn, due_date: date, partner_id: str | None,
               after: tuple[str, int] | None, limit: int, *, unpaid: bool = False,
               office_path: str | None = None, officer_id: str | None = None
               ) -> list[asyncpg.Record]:
    """In ``(loan_id, installment)`` order, after ``after``."""
    rows: list[asyncpg.Record] = await conn.fetch(
        PAGE_UNPAID if unpaid else PAGE, due_date, partner_id,
        after[0] if after else None, after[1] if after else None, limit, office_path,
        officer_id)
    return rows


async def page_by_due_date(conn: Conn, due_date: date, partner_id: str | None,
                           after: tuple[date, str, int] | None, limit: int, *,
                           unpaid: bool = False, office_path: str | None = None,
                           officer_id: str | None = None) -> list[asyncpg.Record]:
    """Oldest due date first (then loan, installment), after ``after``."""
    rows: list[asyncpg.Record] = await conn.fetch(
        PAGE_UNPAID_BY_DUE if unpaid else PAGE_BY_DUE, due_date, partner_id,
        after[1] if after else None, after[2] if after else None, limit, office_path,
        officer_id, after[0] if after else None)
    return rows


async def totals(conn: Conn, due_date: date, partner_id: str | None, *, unpaid: bool = False,
                 office_path: str | None = None, officer_id: str | None = None
                 ) -> dict[str, Any]:
    row = await conn.fetchrow(TOTALS_UNPAID if unpaid else TOTALS, due_date, partner_id,
                              office_path, officer_id)
    assert row is not None
    return {"count": row["n"], "amount_due": str(row["amount_due"]), "paid": str(row["paid"]),
            "total": str(row["total"]),
            "by_status": {"due": row["n"] - row["n_paid"] - row["n_partly_paid"],
                          "partly_paid": row["n_partly_paid"], "paid": row["n_paid"]}}
