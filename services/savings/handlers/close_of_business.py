"""Savings' close of business: every business date up to the one asked, in order.

For each date not yet completed (a missed night is caught up before the next): claim
it in ``cob_runs``, then, each step its own transaction and idempotent for the date,

1. ``maturities``: term deposits maturing that day post their interest and renew or
   wait to be paid out;
2. ``accruals``: a day of interest on every accruing account's closing balance;
3. ``postings``: at a month's (or quarter's) end, the period's interest is credited,
   the withholding tax debited, ``InterestPosted`` events written to the outbox;
4. ``dormancy``: accounts without client transactions for their product's months go
   dormant (``AccountDormant``);

then the date is marked completed. A crash leaves the date ``running`` (failed once the
lock is free): running it again skips what each step already did. A session advisory
lock per schema keeps two runs apart.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from services.savings.domain import interest
from services.savings.repository import Conn
from services.savings.repository import cob as sql
from services.savings.repository import cob_runs as runs
from shared.contracts import savings as contracts
from shared.errors import Conflict, InvalidInput

log = logging.getLogger("noria.savings.cob")


@dataclass
class CobResult:
    business_date: dt.date
    dates: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"business_date": self.business_date.isoformat(), "dates": self.dates}


async def dates_to_run(conn: Conn, business_date: dt.date, *, max_days: int) -> list[dt.date]:
    """The dates still to close up to ``business_date``, oldest first."""
    latest = await runs.latest_completed(conn)
    if latest is not None and business_date <= latest:
        done = await runs.by_date(conn, business_date)
        if done is not None and done["status"] == "completed":
            return []
        raise InvalidInput(f"business dates only move forward: {latest} is already closed",
                           field="business_date")
    first = latest + dt.timedelta(days=1) if latest is not None else (
        await sql.first_uncovered(conn) or business_date)
    first = min(first, business_date)
    count = (business_date - first).days + 1
    if count > max_days:
        raise InvalidInput(f"{count} business dates to catch up: more than {max_days}",
                           field="business_date")
    return [first + dt.timedelta(days=i) for i in range(count)]


async def close_date(conn: Conn, day: dt.date, *, requested_by: str, topic: str
                     ) -> dict[str, Any]:
    """One date, step by step (the caller holds the lock)."""
    run = await runs.claim(conn, day, requested_by)
    run_id = run["run_id"]
    stats: dict[str, Any] = {"run_id": run_id, "requested_by": requested_by}
    started = time.perf_counter()
    diy = interest.days_in_year(day.year)
    steps: tuple[tuple[str, Any], ...] = (
        ("maturities", lambda: sql.mature(conn, day, run_id, topic)),
        ("accruals", lambda: sql.accrue(conn, day, diy)),
        ("postings", lambda: sql.post(
            conn, day, run_id, topic,
            month_end=interest.is_period_end(day, "monthly"),
            quarter_end=interest.is_period_end(day, "quarterly"),
            month_start=interest.period_start(day, "monthly"),
            quarter_start=interest.period_start(day, "quarterly"), days_in_year=diy)),
        ("dormancy", lambda: sql.dormancy(conn, day, run_id, topic)),
    )
    for name, step in steps:
        await runs.progress(conn, day, name, stats)
        t0 = time.perf_counter()
        async with conn.transaction():
            stats[name] = await step()
        log.info("savings close of business %s: %s = %d (%.2fs)", day, name, stats[name],
                 time.perf_counter() - t0)
    stats["seconds"] = round(time.perf_counter() - started, 3)
    await runs.complete(conn, day, stats)
    log.info("savings close of business %s completed in %.2fs", day, stats["seconds"])
    return {"business_date": day.isoformat(), "status": "completed", **stats}


async def run_close_of_business(pool: asyncpg.Pool, business_date: dt.date, *, today: dt.date,
                                requested_by: str, topic_prefix: str = "",
                                max_days: int = 366) -> CobResult:
    """Close every date up to ``business_date`` not closed yet, in order (idempotent: a
    date already completed is not run again)."""
    if business_date > today:
        raise InvalidInput(f"{business_date} has not ended yet (today is {today})",
                           field="business_date")
    topic = f"{topic_prefix}{contracts.EVENTS}"
    result = CobResult(business_date)
    async with pool.acquire() as conn:
        if not await runs.try_lock(conn):
            raise Conflict("a savings close of business is already running; retry when it"
                           " ends", field="business_date")
        try:
            for day in await runs.fail_stale(conn):
                log.warning("savings close of business %s was left running by a process"
                            " that stopped; it is run again", day)
            todo = await dates_to_run(conn, business_date, max_days=max_days)
            if len(todo) > 1:
                log.info("savings close of business: catching up %d dates, %s to %s",
                         len(todo), todo[0], todo[-1])
            for day in todo:
                try:
                    result.dates.append(await close_date(
                        conn, day, requested_by=requested_by, topic=topic))
                except Exception as exc:
                    await runs.fail(conn, day, f"{type(exc).__name__}: {exc}")
                    raise
        finally:
            await runs.unlock(conn)
    return result
