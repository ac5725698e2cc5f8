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

then the date is marked completed. Each step's transaction runs under its own statement
timeout (``cob_statement_timeout_s``, 30 min by default), raised with
``shared.db.statement_timeout`` above the background sessions' short one: one UPDATE
over 1.24 million accounts is not cut off, and the session's own limit is back when the
transaction ends. Every date and step is logged with its count and duration.

A crash leaves the date ``running`` (failed once the lock is free): running it again
skips what each step already did. A session advisory lock per schema keeps two runs
apart (and so two replicas' schedulers), and tells a live run from a dead process's.

:func:`run_close_of_business` does it all in the caller's task (the command line, the
daily schedule in ``jobs.py``); the HTTP API calls :func:`start_close_of_business`,
which takes the lock and claims the date in the request (so a 202 always names a run)
and runs the dates in a background task of the process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg

from services.savings.domain import interest
from services.savings.repository import Conn
from services.savings.repository import cob as sql
from services.savings.repository import cob_runs as runs
from services.savings.settings import SavingsSettings
from shared.app import Runtime
from shared.contracts import savings as contracts
from shared.db import statement_timeout
from shared.errors import InvalidInput

log = logging.getLogger("noria.savings.cob")
DEFAULT_STATEMENT_TIMEOUT_S = 30 * 60.0
STEPS = ("maturities", "accruals", "postings", "dormancy")


@dataclass
class CobResult:
    business_date: dt.date
    dates: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"business_date": self.business_date.isoformat(), "dates": self.dates}


@dataclass(frozen=True)
class Plan:
    """A claimed run: the target date's row and the dates to close, oldest first
    (empty and ``done`` when the date had already completed)."""

    run: asyncpg.Record
    todo: list[dt.date]
    done: bool = False


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


recover_stale_locked = runs.RUNS.recover_stale_locked
"""With the lock held, no run is alive: any ``running`` row is a dead process's."""
recover_stale_runs = runs.RUNS.recover_stale_runs
"""Mark failed the runs a dead process left ``running``; [] while a run is alive."""


async def lock_and_plan(conn: Conn, business_date: dt.date, *, today: dt.date,
                        requested_by: str, max_days: int) -> Plan:
    """Take the lock and claim the date. The lock stays held unless this raises or the
    date had already completed (then it is released)."""
    if business_date > today:
        raise InvalidInput(f"{business_date} has not ended yet (today is {today})",
                           field="business_date")

    async def plan() -> Plan:
        await recover_stale_locked(conn)
        row = await runs.by_date(conn, business_date)
        if row is not None and row["status"] == "completed":
            return Plan(row, [], done=True)
        todo = await dates_to_run(conn, business_date, max_days=max_days)
        run = await runs.claim(conn, business_date, requested_by,
                               step="starting" if len(todo) <= 1 else f"waiting for {todo[0]}")
        return Plan(run, todo)

    return await runs.RUNS.lock_and_claim(conn, plan)


