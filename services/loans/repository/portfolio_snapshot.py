"""Close of business: the portfolio per business date x office x loan officer x product
(``portfolio_office_snapshots``), and the roll-ups the portfolio API reads from it.

One set-based statement per night: active loans (outstanding principal, PAR1/30/90 and
arrears buckets exactly as the institution's ``portfolio_snapshots`` row counts them, so
the rows of a date sum to it to the centime) with their open installments' interest,
fees and penalties (summed per loan first, then joined to the loan: one pass over each
table), the loans disbursed that day and the repayments applied that business day
(a local day in Africa/Casablanca). ``officer_id`` '' = no officer.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

from services.loans.repository import Conn
from services.loans.repository.org import in_subtree

BUCKET_COLUMNS = {"current": "current", "1-30": "b1_30", "31-60": "b31_60",
                  "61-90": "b61_90", "90+": "b90"}
COLUMNS = (
    "loans_active", "outstanding_principal", "outstanding_interest", "outstanding_fees",
    "outstanding_penalties", "par1_principal", "par30_principal", "par90_principal",
    *(f"{c}_{x}" for c in BUCKET_COLUMNS.values() for x in ("loans", "principal")),
    "restructured_loans", "restructured_principal", "disbursed_loans",
    "disbursed_principal", "collected_count", "collected_amount",
)

_TWENTY_ZEROS = ", ".join(["0"] * 20)

_KEYS = "office_id, office_path, COALESCE(officer_id, ''), product_id"
_GROUP = "GROUP BY office_id, office_path, officer_id, product_id"

# Each part aggregates its own rows (only the sums it has), then the few thousand
# partial rows are added up per office x officer x product.
TAKE = f"""
INSERT INTO portfolio_office_snapshots (business_date, office_id, office_path, officer_id,
                                        product_id, {", ".join(COLUMNS)})
SELECT $1::date, office_id, min(office_path), officer_id, product_id,
       {", ".join(f"sum({c})" for c in COLUMNS)}
  FROM (
    SELECT l.office_id, l.office_path, COALESCE(l.officer_id, ''), l.product_id, count(*),
           sum(l.principal_outstanding), COALESCE(sum(o.interest), 0),
           COALESCE(sum(o.fees), 0), COALESCE(sum(o.penalties), 0),
           COALESCE(sum(l.principal_outstanding) FILTER (WHERE l.days_in_arrears > 1), 0),
           COALESCE(sum(l.principal_outstanding) FILTER (WHERE l.days_in_arrears > 30), 0),
           COALESCE(sum(l.principal_outstanding) FILTER (WHERE l.days_in_arrears > 90), 0),
           {", ".join(
               f"count(*) FILTER (WHERE l.arrears_bucket = '{b}'), "
               f"COALESCE(sum(l.principal_outstanding) FILTER "
               f"(WHERE l.arrears_bucket = '{b}'), 0)"
               for b in BUCKET_COLUMNS)},
           count(*) FILTER (WHERE l.restructured),
           COALESCE(sum(l.principal_outstanding) FILTER (WHERE l.restructured), 0),
           0, 0, 0, 0
      FROM loans l
      LEFT JOIN (
        -- what the open installments still owe, one row per loan: aggregated before the
        -- join, so the join is loan to loan (hash) instead of every open installment
        -- carried through a join and a wide GROUP BY
        SELECT loan_id, sum(interest_due - interest_paid) AS interest,
               sum(fees_due - fees_paid) AS fees,
               sum(penalties_due - penalties_paid) AS penalties
          FROM installments WHERE is_open GROUP BY loan_id
      ) o ON o.loan_id = l.id
     WHERE l.status = 'active'
     GROUP BY l.office_id, l.office_path, l.officer_id, l.product_id
    UNION ALL
    SELECT {_KEYS}, {_TWENTY_ZEROS}, count(*), sum(principal), 0, 0
      FROM loans WHERE disbursed_on = $1::date {_GROUP}
    UNION ALL
    SELECT l.office_id, l.office_path, COALESCE(l.officer_id, ''), l.product_id,
           {_TWENTY_ZEROS}, 0, 0, count(*), sum(r.amount)
      FROM repayments r JOIN loans l ON l.id = r.loan_id
     WHERE r.outcome = 'applied'
       AND r.received_at >= ($1::date)::timestamp AT TIME ZONE 'Africa/Casablanca'
       AND r.received_at < ($1::date + 1)::timestamp AT TIME ZONE 'Africa/Casablanca'
     GROUP BY l.office_id, l.office_path, l.officer_id, l.product_id
  ) AS parts(office_id, office_path, officer_id, product_id, {", ".join(COLUMNS)})
 GROUP BY office_id, officer_id, product_id
