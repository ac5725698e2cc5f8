"""Background jobs: the saga sweeper, the daily close-of-business schedule and the
close-of-business runs started over HTTP."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime
from typing import Any, cast

import asyncpg
from prometheus_client import Gauge

from services.loans import cob
from services.loans.cob import run_close_of_business
from services.loans.domain.saga import SagaStatus
from services.loans.handlers.saga import now_utc, on_deadline
from services.loans.repository import cob_runs as runs
from services.loans.repository import sagas as sagas_repo
from services.loans.settings import LoansSettings
from shared.app import Runtime
from shared.errors import Conflict

log = logging.getLogger("noria.loans.jobs")

LOCK_ATTEMPTS = 5
SAGA_STATES = Gauge("noria_sagas", "Disbursement sagas by state", ["state"])


async def sweep_once(runtime: Runtime, limit: int = 100) -> int:
    """Drive every saga past its deadline one step; return how many were handled."""
    settings = cast(LoansSettings, runtime.settings)
    policy = settings.saga_policy()
    async with runtime.pool.acquire() as conn:
        due = await sagas_repo.past_deadline(conn, now_utc(), limit)
        counts = await sagas_repo.counts_unfinished(conn)
    for state in (SagaStatus.RESERVING_CREDIT, SagaStatus.DISBURSING, SagaStatus.COMPENSATING,
                  SagaStatus.FAILED):
        SAGA_STATES.labels(state.value).set(counts.get(state.value, 0))
    for saga_id in due:
        try:
            async with runtime.uow() as uow:
                await on_deadline(uow, saga_id, policy)
                await uow.commit()
        except Exception:
            log.exception("sweeping saga %s failed; next round retries", saga_id)
    if due:
        log.info("saga sweeper handled %d saga(s) past their deadline", len(due))
    return len(due)


async def saga_sweeper(runtime: Runtime) -> None:
    settings = cast(LoansSettings, runtime.settings)
    while True:
        await sweep_once(runtime)
        await asyncio.sleep(settings.sweeper_interval_s)


async def cob_scheduler(runtime: Runtime) -> None:
    """Run close of business once a day, after ``cob_daily_at`` (UTC), for that date.

    First, whether scheduled or not: a run this service left ``running`` when its
    process died is marked failed (none is alive unless another replica holds the lock).
    """
    settings = cast(LoansSettings, runtime.settings)
    async with runtime.pool.acquire() as conn:
        await cob.recover_stale_runs(conn)
    if not settings.cob_schedule_enabled:
        return
    while True:
        now = datetime.now(UTC)
        if now.time() >= settings.cob_daily_at:
            async with runtime.pool.acquire() as conn:
                done = await conn.fetchval(
                    "SELECT 1 FROM cob_runs WHERE business_date = $1 AND status = 'completed'",
                    now.date())
            if not done:
                try:
                    await run_close_of_business(
                        runtime.pool, now.date(),
                        due_days_before=settings.repayment_due_days_before,
                        requested_by="scheduler")
                except Conflict:
                    log.info("close of business already running elsewhere")
        await asyncio.sleep(settings.cob_check_interval_s)


async def start_close_of_business(runtime: Runtime, business_date: date, requested_by: str
                                  ) -> tuple[asyncpg.Record, bool]:
    """Claim the date now and run it in a background task of this process.

    Returns the date's run and whether this call started it. A date already completed,
    or already running, is returned as it is (idempotent per date); another date while
    one runs is a 409; an earlier date than the last closed one a 422.
    """
    settings = cast(LoansSettings, runtime.settings)
    async with runtime.pool.acquire() as conn:
        row = await runs.by_date(conn, business_date)
    if row is not None and row["status"] == "completed":
        return row, False
    conn = await runtime.pool.acquire()
    owned = False
    try:
        for attempt in range(LOCK_ATTEMPTS):
            try:
                claimed = await cob.lock_and_claim(conn, business_date, requested_by)
                break
            except Conflict:
                current = await runs.running(conn)
                if current is not None and current["business_date"] == business_date:
                    return current, False
                if current is None and attempt + 1 < LOCK_ATTEMPTS:
                    # a status check holding the lock for a moment, or a run just ending
                    await asyncio.sleep(0.2)
                    continue
            raise Conflict(
                "a close of business is already running; retry when it ends"
                + (f" (business date {current['business_date']}, run {current['run_id']})"
                   if current is not None else ""),
                field="business_date",
                running_run_id=None if current is None else current["run_id"]) from None
        if claimed.done is not None:
            return claimed.run, False
        task = asyncio.create_task(
            _run(runtime, conn, business_date, claimed.run["run_id"], requested_by,
                 settings.repayment_due_days_before),
            name=f"cob-{business_date.isoformat()}")
        owned = True
        runtime.tasks[:] = [t for t in runtime.tasks if not t.done()]
        runtime.tasks.append(task)   # cancelled, and so marked failed, at shutdown
        return claimed.run, True
    finally:
        if not owned:
            await runtime.pool.release(conn)


async def _run(runtime: Runtime, conn: Any, business_date: date, run_id: str,
               requested_by: str, due_days_before: int) -> None:
    """The run itself; owns ``conn`` (which holds the lock) and gives it back."""
    try:
        await cob.execute(conn, business_date, run_id, due_days_before=due_days_before,
                          requested_by=requested_by,
                          topic_prefix=runtime.settings.topic_prefix)
    except asyncio.CancelledError:
        log.warning("close of business %s interrupted: the service is stopping",
                    business_date)
        await cob.record_failure(runtime.pool, business_date,
                                 "interrupted: the service stopped before it finished")
        raise
    except Exception as exc:
        log.exception("close of business %s failed", business_date)
        await cob.record_failure(runtime.pool, business_date, f"{type(exc).__name__}: {exc}")
    finally:
        # releasing resets the session, which drops the advisory lock even when the
        # run's connection is in no state to run pg_advisory_unlock
        await runtime.pool.release(conn)