async def close_date(conn: Conn, day: dt.date, run: asyncpg.Record, *, requested_by: str,
                     topic: str, statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S,
                     extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One claimed date, step by step (the caller holds the lock)."""
    run_id = run["run_id"]
    stats: dict[str, Any] = {"run_id": run_id, "requested_by": requested_by, **(extra or {})}
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
        async with conn.transaction(), statement_timeout(conn, statement_timeout_s):
            stats[name] = await step()
        log.info("savings close of business %s: %s = %d account(s) (%.2fs)", day, name,
                 stats[name], time.perf_counter() - t0)
    stats["seconds"] = round(time.perf_counter() - started, 3)
    await runs.complete(conn, day, stats)
    log.info("savings close of business %s completed in %.2fs (run %s)", day,
             stats["seconds"], run_id)
    return {"business_date": day.isoformat(), "status": "completed", **stats}


async def execute(conn: Conn, plan: Plan, *, requested_by: str, topic: str,
                  statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S) -> CobResult:
    """Every date of a claimed plan, in order (the caller holds the lock on ``conn``)."""
    target: dt.date = plan.run["business_date"]
    result = CobResult(target)
    earlier = [d for d in plan.todo if d != target]
    if earlier:
        log.info("savings close of business %s: catching up %d earlier date(s), %s to %s",
                 target, len(earlier), earlier[0], earlier[-1])
    for i, day in enumerate(plan.todo, start=1):
        log.info("savings close of business: date %d of %d, %s", i, len(plan.todo), day)
        if day == target:
            run = plan.run
            extra = {"caught_up": [d.isoformat() for d in earlier]} if earlier else None
        else:
            await runs.progress(conn, target, f"catching up {day}", {})
            run = await runs.claim(conn, day, requested_by)
            extra = None
        try:
            result.dates.append(await close_date(
                conn, day, run, requested_by=requested_by, topic=topic,
                statement_timeout_s=statement_timeout_s, extra=extra))
        except BaseException as exc:
            error = ("interrupted: the service stopped before it finished"
                     if isinstance(exc, asyncio.CancelledError)
                     else f"{type(exc).__name__}: {exc}")
            await _record_failure(conn, day, error)
            if day != target:
                await _record_failure(conn, target, f"{day} failed first: {error}")
            raise
    return result


async def _record_failure(conn: Conn, day: dt.date, error: str) -> None:
    """Best effort: the run's own connection may be what broke (then the next start or
    status check marks it failed)."""
    try:
        await asyncio.shield(runs.fail(conn, day, error))
    except BaseException:
        log.warning("could not mark savings close of business %s failed", day, exc_info=True)


async def run_close_of_business(pool: asyncpg.Pool, business_date: dt.date, *, today: dt.date,
                                requested_by: str, topic_prefix: str = "",
                                max_days: int = 366,
                                statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S
                                ) -> CobResult:
    """Close every date up to ``business_date`` not closed yet, in order, in the
    caller's task (idempotent: a date already completed is not run again)."""
    topic = f"{topic_prefix}{contracts.EVENTS}"
    async with pool.acquire() as conn:
        plan = await lock_and_plan(conn, business_date, today=today,
                                   requested_by=requested_by, max_days=max_days)
        if plan.done:
            log.info("savings close of business %s already completed", business_date)
            return CobResult(business_date)
        try:
            return await execute(conn, plan, requested_by=requested_by, topic=topic,
                                 statement_timeout_s=statement_timeout_s)
        finally:
            await runs.unlock(conn)


async def start_close_of_business(runtime: Runtime, business_date: dt.date, *,
                                  today: dt.date, requested_by: str
                                  ) -> tuple[asyncpg.Record, bool]:
    """Claim the date now and close it (with any earlier date still open) in a
    background task of this process.

    Returns the date's run and whether this call started it: a date already completed,
    or already running, is returned as it is (idempotent per date); another date while
    one runs is a 409; a date not ended yet or earlier than the last closed one a 422.
    """
    settings = cast(SavingsSettings, runtime.settings)

    async def running_for_date(conn: Conn, _current: asyncpg.Record | None
                               ) -> asyncpg.Record | None:
        mine = await runs.by_date(conn, business_date)
        return mine if mine is not None and mine["status"] == "running" else None

    async def run(pool: asyncpg.Pool, conn: Conn, plan: Plan) -> None:
        await _run(pool, conn, plan, requested_by, settings)

    return await runs.RUNS.start_in_background(
        runtime, business_date,
        lock_and_claim=lambda conn: lock_and_plan(
            conn, business_date, today=today, requested_by=requested_by,
            max_days=settings.cob_max_catch_up_days),
        running_for_date=running_for_date, run=run,
        task_name=f"savings-cob-{business_date.isoformat()}")


async def _run(pool: asyncpg.Pool, conn: Any, plan: Plan, requested_by: str,
               settings: SavingsSettings) -> None:
    """The run itself, on ``conn`` (which holds the lock; given back to ``pool`` after)."""
    try:
        await execute(conn, plan, requested_by=requested_by,
                      topic=settings.topic(contracts.EVENTS),
                      statement_timeout_s=settings.cob_statement_timeout_s)
    except asyncio.CancelledError:
        log.warning("savings close of business %s interrupted: the service is stopping",
                    plan.run["business_date"])
        raise
    except Exception:
        log.exception("savings close of business %s failed", plan.run["business_date"])
