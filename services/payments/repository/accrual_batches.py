"""A night's ``InterestAccrued`` batches staged for payments' accrual workers
(``accrual_dates``, ``accrual_batches``, migration 0020): staged by the consumer,
claimed with a lease by any replica's worker, posted concurrently within the earliest
date not yet complete."""

from __future__ import annotations

import datetime as dt

import asyncpg

from services.payments.repository import Conn
from shared.leases import claim_sql


async def stage(conn: Conn, day: dt.date, batch: int, batches: int, loans: str,
                loan_count: int, event_id: str) -> bool:
    """Stage a batch (its loans as a JSON text); False when the (date, batch) is already
    staged — a batch published again is posted once."""
    await conn.execute(
        "INSERT INTO accrual_dates (business_date, batches) VALUES ($1, $2)"
        " ON CONFLICT (business_date) DO NOTHING", day, batches)
    fresh = await conn.fetchval(
        "INSERT INTO accrual_batches (business_date, batch, loans, loan_count, event_id)"
        " VALUES ($1, $2, $3::text::json, $4, $5) ON CONFLICT (business_date, batch) DO NOTHING"
        " RETURNING 1", day, batch, loans, loan_count, event_id)
    return fresh is not None


async def later_night(conn: Conn, day: dt.date) -> dt.date | None:
    """The latest night staged after ``day`` when ``day`` itself is not staged yet."""
    value: dt.date | None = await conn.fetchval(
        "SELECT max(business_date) FROM accrual_dates WHERE business_date > $1"
        " AND NOT EXISTS (SELECT 1 FROM accrual_dates WHERE business_date = $1)", day)
    return value


# Claimable: a batch of the earliest date not complete, not leased; staged (its accruals
# to post), or accrued once every batch of its date is accrued (its provisions to post).
_CLAIM_SQL = claim_sql(
    "accrual_batches", lease_column="lease_until", lease_s="$1", limit="1",
    also="attempts = attempts + 1",
    due="status <> 'done' AND lease_until < now()"
        " AND business_date = (SELECT min(business_date) FROM accrual_dates"
        "                       WHERE completed_at IS NULL)"
        " AND (status = 'staged' OR (SELECT count(*) FROM accrual_batches o"
        "       WHERE o.business_date = accrual_batches.business_date"
        "         AND o.status <> 'staged')"
        "     = (SELECT d.batches FROM accrual_dates d"
        "         WHERE d.business_date = accrual_batches.business_date))",
    order_by="status DESC, batch",
    returning="id, business_date, batch, status, attempts")


async def claim(conn: Conn, lease_s: float) -> asyncpg.Record | None:
    """Claim one batch to work on for ``lease_s`` seconds, or None."""
    row: asyncpg.Record | None = await conn.fetchrow(_CLAIM_SQL, lease_s)
    return row


async def hold(conn: Conn, batch_id: int) -> asyncpg.Record | None:
    """Lock a claimed batch for the transaction that posts it and read it again: a
    worker whose lease expired while it posted finishes first, the one that took over
    finds the batch moved on."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT id, business_date, batch, status, loans::text AS loans FROM accrual_batches"
        " WHERE id = $1 FOR UPDATE", batch_id)
    return row


async def mark_accrued(conn: Conn, batch_id: int) -> None:
    await conn.execute(
        "UPDATE accrual_batches SET status = 'accrued', accrued_at = now(),"
        " lease_until = '-infinity', last_error = NULL WHERE id = $1", batch_id)


async def mark_done(conn: Conn, batch_id: int, day: dt.date) -> bool:
    """The batch is done (its loans forgotten); the date completed when it was the last
    one. True when this completed the date. The date's row is locked first, so of two
    batches finishing at once the second sees the first's commit."""
    await conn.execute(
        "UPDATE accrual_batches SET status = 'done', done_at = now(), loans = NULL,"
        " lease_until = '-infinity', last_error = NULL WHERE id = $1", batch_id)
    batches = await conn.fetchval(
        "SELECT batches FROM accrual_dates WHERE business_date = $1 FOR NO KEY UPDATE", day)
    done = await conn.fetchval(
        "SELECT count(*) FROM accrual_batches WHERE business_date = $1 AND status = 'done'",
        day)
    if done < batches:
        return False
    await conn.execute("UPDATE accrual_dates SET completed_at = now()"
                       " WHERE business_date = $1 AND completed_at IS NULL", day)
    return True


async def failed(conn: Conn, batch_id: int, error: str, retry_s: float) -> None:
    """Keep a batch whose posting failed for another attempt after ``retry_s``."""
    await conn.execute(
        "UPDATE accrual_batches SET last_error = $2,"
        " lease_until = now() + make_interval(secs => $3) WHERE id = $1",
        batch_id, error[:2000], retry_s)


async def pending_dates(conn: Conn, until: dt.date) -> list[dt.date]:
    """Business dates up to ``until`` whose staged accruals are not all posted yet."""
    return [r["business_date"] for r in await conn.fetch(
        "SELECT business_date FROM accrual_dates WHERE completed_at IS NULL"
        " AND business_date <= $1 ORDER BY business_date", until)]


async def progress(conn: Conn, day: dt.date) -> asyncpg.Record | None:
    """A date's batches: expected, staged, accrued and done."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT d.business_date, d.batches, d.completed_at,"
        " count(b.id) AS staged,"
        " count(b.id) FILTER (WHERE b.status <> 'staged') AS accrued,"
        " count(b.id) FILTER (WHERE b.status = 'done') AS done"
        " FROM accrual_dates d LEFT JOIN accrual_batches b USING (business_date)"
        " WHERE d.business_date = $1 GROUP BY d.business_date", day)
    return row
