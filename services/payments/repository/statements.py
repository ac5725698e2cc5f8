"""What the ledger's lines add up to per GL account, over a span of business dates and
for one office or all (the statements' input), and the lines behind one GL account."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from services.payments.domain.statements import Totals
from services.payments.repository import Conn

# Lines written before the chart existed carry no GL code: they are read through the
# default rule of their ledger account's kind.
_TOTALS_SQL = (
    "SELECT coalesce(l.gl_code, r.gl_code, '3499') AS code,"
    " coalesce(sum(l.amount) FILTER (WHERE l.side = 'debit'), 0) AS debits,"
    " coalesce(sum(l.amount) FILTER (WHERE l.side = 'credit'), 0) AS credits"
    " FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id"
    " LEFT JOIN accounts a ON l.gl_code IS NULL AND a.id = l.account_id"
    " LEFT JOIN accounting_rules r ON r.product_id = '*' AND r.kind = a.kind"
    " WHERE e.business_date <= $1 AND ($2::date IS NULL OR e.business_date >= $2)"
    " AND ($3::text[] IS NULL OR l.office_id = ANY($3::text[]))"
    " AND ($4::boolean OR e.kind <> 'year_end_close')"
    " GROUP BY 1")


async def gl_totals(conn: Conn, *, to: dt.date, since: dt.date | None = None,
                    offices: Sequence[str] | None = None,
                    include_closing: bool = True) -> dict[str, Totals]:
    """Per GL code; ``offices``: only the lines booked to these offices (None: all)."""
    rows = await conn.fetch(_TOTALS_SQL, to, since,
                            None if offices is None else list(offices), include_closing)
    return {r["code"]: Totals(r["debits"], r["credits"]) for r in rows}


async def gl_lines(conn: Conn, code: str, *, to: dt.date, since: dt.date | None,
                   offices: Sequence[str] | None, limit: int, before: int | None
                   ) -> list[dict[str, Any]]:
    """The lines behind a GL account (drill-down), newest first, keyset on the line id
    (lines below ``before``)."""
    rows = await conn.fetch(
        "SELECT l.id, l.account_id, l.side, l.amount, l.office_id, e.transfer_id, e.kind,"
        " e.loan_id, e.memo, e.business_date, e.created_at"
        " FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id"
        " WHERE l.gl_code = $1 AND e.business_date <= $2"
        " AND ($3::date IS NULL OR e.business_date >= $3)"
        " AND ($4::text[] IS NULL OR l.office_id = ANY($4::text[]))"
        " AND ($5::bigint IS NULL OR l.id < $5)"
        " ORDER BY l.id DESC LIMIT $6", code, to, since,
        None if offices is None else list(offices), before, limit)
    return [{"line_id": r["id"], "account_id": r["account_id"], "side": r["side"],
             "amount": r["amount"], "office_id": r["office_id"],
             "transfer_id": r["transfer_id"], "kind": r["kind"], "loan_id": r["loan_id"],
             "memo": r["memo"], "business_date": r["business_date"],
             "posted_at": r["created_at"]} for r in rows]


async def result_by_office(conn: Conn, to: dt.date) -> dict[str | None, dict[str, Totals]]:
    """Income and expense GL totals up to ``to`` per office (what a year-end close moves)."""
    rows = await conn.fetch(
        "SELECT l.office_id, g.code,"
        " coalesce(sum(l.amount) FILTER (WHERE l.side = 'debit'), 0) AS debits,"
        " coalesce(sum(l.amount) FILTER (WHERE l.side = 'credit'), 0) AS credits"
        " FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id"
        " LEFT JOIN accounts a ON l.gl_code IS NULL AND a.id = l.account_id"
        " LEFT JOIN accounting_rules r ON r.product_id = '*' AND r.kind = a.kind"
        " JOIN gl_accounts g ON g.code = coalesce(l.gl_code, r.gl_code, '3499')"
        " WHERE e.business_date <= $1 AND g.type IN ('income', 'expense')"
        " GROUP BY 1, 2", to)
    out: dict[str | None, dict[str, Totals]] = {}
    for r in rows:
        out.setdefault(r["office_id"], {})[r["code"]] = Totals(r["debits"], r["credits"])
    return out
