"""Close of business for one business date: a few set-based statements, re-runnable.

1. claim the date in ``cob_runs`` (a completed date is never run twice: the stored
   result is returned);
2. mark overdue installments, charge late penalties, refresh the planner's
   statistics, charge late charges, age arrears — each loan moved into arrears told
   ``LoanInArrears`` in the same statement (each statement its own transaction, each
   idempotent);
3. one transaction: ``RepaymentDue``, cures, reminders and the accrual feed straight
   into the outbox (``INSERT … SELECT``), the PAR snapshots, and the run marked
   completed.

Each of those transactions runs under its own statement timeout
(``cob_statement_timeout_s``, default 30 min), raised with ``shared.db.statement_timeout``
above the background sessions' short one: a night with many overdue installments is
not cut off, and the session's own limit is back when the transaction ends.

A crash between 2 and 3 leaves the run ``running``; running it again redoes step 2
(nothing left to change) and step 3 (which never committed). A session advisory
lock (per schema) keeps two runs from overlapping, and tells a live run from one
whose process died: whoever takes the lock marks any ``running`` row ``failed``.

:func:`run_close_of_business` does it all in the caller's task (the command line,
the daily schedule in ``handlers/jobs.py``); the HTTP API calls
:func:`start_close_of_business`, which claims the date in the request with
:func:`lock_and_claim` and runs :func:`execute` in a background task of the process.
The statements themselves are in ``repository/cob.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, cast

import asyncpg

from services.loans.repository import Conn
from services.loans.repository import calendar as calendar_repo
from services.loans.repository import cob as sql
from services.loans.repository import cob_runs as runs
from services.loans.repository import cob_servicing as servicing_sql
from services.loans.repository import portfolio_snapshot as office_portfolio
from services.loans.repository import schedules as schedules_repo
from services.loans.settings import LoansSettings
from shared.app import Runtime
from shared.contracts import loans as loan_contracts
from shared.db import statement_timeout
from shared.errors import InvalidInput

log = logging.getLogger("noria.loans.cob")
DEFAULT_STATEMENT_TIMEOUT_S = 30 * 60.0
"""How long one close-of-business statement may run (``cob_statement_timeout_s``)."""


@dataclass(frozen=True)
class CobResult:
    business_date: date
    status: str
    rerun: bool
    stats: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"business_date": self.business_date.isoformat(), "status": self.status,
                "rerun": self.rerun, **self.stats}


@dataclass(frozen=True)
class Claim:
    """The date's run row after claiming: ``done`` when it had already completed."""

    run: asyncpg.Record
    done: CobResult | None


recover_stale_runs = runs.RUNS.recover_stale_runs
"""Mark failed the runs left ``running`` by a process that died; [] if a run is alive."""
recover_stale_locked = runs.RUNS.recover_stale_locked
"""With the lock held, no run is alive: any ``running`` row is a dead process's."""


async def claim(conn: Conn, business_date: date, requested_by: str) -> Claim:
    """With the lock held: the stored result of a completed date, or the date claimed."""
    await recover_stale_locked(conn)
    row = await runs.by_date(conn, business_date)
    if row is not None and row["status"] == "completed":
        return Claim(row, CobResult(business_date, "completed", True, dict(row["stats"])))
    latest = await runs.latest_completed(conn)
    if latest is not None and business_date < latest:
        raise InvalidInput(
            f"business dates only move forward: {latest} is already closed",
            field="business_date")
    return Claim(await runs.claim(conn, business_date, requested_by), None)


async def lock_and_claim(conn: Conn, business_date: date, requested_by: str) -> Claim:
    """Take the lock and claim the date; the lock stays held unless this raises or the
    date had already completed (then it is released)."""
    return await runs.RUNS.lock_and_claim(
        conn, lambda: claim(conn, business_date, requested_by))


async def run_close_of_business(pool: asyncpg.Pool, business_date: date, *,
                                due_days_before: int, requested_by: str,
                                statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S
                                ) -> CobResult:
    async with pool.acquire() as conn:
        claimed = await lock_and_claim(conn, business_date, requested_by)
        if claimed.done is not None:
            log.info("close of business %s already completed; nothing to do", business_date)
            return claimed.done
        try:
            return await execute(conn, business_date, claimed.run["run_id"],
                                 due_days_before=due_days_before, requested_by=requested_by,
                                 statement_timeout_s=statement_timeout_s)
        except Exception as exc:
            await record_failure(pool, business_date, f"{type(exc).__name__}: {exc}")
            raise
        finally:
            await runs.unlock(conn)


