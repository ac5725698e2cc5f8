"""The background jobs the composition root hands ``ServiceSpec.background``: the saga
sweeper and the daily close-of-business schedule. Close of business itself, and the
runs started over HTTP, are in ``handlers/close_of_business.py``."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import cast

from prometheus_client import Gauge

from services.loans.handlers.close_of_business import recover_stale_runs, run_close_of_business
from services.loans.handlers.group_loans import on_any_deadline, refresh_arrears
from services.loans.handlers.saga import now_utc
from services.loans.repository import cob_runs as runs
from services.loans.repository import sagas as sagas_repo
from services.loans.settings import LoansSettings
from shared.app import Runtime
from shared.clock import BUSINESS_TZ, business_date
from shared.errors import Conflict

log = logging.getLogger("noria.loans.jobs")

SAGA_STATES = Gauge("noria_sagas", "Disbursement sagas by state", ["state"])
OLDEST_IN_DOUBT = Gauge("noria_saga_oldest_in_doubt_seconds",
                        "How long the oldest disbursement saga in doubt has been waiting "
                        "for the provider's word (0: none in doubt)")


async def sweep_once(runtime: Runtime, limit: int = 100) -> int:
    """Drive every saga past its deadline one step; return how many were handled."""
    settings = cast(LoansSettings, runtime.settings)
    policy = settings.saga_policy()
    async with runtime.pool.acquire() as conn:
        due = await sagas_repo.past_deadline(conn, now_utc(), limit)
        counts = await sagas_repo.counts_unfinished(conn)
        oldest = await sagas_repo.oldest_in_doubt_since(conn)
    for state in sagas_repo.UNFINISHED:
        SAGA_STATES.labels(state.value).set(counts.get(state.value, 0))
    OLDEST_IN_DOUBT.set(0 if oldest is None else max(0.0, (now_utc() - oldest).total_seconds()))
    for saga_id in due:
        try:
            async with runtime.uow() as uow:
                await on_any_deadline(uow, saga_id, policy)
                await uow.commit()
        except Exception:
            log.exception("sweeping saga %s failed; next round retries", saga_id)
    if due:
        log.info("saga sweeper handled %d saga(s) past their deadline", len(due))
    try:   # joint liability: a group loan whose member fell into arrears, or was cured
        async with runtime.uow() as uow:
            if await refresh_arrears(uow, business_date(now_utc())):
                await uow.commit()
    except Exception:
        log.exception("group arrears refresh failed; next round retries")
    return len(due)


async def saga_sweeper(runtime: Runtime) -> None:
    settings = cast(LoansSettings, runtime.settings)
    while True:
        await sweep_once(runtime)
        await asyncio.sleep(settings.sweeper_interval_s)


async def cob_scheduler(runtime: Runtime) -> None:
    """Run close of business once a day, after ``cob_daily_at`` (local time in
    Africa/Casablanca), for that business date; nights missed are caught up by the run.

    First, whether scheduled or not: a run this service left ``running`` when its
    process died is marked failed (none is alive unless another replica holds the lock).
    """
    settings = cast(LoansSettings, runtime.settings)
    async with runtime.pool.acquire() as conn:
        await recover_stale_runs(conn)
    if not settings.cob_schedule_enabled:
        return
    while True:
        # the institution's day: a local day in Africa/Casablanca (shared.clock)
        now = datetime.now(UTC).astimezone(BUSINESS_TZ)
        if now.time() >= settings.cob_daily_at:
            async with runtime.pool.acquire() as conn:
                done = await runs.completed(conn, now.date())
            if not done:
                try:
                    await run_close_of_business(
                        runtime.pool, now.date(),
                        due_days_before=settings.repayment_due_days_before,
                        requested_by="scheduler",
                        statement_timeout_s=settings.cob_statement_timeout_s)
                except Conflict:
                    log.info("close of business already running elsewhere")
        await asyncio.sleep(settings.cob_check_interval_s)
