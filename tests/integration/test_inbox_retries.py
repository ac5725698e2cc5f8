"""Inbox retries: a handler's own failure (a TimeoutError too) is retried a bounded
number of times with growing waits, then dead-lettered, and the other partitions flow;
a message whose dead-letter publish fails is not committed and comes back."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError

from shared.envelope import Envelope
from shared.inbox import InboxConsumer
from shared.kafka import dlq_topic, ensure_topics, make_consumer, make_producer
from shared.uow import UnitOfWork
from tests.infra import Infra
from tests.integration.harness import OrderPlacedInTest, Rig, rig
from tests.kafka_facts import TopicReader, until

pytestmark = pytest.mark.integration

STUCK = "order-stuck"


def consumer(r: Rig, dlq: Any, attempts: list[float], **kw: Any) -> InboxConsumer:
    """Books every order; the STUCK order's handler times out talking to a provider."""
    group = f"b-{uuid.uuid4().hex[:8]}"

    async def on_order(uow: UnitOfWork, event: OrderPlacedInTest, env: Envelope) -> None:
        if event.order_id == STUCK and event.seq == 0:
            attempts.append(time.monotonic())
            raise TimeoutError("the provider did not answer within 5s")
        await uow.conn.execute(
            "INSERT INTO effects (event_id, order_id, seq, amount) VALUES ($1, $2, $3, $4)",
            env.event_id, event.order_id, event.seq, event.amount)

    return InboxConsumer(
        service="b", group=group, topics=[r.topic], handlers={"OrderPlacedInTest": on_order},
        pool=r.pool_b, consumer_factory=lambda: make_consumer(
            r.bootstrap, group_id=group, client_id=f"{group}-c"),
        dlq_producer=dlq, **kw)


class FreshTopicReader(TopicReader):
    """Every record of a topic created for the test, read from its start.

    (``TopicReader`` assigns partitions from cluster metadata its consumer never loads
    for topics it is not subscribed to; subscribing loads it.)
    """

    async def start(self) -> FreshTopicReader:
        consumer = AIOKafkaConsumer(*self.topics, bootstrap_servers=self.bootstrap,
                                    group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        self._consumer = consumer
        self._task = asyncio.create_task(self._read(consumer))
        return self

    async def __aenter__(self) -> FreshTopicReader:
        return await self.start()


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics
               for p in sorted(consumer.partitions_for_topic(t) or ())]
        assert tps, f"no partitions known for {topics}"
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def consumed_all(c: InboxConsumer, bootstrap: str, topics: list[str]) -> None:
    ends = {tp: off for tp, off in (await end_offsets(bootstrap, topics)).items() if off}

    async def caught_up() -> bool:
        return all(c.committed.get(tp, 0) >= off for tp, off in ends.items())
    await until(caught_up, f"{c.group} committed through {ends}")


async def dlq_of(r: Rig) -> str:
    topic = dlq_topic(r.topic)
    await ensure_topics(r.bootstrap, [topic], partitions=4)
    return topic


async def effects(r: Rig) -> set[tuple[str, int]]:
    async with r.pool_b.acquire() as conn:
        return {(row["order_id"], row["seq"])
                for row in await conn.fetch("SELECT order_id, seq FROM effects")}


async def test_a_handler_timing_out_is_retried_with_backoff_then_dead_lettered(
        infra: Infra, isolated_schema: Any, fresh_topic: Any) -> None:
    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r, FreshTopicReader(
            infra.kafka_bootstrap, [await dlq_of(r)]) as dead:
        attempts: list[float] = []
        c = consumer(r, r._dlq, attempts, max_retries=4, retry_backoff_s=0.2,
                     retry_backoff_max_s=0.5)
        await r.place_order(STUCK, 0, "10.00")
        others = [f"order-{i}" for i in range(12)]   # keys spread over every partition
        for i, key in enumerate(others):
            await r.place_order(key, i, "1.00")
        await r.place_order(STUCK, 1, "2.00")
        await r.relay().relay_once()
        started = time.monotonic()
        r.start(c.run())

        [record] = await dead.wait_for("OrderPlacedInTest", key=STUCK, timeout_s=30)
        assert record.headers["dlq.reason"] == b"handler_failed"
        assert b"TimeoutError" in record.headers["dlq.exception"]
        await consumed_all(c, infra.kafka_bootstrap, [r.topic])
        assert time.monotonic() - started < 15
        # bounded: 4 attempts of its own (after at most one inside a poll's shared
        # transaction); backoff: the waits grow (0.2+, 0.4+) and are capped
        assert len(attempts) in (4, 5)
        waits = [b - a for a, b in itertools.pairwise(attempts[-4:])]
        assert waits[0] >= 0.19 and waits[1] >= 0.39 and waits[1] > waits[0]
        assert all(w < 1.5 for w in waits)
        # every other order took effect, and the stuck key's next order too
        assert await effects(r) == {(k, i) for i, k in enumerate(others)} | {(STUCK, 1)}
        async with r.pool_b.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM dead_letters") == 1


async def test_a_failed_dead_letter_publish_leaves_the_offset_uncommitted_until_it_succeeds(
        infra: Infra, isolated_schema: Any, fresh_topic: Any) -> None:
    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r, FreshTopicReader(
            infra.kafka_bootstrap, [await dlq_of(r)]) as dead, FreshTopicReader(
            infra.kafka_bootstrap, [r.topic]) as published:
        kafka_for_dlq_is_down = True
        calls = 0
        producer = make_producer(infra.kafka_bootstrap, client_id="dlq-test")
        await producer.start()

        async def dlq() -> Any:
            nonlocal calls
            calls += 1
            if kafka_for_dlq_is_down:
                raise KafkaConnectionError("dead-letter topic unreachable")
            return producer

        attempts: list[float] = []
        c = consumer(r, dlq, attempts, max_retries=1)
        await r.place_order(STUCK, 0, "10.00")
        await r.place_order(STUCK, 1, "2.00")
        others = [f"order-{i}" for i in range(12)]
        for i, key in enumerate(others):
            await r.place_order(key, i, "1.00")
        await r.relay().relay_once()
        [stuck] = [rec for rec in await published.wait_for(count=14)
                   if rec.key == STUCK and rec.payload["seq"] == 0]
        stuck_tp = TopicPartition(r.topic, stuck.partition)
        r.start(c.run())
        try:
            async def dead_letter_retried() -> bool:
                return calls >= 3
            await until(dead_letter_retried, "the dead letter came back and was retried")
            # the other partitions are committed to their end; the stuck one not past it
            ends = await end_offsets(infra.kafka_bootstrap, [r.topic])
            others_done = {tp: off for tp, off in ends.items() if tp != stuck_tp and off}

            async def others_committed() -> bool:
                return all(c.committed.get(tp, 0) >= off for tp, off in others_done.items())
            await until(others_committed, "the other partitions committed")
            assert c.committed.get(stuck_tp, 0) <= stuck.offset
            assert (STUCK, 1) not in await effects(r)   # per-key order: it waits behind
            assert dead.matching(key=STUCK) == []

            kafka_for_dlq_is_down = False
            [record] = await dead.wait_for("OrderPlacedInTest", key=STUCK)
            assert record.headers["dlq.original.offset"] == str(stuck.offset).encode()
            await consumed_all(c, infra.kafka_bootstrap, [r.topic])
            assert c.committed[stuck_tp] > stuck.offset
            assert await effects(r) == {(k, i) for i, k in enumerate(others)} | {(STUCK, 1)}
            assert len(dead.matching(key=STUCK)) == 1
        finally:
            await producer.stop()