async def record_failure(pool: asyncpg.Pool, business_date: date, error: str) -> None:
    """Best effort: the run's own connection may be the thing that broke."""
    try:
        async with pool.acquire(timeout=5) as other:
            await runs.fail(other, business_date, error)
    except Exception:
        log.warning("could not mark close of business %s failed; the next start or"
                    " status check will", business_date, exc_info=True)


async def execute(conn: Conn, business_date: date, run_id: str, *, due_days_before: int,
                  requested_by: str, topic_prefix: str = "",
                  statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S) -> CobResult:
    """Steps 2 and 3 on a claimed date (the caller holds the lock on ``conn``); each
    transaction's statements may run up to ``statement_timeout_s`` (0: no limit).

    Catch-up first: if nights were missed since the last date closed, each missed date
    is run before this one, in order, exactly as its own nightly run would have been
    (its own ``cob_runs`` row, requested by ``<who> (catch-up)``), so reminders,
    penalties, ageing and events are what nightly runs would have produced."""
    caught_up = await catch_up(conn, business_date, due_days_before=due_days_before,
                               requested_by=requested_by, topic_prefix=topic_prefix,
                               statement_timeout_s=statement_timeout_s)
    result = await execute_day(conn, business_date, run_id,
                               due_days_before=due_days_before, requested_by=requested_by,
                               topic_prefix=topic_prefix,
                               statement_timeout_s=statement_timeout_s)
    if caught_up:
        log.info("close of business %s caught up %d missed date(s): %s", business_date,
                 len(caught_up), ", ".join(d.isoformat() for d in caught_up))
    return result


async def catch_up(conn: Conn, business_date: date, *, due_days_before: int,
                   requested_by: str, topic_prefix: str = "",
                   statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S) -> list[date]:
    """Run every date between the last one closed and ``business_date`` (exclusive), in
    order; the dates run. Nothing before the first date ever closed."""
    latest = await runs.latest_completed(conn)
    done: list[date] = []
    if latest is None:
        return done
    day = latest + timedelta(days=1)
    while day < business_date:
        if not await runs.completed(conn, day):
            row = await runs.claim(conn, day, f"{requested_by} (catch-up)")
            await execute_day(conn, day, row["run_id"], due_days_before=due_days_before,
                              requested_by=f"{requested_by} (catch-up)",
                              topic_prefix=topic_prefix,
                              statement_timeout_s=statement_timeout_s)
            done.append(day)
        day += timedelta(days=1)
    return done


