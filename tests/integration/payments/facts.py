"""The facts payments' tests wait on before asserting that something did *not* happen.

"No second ``RefundIssued``" only means something once every record that could have
caused one was read, its effect committed and what it emitted published and read
back. :func:`settled` waits for exactly that, in three observable steps:

1. each payments consumer group has committed (in Kafka) an offset at or past the end
   each of its topics has now: every record sent before took effect or was a no-op;
2. every outbox row written until now is marked published by the relay;
3. the rig's reader of ``payments.events`` has read as many records as the topic holds
   now (it reads the rig's own topic from its start, so offsets are its count).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

from services.payments.settings import PaymentsSettings
from shared.contracts import clients, loans, payments, savings
from tests.integration.payments.conftest import Events, Rig
from tests.kafka_facts import end_offsets, until

GROUPS: dict[str, tuple[str, ...]] = {
    # services/payments/consumers.py: each group and the topics it reads
    "payments": (payments.COMMANDS, loans.EVENTS),
    "payments-savings": (savings.EVENTS,),
    "payments-clients": (clients.EVENTS,),
}


async def consumed_all(settings: PaymentsSettings, groups: Sequence[str] = ("payments",),
                       timeout_s: float = 30.0) -> None:
    """Each named consumer group of the payments service configured by ``settings`` has
    committed every record its topics hold now."""
    bootstrap = settings.kafka_bootstrap
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for group in groups:
            topics = [settings.topic(t) for t in GROUPS[group]]
            ends = {tp: off for tp, off in (await end_offsets(bootstrap, topics)).items()
                    if off}
            name = f"{settings.topic_prefix}{group}"

            async def caught_up(name: str = name, ends: Any = ends) -> bool:
                committed = await admin.list_consumer_group_offsets(name)
                return all(tp in committed and committed[tp].offset >= off
                           for tp, off in ends.items())
            await until(caught_up, f"{name} committed through {ends}", timeout_s)
    finally:
        await admin.close()


async def published_all(pool: asyncpg.Pool, events: Events, timeout_s: float = 30.0
                        ) -> None:
    """The relay has published every outbox row written until now, and ``events`` (a
    reader of the service's ``payments.events`` and ``payments.postings`` from their start)
    has read all they hold."""
    async with pool.acquire() as conn:
        last = await conn.fetchval("SELECT coalesce(max(id), 0) FROM outbox")

    async def relayed() -> bool:
        async with pool.acquire() as conn:
            return not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM outbox WHERE id <= $1 AND published_at IS NULL)",
                last)
    await until(relayed, f"outbox rows through {last} published", timeout_s)
    ends = await end_offsets(events.bootstrap, list(events.topics))
    total = sum(ends.values())

    async def read() -> bool:
        return len(events.seen) >= total
    await until(read, f"the reader has the {total} records of {events.topics}", timeout_s)


async def settled(rig: Rig, groups: Sequence[str] = ("payments",),
                  timeout_s: float = 30.0) -> None:
    """Everything sent to payments until now took effect, and what it emitted was read."""
    await consumed_all(rig.settings, groups, timeout_s)
    await published_all(rig.pool, rig.events, timeout_s)


async def refund_payouts(pool: asyncpg.Pool, payment_id: str) -> list[str]:
    """The statuses of the refund payouts of a payment, oldest first: one ``completed``
    and nothing pending is a refund paid once with nothing left that could pay again."""
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT status FROM payouts WHERE kind = 'refund'"
                                " AND payment_id = $1 ORDER BY created_at", uuid.UUID(payment_id))
    return [r["status"] for r in rows]