"""


async def take(conn: Conn, business_date: date) -> int:
    """The date's rows (replacing any left by an earlier attempt); how many."""
    await conn.execute("DELETE FROM portfolio_office_snapshots WHERE business_date = $1",
                       business_date)
    tag = await conn.execute(TAKE, business_date)
    return int(tag.rsplit(" ", 1)[-1])


# -- reads ---------------------------------------------------------------------------
_FILTER = (f"{in_subtree('office_path', 2)} AND ($3::text IS NULL OR officer_id = $3)"
           " AND ($4::text IS NULL OR product_id = $4)")


async def rollups(conn: Conn, *, office_path: str | None, officer_id: str | None,
                  product_id: str | None, limit: int) -> list[dict[str, Any]]:
    """The snapshots summed over the rows in scope, one per date, newest first."""
    rows = await conn.fetch(
        f"SELECT business_date, {', '.join(f'sum({c}) AS {c}' for c in COLUMNS)}"
        f" FROM portfolio_office_snapshots WHERE business_date IN ("
        f"   SELECT DISTINCT business_date FROM portfolio_office_snapshots"
        f"    ORDER BY business_date DESC LIMIT $1) AND {_FILTER}"
        " GROUP BY business_date ORDER BY business_date DESC",
        limit, office_path, officer_id, product_id)
    return [dict(r) for r in rows]


# -- the live portfolio in scope --------------------------------------------------------
_LIVE_FILTER = (f"{in_subtree('office_path', 1)} AND ($2::text IS NULL OR officer_id = $2)"
                " AND ($3::text IS NULL OR product_id = $3)")


async def live(conn: Conn, office_path: str | None, officer_id: str | None,
               product_id: str | None) -> tuple[asyncpg.Record, list[asyncpg.Record],
                                                 dict[str, int]]:
    """Active loans now: totals and PAR, by bucket, and every loan in scope by status."""
    args = (office_path, officer_id, product_id)
    totals = await conn.fetchrow(
        "SELECT count(*) AS loans_active, COALESCE(sum(principal_outstanding), 0) AS outstanding,"
        " COALESCE(sum(principal_outstanding) FILTER (WHERE days_in_arrears > 1), 0) AS par1,"
        " COALESCE(sum(principal_outstanding) FILTER (WHERE days_in_arrears > 30), 0) AS par30,"
        " COALESCE(sum(principal_outstanding) FILTER (WHERE days_in_arrears > 90), 0) AS par90"
        f" FROM loans WHERE status = 'active' AND {_LIVE_FILTER}", *args)
    assert totals is not None
    buckets = await conn.fetch(
        "SELECT arrears_bucket AS bucket, count(*) AS loans,"
        " COALESCE(sum(principal_outstanding), 0) AS principal FROM loans"
        f" WHERE status = 'active' AND {_LIVE_FILTER} GROUP BY arrears_bucket", *args)
    statuses = {r["status"]: r["n"] for r in await conn.fetch(
        f"SELECT status, count(*) AS n FROM loans WHERE {_LIVE_FILTER} GROUP BY status",
        *args)}
    return totals, buckets, statuses
