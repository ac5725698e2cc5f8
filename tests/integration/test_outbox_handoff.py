"""Publishing right after commit: the committing process hands its rows to its relay.

What a user would notice: an aggregate's events still arrive in commit order —
written concurrently, by one process or by two replicas writing the same
aggregate — and none is lost when a process dies between its commit and its
publish, nor sent twice when a stalled process hands its rows over after their
lease ran out and another replica published them; a commit whose own process
publishes its rows sends no NOTIFY, while a row left to the claim-and-lease
relay still wakes it.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from shared.db import create_pool
from shared.outbox import listen_for_outbox
from shared.uow import UnitOfWork, attach_publisher, detach_publisher
from tests.infra import Infra
from tests.integration.harness import OrderPlacedInTest, Rig, rig
from tests.integration.test_outbox_inbox import read_topic
from tests.kafka_facts import consumed_all, end_offsets, until

pytestmark = pytest.mark.integration


async def place(r: Rig, pool: asyncpg.Pool, key: str, seq: int) -> int:
    """Rig.place_order through ``pool`` (a replica's): the aggregate's new version, its
    commit order."""
    async with UnitOfWork(pool) as uow:
        version: int = await uow.conn.fetchval(
            "INSERT INTO aggregates (key, version) VALUES ($1, 1) ON CONFLICT (key)"
            " DO UPDATE SET version = aggregates.version + 1 RETURNING version", key)
        await uow.conn.execute("INSERT INTO orders (id, seq, amount) VALUES ($1, $2, $3)",
                               f"{key}-{seq}", seq, Decimal("1.00"))
        uow.emit(OrderPlacedInTest(order_id=key, seq=seq, amount=Decimal("1.00")),
                 key=key, topic=r.topic)
        await uow.commit()
    r.versions[(key, seq)] = version
    return version


class Replica:
    """One process of service A: its pool, its relay, the relay attached to the pool."""

    def __init__(self, r: Rig, pool: asyncpg.Pool, **kw: Any) -> None:
        self.pool = pool
        self.relay = r.relay(**kw)
        self.relay.pool = pool

    def start(self, r: Rig, *, claim: bool = True) -> None:
        self.relay.start_handoff()
        attach_publisher(self.pool, self.relay)
        if claim:
            r.start(self.relay.run())

    def detach(self) -> None:
        detach_publisher(self.pool, self.relay)


async def unpublished(r: Rig) -> int:
    async with r.pool_a.acquire() as conn:
        n: int = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    return n


async def all_published(r: Rig, expect: int) -> bool:
    async with r.pool_a.acquire() as conn:
        n = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")
    return n >= expect and await unpublished(r) == 0


def versions_in_kafka_order(r: Rig, records: list[tuple[bytes | None, bytes, dict[str, bytes]]]
                            ) -> dict[str, list[int]]:
    """Per key, the commit order (aggregate version) of each event, in the order Kafka
    holds them; a repeat of an event (at-least-once) counts where it first arrived."""
    seen: set[str] = set()
    out: dict[str, list[int]] = defaultdict(list)
    for key, value, _ in records:
        env = orjson.loads(value)
        if env["event_id"] in seen:
            continue
        seen.add(env["event_id"])
        payload = env["payload"]
        out[key.decode() if key else ""].append(r.versions[(payload["order_id"],
                                                            payload["seq"])])
    return out


@pytest.fixture
async def second_pool(infra: Infra, isolated_schema: Any) -> AsyncIterator[Any]:
    pools: list[asyncpg.Pool] = []

    async def make(r: Rig) -> asyncpg.Pool:
        pool = await create_pool(r.dsn_a, schema=r.schema_a, max_size=6)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.close()


async def test_events_handed_over_are_published_in_per_key_order_under_concurrency(
        infra: Infra, isolated_schema, fresh_topic) -> None:
    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        replica = Replica(r, r.pool_a, poll_interval_s=30.0)
        replica.start(r)
        try:
            keys = [f"k-{i}" for i in range(4)]

            async def writer(w: int) -> None:
                for seq in range(w, 60, 6):
                    await place(r, r.pool_a, keys[seq % 4], seq)

            # one event emitted inside a trace: its traceparent header is the envelope's
            ctx = trace.set_span_in_context(NonRecordingSpan(SpanContext(
                trace_id=0x0AF7651916CD43DD8448EB211C80319C, span_id=0x00F067AA0BA902B7,
                is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))))
            token = otel_context.attach(ctx)
            try:
                await place(r, r.pool_a, "traced", 1000)
            finally:
                otel_context.detach(token)
            await asyncio.gather(*(writer(w) for w in range(6)))
            await until(lambda: all_published(r, 61), "every event handed over published")
        finally:
            replica.detach()
        records = await read_topic(infra.kafka_bootstrap, r.topic, 61)
        order = versions_in_kafka_order(r, records)
        for key in keys:
            assert order[key] == list(range(1, 16)), key
        traced = [h for k, _, h in records if k == b"traced"]
        assert traced and traced[0]["type"] == b"OrderPlacedInTest"
        assert traced[0]["traceparent"] == (
            b"00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01")
        async with r.pool_a.acquire() as conn:
            # rows handed over keep their claim token when marked
            assert await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE claim_token = $1",
                replica.relay.handoff_token) >= 1


async def test_a_process_dying_after_commit_leaves_its_rows_to_another_replica(
        infra: Infra, isolated_schema, fresh_topic, second_pool) -> None:
    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        dying = Replica(r, r.pool_a, handoff_lease_s=1.0)
        dying.start(r, claim=False)
        # the process dies right after each commit: nothing it committed reaches its relay
        dying.relay.hand_over = lambda events: None  # type: ignore[method-assign]
        try:
            for i in range(6):
                await place(r, r.pool_a, f"order-{i % 2}", i)
        finally:
            dying.detach()
        async with r.pool_a.acquire() as conn:
            assert await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL AND claim_token = $1",
                dying.relay.handoff_token) == 6

        other = Replica(r, await second_pool(r), poll_interval_s=0.2)
        other.start(r)
        consumer = r.consumer()
        r.start(consumer.run())
        await r.wait_for_count(6)
        await until(lambda: all_published(r, 6), "the dead process's rows published")
        await consumed_all(consumer, infra.kafka_bootstrap, [r.topic])
        assert await r.totals() == (Decimal("6.00"), 6, 6)
        records = await read_topic(infra.kafka_bootstrap, r.topic, 6)
        order = versions_in_kafka_order(r, records)
        assert order == {"order-0": [1, 2, 3], "order-1": [1, 2, 3]}
        async with r.pool_a.acquire() as conn:
            # published by the other replica's claim, not by the dead process
            assert await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE claim_token = $1",
                dying.relay.handoff_token) == 0


async def test_two_replicas_writing_one_key_keep_its_commit_order(
        infra: Infra, isolated_schema, fresh_topic, second_pool) -> None:
    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        one = Replica(r, r.pool_a, poll_interval_s=0.2)
        two = Replica(r, await second_pool(r), poll_interval_s=0.2)
        rng = random.Random(18)

        async def slow_publish(ids: list[int]) -> None:
            # one replica's hand-over lags behind: the other's later rows of a key must wait
            await asyncio.sleep(rng.uniform(0.0, 0.03))

        one.relay.before_handoff_publish = slow_publish
        for replica in (one, two):
            replica.start(r)
            r.start(listen_for_outbox(r.dsn_a, r.schema_a, replica.relay.wakeup))
        try:
            keys = ["shared-1", "shared-2"]

            async def writer(replica: Replica, w: int) -> None:
                for seq in range(w, 80, 4):  # every writer writes both keys in turn
                    await place(r, replica.pool, keys[(seq // 4) % 2], seq)

            await asyncio.gather(writer(one, 0), writer(two, 1), writer(one, 2), writer(two, 3))
            await until(lambda: all_published(r, 80), "every event published", timeout_s=60)
        finally:
            one.detach()
            two.detach()
        records = await read_topic(infra.kafka_bootstrap, r.topic, 80)
        order = versions_in_kafka_order(r, records)
        assert order == {key: list(range(1, 41)) for key in keys}


async def test_no_notify_when_the_process_publishes_but_a_row_left_behind_wakes_the_relay(
        infra: Infra, isolated_schema, fresh_topic, second_pool) -> None:
    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        notes: list[str] = []
        listener = await asyncpg.connect(r.dsn_a)
        await listener.add_listener(f"{r.schema_a}_outbox",
                                    lambda *args: notes.append(args[3]))
        try:
            # the relay's poll is 30 s: a prompt publication below is a wake-up's doing
            replica = Replica(r, r.pool_a, poll_interval_s=30.0)
            replica.start(r)
            r.start(listen_for_outbox(r.dsn_a, r.schema_a, replica.relay.wakeup))
            try:
                for i in range(5):
                    await place(r, r.pool_a, f"order-{i}", i)
                await until(lambda: all_published(r, 5), "the handed-over rows published")
                # notifications arrive in commit order: the marker is the first one
                async with r.pool_a.acquire() as conn:
                    await conn.execute(f"NOTIFY {r.schema_a}_outbox, 'marker'")
                await until(lambda: _true(bool(notes)), "the marker notification")
                assert notes == ["marker"]

                # a process whose units of work are not attached: NOTIFY, and the relay wakes
                script_pool = await second_pool(r)
                await place(r, script_pool, "order-x", 10)
                await until(lambda: all_published(r, 6), "the left-behind row published",
                            timeout_s=20)
                assert notes[1:] == [""]

                # a hand-over that cannot publish releases its rows to the woken claim
                async def kafka_refuses(ids: list[int]) -> None:
                    raise ConnectionError("broker unreachable")

                replica.relay.before_handoff_publish = kafka_refuses
                await place(r, r.pool_a, "order-y", 11)
                await until(lambda: all_published(r, 7), "the released row published",
                            timeout_s=20)
            finally:
                replica.detach()
        finally:
            await listener.close()
        records = await read_topic(infra.kafka_bootstrap, r.topic, 7)
        assert {k for k, _, _ in records} == {
            b"order-0", b"order-1", b"order-2", b"order-3", b"order-4", b"order-x", b"order-y"}


async def _true(value: bool) -> bool:
    return value


async def test_a_hand_over_that_comes_after_its_lease_publishes_nothing_twice(
        infra: Infra, isolated_schema, fresh_topic, second_pool) -> None:
    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        stalled = Replica(r, r.pool_a, handoff_lease_s=1.0)
        stalled.start(r, claim=False)
        take = stalled.relay.hand_over
        late: list[asyncio.Task[None]] = []

        async def after_a_stall(events: list[Any]) -> None:
            # the process stalls (a long pause) between its commit and its hand-over
            await until(lambda: all_published(r, len(events)), "another replica's claim",
                        timeout_s=20)
            take(events)

        stalled.relay.hand_over = (  # type: ignore[method-assign]
            lambda events: late.append(asyncio.create_task(after_a_stall(events))))
        try:
            for i in range(4):
                async with UnitOfWork(r.pool_a) as uow:  # one commit, four keys
                    for key in ("a", "b", "c", "d"):
                        uow.emit(OrderPlacedInTest(order_id=key, seq=i, amount=Decimal("1")),
                                 key=key, topic=r.topic)
                    await uow.commit()
        finally:
            stalled.detach()
        other = Replica(r, await second_pool(r), poll_interval_s=0.2)
        other.start(r)
        checked: list[int] = []
        step = stalled.relay._handoff_step

        async def counted(batch: list[Any]) -> list[int]:
            free = await step(batch)
            checked.extend(e.id for e in batch)
            return free
        stalled.relay._handoff_step = counted  # type: ignore[method-assign]
        await asyncio.gather(*late)

        async def stalled_hand_over_done() -> bool:
            return len(checked) == 16 and not stalled.relay._handed_unmarked
        await until(stalled_hand_over_done, "the late hand-over checked")
        sent = sum((await end_offsets(infra.kafka_bootstrap, [r.topic])).values())
        assert sent == 16  # each event once: the late hand-over found its claim gone
        async with r.pool_a.acquire() as conn:
            assert await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE claim_token = $1",
                stalled.relay.handoff_token) == 0
