"""Background work of the savings service: its own topics, and the open-withdrawals gauge."""

from __future__ import annotations

import asyncio
import logging

from services.savings.metrics import OPEN_WITHDRAWALS
from shared.app import Runtime
from shared.contracts import savings
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
