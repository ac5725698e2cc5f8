"""Portfolio at risk: the live portfolio of active loans and the close-of-business
snapshots (``portfolio_snapshots``). ``$1`` is a partner id, or NULL for every partner.
"""

from __future__ import annotations

import asyncpg

from services.loans.repository import Conn

LIVE_PORTFOLIO = """
SELECT count(*) AS loans_active, COALESCE(sum(principal_outstanding), 0) AS outstanding,
       COALESCE(sum(principal_outstanding) FILTER (WHERE days_in_arrears > 1), 0) AS par1,
       COALESCE(sum(principal_outstanding) FILTER (WHERE days_in_arrears > 30), 0) AS par30,
       COALESCE(sum(principal_outstanding) FILTER (WHERE days_in_arrears > 90), 0) AS par90
  FROM loans WHERE status = 'active' AND ($1::text IS NULL OR partner_id = $1)
"""

LIVE_BUCKETS = """
SELECT arrears_bucket AS bucket, count(*) AS loans, COALESCE(sum(principal_outstanding), 0)
       AS principal
  FROM loans WHERE status = 'active' AND ($1::text IS NULL OR partner_id = $1)
 GROUP BY arrears_bucket
"""

STATUS_COUNTS = """
SELECT status, count(*) AS n FROM loans WHERE ($1::text IS NULL OR partner_id = $1)
 GROUP BY status
"""


async def live(conn: Conn, partner_id: str | None = None) -> asyncpg.Record:
    """Active loans, outstanding principal and PAR1/30/90 principal, as of now."""
    row: asyncpg.Record | None = await conn.fetchrow(LIVE_PORTFOLIO, partner_id)
    assert row is not None   # an aggregate without GROUP BY always has its row
    return row


async def live_buckets(conn: Conn, partner_id: str | None = None) -> dict[str, asyncpg.Record]:
    """Active loans and principal per arrears bucket (only buckets with loans)."""
    return {r["bucket"]: r for r in await conn.fetch(LIVE_BUCKETS, partner_id)}


async def status_counts(conn: Conn, partner_id: str | None = None) -> dict[str, int]:
    return {r["status"]: r["n"] for r in await conn.fetch(STATUS_COUNTS, partner_id)}


async def latest_snapshot(conn: Conn) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM portfolio_snapshots ORDER BY business_date DESC LIMIT 1")
    return row


async def snapshots(conn: Conn, limit: int) -> list[asyncpg.Record]:
    """The close-of-business snapshots, newest business date first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT * FROM portfolio_snapshots ORDER BY business_date DESC LIMIT $1", limit)
    return rows