async def execute_day(conn: Conn, business_date: date, run_id: str, *, due_days_before: int,
                      requested_by: str, topic_prefix: str = "",
                      statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S) -> CobResult:
    """One business date's steps (no catch-up)."""
    started = time.perf_counter()
    events_topic = f"{topic_prefix}{loan_contracts.EVENTS}"
    stats: dict[str, Any] = {"requested_by": requested_by, "run_id": run_id}
    log.info("close of business %s started (run %s)", business_date, run_id)

    penalised_when_marked = 0

    async def mark_overdue(conn: Conn, business_date: date) -> int:
        nonlocal penalised_when_marked
        marked, penalised_when_marked = await sql.mark_overdue(conn, business_date)
        return marked

    async def apply_penalties(conn: Conn, business_date: date) -> int:
        # the installments penalised as they were marked overdue, and the others
        return penalised_when_marked + await sql.apply_penalties(conn, business_date)

    async def age_arrears(conn: Conn, business_date: date) -> int:
        # a loan moved into (another bucket of) arrears is told LoanInArrears in the same
        # statement and transaction, after the date's penalties and late charges
        reaged, stats["in_arrears_events"] = await sql.age_arrears(
            conn, business_date, run_id, events_topic)
        return reaged

    steps: tuple[tuple[str, Callable[[Conn, date], Awaitable[int]] | None], ...] = (
        ("installments_marked_overdue", mark_overdue),
        ("penalties_applied", apply_penalties),
        ("statistics", None),
        ("late_charges_applied", servicing_sql.apply_late_charges),
        ("loans_reaged", age_arrears),
        ("worst_arrears_tracked", servicing_sql.track_worst_arrears))
    for name, step in steps:
        await runs.progress(conn, business_date, name, stats)
        t0 = time.perf_counter()
        async with conn.transaction(), statement_timeout(conn, statement_timeout_s):
            if step is None:
                # the steps above may have just changed hundreds of thousands of rows:
                # give the planner true numbers before the joins that follow
                await sql.refresh_statistics(conn)
            else:
                stats[name] = await step(conn, business_date)
        log.info("close of business %s: %s = %s (%.2fs)", business_date, name,
                 stats.get(name, "refreshed"), time.perf_counter() - t0)

    await runs.progress(conn, business_date, "events_and_snapshot", stats)
    async with conn.transaction(), statement_timeout(conn, statement_timeout_s):
        t0 = time.perf_counter()
        stats["repayment_due_events"] = await sql.emit_repayment_due(
            conn, business_date, run_id, due_days_before, events_topic)
        # cures, reminders and the accrual feed (InterestAccrued), once per date
        stats.update(await servicing_sql.emit_servicing_events(
            conn, business_date, run_id, events_topic, due_days_before=due_days_before))
        log.info("close of business %s: %d RepaymentDue and %d LoanInArrears events (%.2fs)",
                 business_date, stats["repayment_due_events"], stats["in_arrears_events"],
                 time.perf_counter() - t0)
        # restructured loans whose borrower has paid the agreed installments on time
        stats["restructured_cured"] = await schedules_repo.cure_restructured(conn)
        await sql.take_snapshot(conn, business_date)
        stats["portfolio_rows"] = await office_portfolio.take(conn, business_date)
        stats["seconds"] = round(time.perf_counter() - started, 3)
        await runs.complete(conn, business_date, stats)
        await calendar_repo.advance(conn, business_date)
    log.info("close of business %s completed in %.2fs", business_date, stats["seconds"])
    return CobResult(business_date, "completed", False, stats)


async def start_close_of_business(runtime: Runtime, business_date: date, requested_by: str
                                  ) -> tuple[asyncpg.Record, bool]:
    """Claim the date now and run it in a background task of this process.

    Returns the date's run and whether this call started it. A date already completed,
    or already running, is returned as it is (idempotent per date); another date while
    one runs is a 409; an earlier date than the last closed one a 422.
    """
    settings = cast(LoansSettings, runtime.settings)

    async def running_for_date(_conn: Conn, current: asyncpg.Record | None
                               ) -> asyncpg.Record | None:
        return current if current is not None and current["business_date"] == business_date \
            else None

    async def run(pool: asyncpg.Pool, conn: Conn, claimed: Claim) -> None:
        await _run(runtime, pool, conn, business_date, claimed.run["run_id"], requested_by,
                   settings)

    return await runs.RUNS.start_in_background(
        runtime, business_date,
        lock_and_claim=lambda conn: lock_and_claim(conn, business_date, requested_by),
        running_for_date=running_for_date, run=run,
        task_name=f"cob-{business_date.isoformat()}")


async def _run(runtime: Runtime, pool: asyncpg.Pool, conn: Any, business_date: date,
               run_id: str, requested_by: str, settings: LoansSettings) -> None:
    """The run itself, on ``conn`` (which holds the lock; given back to ``pool`` after)."""
    try:
        await execute(conn, business_date, run_id,
                      due_days_before=settings.repayment_due_days_before,
                      requested_by=requested_by, topic_prefix=settings.topic_prefix,
                      statement_timeout_s=settings.cob_statement_timeout_s)
    except asyncio.CancelledError:
        log.warning("close of business %s interrupted: the service is stopping",
                    business_date)
        await record_failure(pool, business_date,
                             "interrupted: the service stopped before it finished")
        raise
    except Exception as exc:
        log.exception("close of business %s failed", business_date)
        await record_failure(pool, business_date, f"{type(exc).__name__}: {exc}")
