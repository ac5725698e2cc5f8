"""Close of business for one business date: a few set-based statements, re-runnable.

1. claim the date in ``cob_runs`` (a completed date is never run twice: the stored
   result is returned);
2. mark overdue installments, charge late penalties, refresh the planner's
   statistics, age arrears (each statement its own transaction, each idempotent);
3. one transaction: ``RepaymentDue`` and ``LoanInArrears`` events straight into the
   outbox (``INSERT … SELECT``), the PAR snapshot, and the run marked completed.

A crash between 2 and 3 leaves the run ``running``; running it again redoes step 2
(nothing left to change) and step 3 (which never committed). A session advisory
lock keeps two runs from overlapping.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from services.loans.repository import Conn
from services.loans.repository import cob as sql
from services.loans.topics import topic
from shared.contracts import loans as loan_contracts
from shared.errors import Conflict, InvalidInput

log = logging.getLogger("noria.loans.cob")
LOCK_KEY = "noria.loans.close_of_business"


@dataclass(frozen=True)
class CobResult:
    business_date: date
    status: str
    rerun: bool
    stats: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"business_date": self.business_date.isoformat(), "status": self.status,
                "rerun": self.rerun, **self.stats}


def _count(tag: str) -> int:
    """Rows touched, from asyncpg's command tag ("UPDATE 12", "INSERT 0 3")."""
    return int(tag.rsplit(" ", 1)[-1]) if tag and tag[-1].isdigit() else 0


async def _stored(conn: Conn, business_date: date) -> CobResult | None:
    row = await conn.fetchrow("SELECT status, stats FROM cob_runs WHERE business_date = $1",
                              business_date)
    if row is None or row["status"] != "completed":
        return None
    return CobResult(business_date, "completed", True, dict(row["stats"]))


async def run_close_of_business(pool: asyncpg.Pool, business_date: date, *,
                                due_days_before: int, requested_by: str) -> CobResult:
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", LOCK_KEY):
            raise Conflict("a close of business is already running; retry when it ends",
                           field="business_date")
        try:
            return await _run(conn, business_date, due_days_before, requested_by)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", LOCK_KEY)


async def _run(conn: Conn, business_date: date, due_days_before: int,
               requested_by: str) -> CobResult:
    done = await _stored(conn, business_date)
    if done is not None:
        log.info("close of business %s already completed; nothing to do", business_date)
        return done
    latest = await conn.fetchval(
        "SELECT max(business_date) FROM cob_runs WHERE status = 'completed'")
    if latest is not None and business_date < latest:
        raise InvalidInput(
            f"business dates only move forward: {latest} is already closed",
            field="business_date")
    await conn.execute(
        "INSERT INTO cob_runs (business_date, status) VALUES ($1, 'running')"
        " ON CONFLICT (business_date) DO UPDATE SET started_at = now()", business_date)
    run_id = str(uuid.uuid4())
    started = time.perf_counter()
    events_topic = topic(loan_contracts.EVENTS)
    stats: dict[str, Any] = {"requested_by": requested_by, "run_id": run_id}
    log.info("close of business %s started (run %s)", business_date, run_id)

    for name, statement in (("installments_marked_overdue", sql.MARK_OVERDUE),
                            ("penalties_applied", sql.APPLY_PENALTIES),
                            ("statistics", sql.ANALYZE),
                            ("loans_reaged", sql.AGE_ARREARS)):
        t0 = time.perf_counter()
        if name == "statistics":
            # the steps above may have just changed hundreds of thousands of rows: give
            # the planner true numbers before the joins that follow
            await conn.execute(statement)
        else:
            async with conn.transaction():
                stats[name] = _count(await conn.execute(statement, business_date))
        log.info("close of business %s: %s = %s (%.2fs)", business_date, name,
                 stats.get(name, "refreshed"), time.perf_counter() - t0)

    async with conn.transaction():
        t0 = time.perf_counter()
        stats["repayment_due_events"] = _count(await conn.execute(
            sql.EMIT_REPAYMENT_DUE, business_date, run_id, due_days_before, events_topic))
        stats["in_arrears_events"] = _count(await conn.execute(
            sql.EMIT_IN_ARREARS, business_date, run_id, events_topic))
        log.info("close of business %s: %d RepaymentDue and %d LoanInArrears events (%.2fs)",
                 business_date, stats["repayment_due_events"], stats["in_arrears_events"],
                 time.perf_counter() - t0)
        await conn.execute(sql.SNAPSHOT, business_date)
        stats["seconds"] = round(time.perf_counter() - started, 3)
        await conn.execute(
            "UPDATE cob_runs SET status = 'completed', finished_at = now(), stats = $2"
            " WHERE business_date = $1", business_date, stats)
    log.info("close of business %s completed in %.2fs", business_date, stats["seconds"])
    return CobResult(business_date, "completed", False, stats)
