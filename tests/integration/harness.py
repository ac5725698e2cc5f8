"""A two-service rig on the real broker and server, for the platform tests.

"Service A" writes orders and emits ``OrderPlacedInTest`` through its outbox;
"service B" consumes them through the inbox into its own schema. Each test gets
fresh schemas and a fresh topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

import asyncpg

from shared.db import create_pool
from shared.envelope import Contract, Envelope, register
from shared.inbox import InboxConsumer
from shared.kafka import make_consumer, make_producer
from shared.money import Amount
from shared.outbox import OutboxRelay
from shared.uow import UnitOfWork


@register
class OrderPlacedInTest(Contract):
    """A test-only event; its topic is chosen per test."""

    topic: ClassVar[str] = "unused"
    order_id: str
    seq: int
    amount: Amount


@dataclass
class Rig:
    bootstrap: str
    topic: str
    pool_a: asyncpg.Pool
    pool_b: asyncpg.Pool
    schema_a: str
    schema_b: str
    dsn_a: str
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    relays: list[OutboxRelay] = field(default_factory=list)
    # (key, seq) -> the aggregate's version that write produced: its commit order
    versions: dict[tuple[str, int], int] = field(default_factory=dict)
    dlq_producer: Any = None

    async def place_order(self, order_id: str, seq: int, amount: str, *, commit: bool = True
                          ) -> Envelope:
        uow = UnitOfWork(self.pool_a)
        async with uow:
            # Like every aggregate write, bump the aggregate's version: its row lock
            # orders concurrent writers of one key, so commit order = outbox id order.
            version = await uow.conn.fetchval(
                "INSERT INTO aggregates (key, version) VALUES ($1, 1) ON CONFLICT (key)"
                " DO UPDATE SET version = aggregates.version + 1 RETURNING version", order_id)
            await uow.conn.execute(
                "INSERT INTO orders (id, seq, amount) VALUES ($1, $2, $3)",
                f"{order_id}-{seq}", seq, Decimal(amount))
            env = uow.emit(OrderPlacedInTest(order_id=order_id, seq=seq, amount=Decimal(amount)),
                           key=order_id, topic=self.topic)
            if commit:
                await uow.commit()
                self.versions[(order_id, seq)] = version
        return env

    def relay(self, **kw: Any) -> OutboxRelay:
        relay = OutboxRelay(
            self.pool_a, lambda: make_producer(self.bootstrap, client_id="test-relay"),
            service="a", schema=self.schema_a, **kw)
        self.relays.append(relay)
        return relay

    async def _dlq(self) -> Any:
        if self.dlq_producer is None:
            self.dlq_producer = make_producer(self.bootstrap, client_id="test-dlq")
            await self.dlq_producer.start()
        return self.dlq_producer

    def consumer(self, group: str | None = None, *, fail_on_amount: str | None = None,
                 **kw: Any) -> InboxConsumer:
        group = group or f"b-{uuid.uuid4().hex[:8]}"

        async def on_order(uow: UnitOfWork, event: OrderPlacedInTest, env: Envelope) -> None:
            if fail_on_amount is not None and event.amount == Decimal(fail_on_amount):
                raise ValueError(f"cannot book an order of {event.amount}")
            await uow.conn.execute(
                "INSERT INTO effects (event_id, order_id, seq, amount) VALUES ($1, $2, $3, $4)",
                env.event_id, event.order_id, event.seq, event.amount)
            await uow.conn.execute(
                "UPDATE totals SET booked = booked + $1, count = count + 1", event.amount)

        return InboxConsumer(
            service="b", group=group, topics=[self.topic],
            handlers={"OrderPlacedInTest": on_order}, pool=self.pool_b,
            consumer_factory=lambda: make_consumer(self.bootstrap, group_id=group,
                                                   client_id=f"{group}-c"),
            dlq_producer=self._dlq, retry_backoff_s=0.05, **kw)

    def start(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self.tasks.append(task)
        return task

    async def totals(self) -> tuple[Decimal, int, int]:
        async with self.pool_b.acquire() as conn:
            row = await conn.fetchrow("SELECT booked, count FROM totals")
            effects = await conn.fetchval("SELECT count(*) FROM effects")
        return row["booked"], row["count"], effects

    async def wait_for_count(self, n: int, timeout_s: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            _, count, _ = await self.totals()
            if count >= n:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"only {(await self.totals())[1]} of {n} events took effect")


@contextlib.asynccontextmanager
async def rig(isolated_schema: Any, fresh_topic: Any, bootstrap: str) -> AsyncIterator[Rig]:
    a = await isolated_schema("svc_a")
    b = await isolated_schema("svc_b")
    topic = await fresh_topic("platform")
    pool_a = await create_pool(a.dsn, schema=a.schema, max_size=6)
    pool_b = await create_pool(b.dsn, schema=b.schema, max_size=6)
    async with pool_a.acquire() as conn:
        await conn.execute(
            "CREATE TABLE orders (id text PRIMARY KEY, seq int, amount numeric(14,2))")
        await conn.execute("CREATE TABLE aggregates (key text PRIMARY KEY, version int)")
    async with pool_b.acquire() as conn:
        await conn.execute(
            "CREATE TABLE effects (event_id uuid PRIMARY KEY, order_id text, seq int,"
            " amount numeric(14,2))")
        await conn.execute("CREATE TABLE totals (booked numeric(14,2), count int)")
        await conn.execute("INSERT INTO totals VALUES (0, 0)")
    r = Rig(bootstrap, topic, pool_a, pool_b, a.schema, b.schema, a.dsn)
    try:
        yield r
    finally:
        for task in r.tasks:
            task.cancel()
        for task in r.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for relay in r.relays:
            await relay.stop()
        if r.dlq_producer is not None:
            await r.dlq_producer.stop()
        await pool_a.close()
        await pool_b.close()
