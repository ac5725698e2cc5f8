"""Background work of the savings service: its own topics, the open-withdrawals gauge, and
the daily close of business."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import cast

from services.savings.handlers.close_of_business import recover_stale_runs, run_close_of_business
from services.savings.metrics import OPEN_WITHDRAWALS
from services.savings.repository import cob_runs as runs
from services.savings.settings import SavingsSettings
from shared.app import Runtime
from shared.clock import BUSINESS_TZ, Clock, business_date, system_clock
from shared.contracts import savings
from shared.errors import Conflict, InvalidInput
from shared.kafka import ensure_topics

log = logging.getLogger("noria.savings.jobs")
GAUGE_INTERVAL_S = 30.0


async def ensure_savings_topics(runtime: Runtime) -> None:
    """``savings.events`` and ``savings.commands`` (and their dead letters) exist before
    the relay publishes to them, wherever the platform's topic list is provisioned."""
    s = runtime.settings
    await asyncio.wait_for(ensure_topics(
        s.kafka_bootstrap, [runtime.topic(savings.EVENTS), runtime.topic(savings.COMMANDS)],
        partitions=s.topic_partitions, replication=s.topic_replication), 30)


async def withdrawals_gauge(runtime: Runtime) -> None:
    while True:
        async with runtime.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT status, count(*) AS n FROM withdrawals"
                " WHERE status IN ('pending', 'in_doubt', 'review') GROUP BY status")
        counts = {r["status"]: r["n"] for r in rows}
        for status in ("pending", "in_doubt", "review"):
            OPEN_WITHDRAWALS.labels(status).set(counts.get(status, 0))
        await asyncio.sleep(GAUGE_INTERVAL_S)


def scheduled_date(now: dt.datetime, daily_at: dt.time) -> dt.date:
    """The business date the schedule closes at ``now``: today once the business day
    has ended (``daily_at``, local time), else yesterday (a missed night)."""
    local = now.astimezone(BUSINESS_TZ)
    return local.date() if local.time() >= daily_at else local.date() - dt.timedelta(days=1)


async def cob_scheduler(runtime: Runtime) -> None:
    """Close the business day once it has ended, every day, with any date missed before
    it. Wrapped as a singleton (one replica runs it); and close of business takes its
    own advisory lock, so even two schedulers never run it twice at once.

    First, scheduled or not: a run this service left ``running`` when its process died
    is marked failed (none is alive unless another replica holds the lock)."""
    settings = cast(SavingsSettings, runtime.settings)
    clock = cast(Clock, runtime.state.get("clock", system_clock))
    async with runtime.pool.acquire() as conn:
        await recover_stale_runs(conn)
    if not settings.cob_schedule_enabled:
        return
    while True:
        now = clock()
        target = scheduled_date(now, settings.cob_daily_at)
        async with runtime.pool.acquire() as conn:
            row = await runs.by_date(conn, target)
        if row is None or row["status"] != "completed":
            try:
                result = await run_close_of_business(
                    runtime.pool, target, today=business_date(now), requested_by="scheduler",
                    topic_prefix=settings.topic_prefix,
                    max_days=settings.cob_max_catch_up_days,
                    statement_timeout_s=settings.cob_statement_timeout_s)
                log.info("scheduled savings close of business %s: %d date(s) closed", target,
                         len(result.dates))
            except Conflict:
                log.info("savings close of business already running elsewhere")
            except InvalidInput as exc:
                log.error("scheduled savings close of business %s refused: %s", target, exc)
            except Exception:
                log.exception("scheduled savings close of business %s failed; retried in"
                              " %.0fs", target, settings.cob_check_interval_s)
        await asyncio.sleep(settings.cob_check_interval_s)
