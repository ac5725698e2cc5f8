"""Records of one poll share a transaction: the effects are those of one at a time.

A batch with a record its handler refuses, a record delivered twice and records
of several keys ends exactly as the one-record-per-transaction path ends: every
good record booked once, each copy of the refused one dead-lettered, nothing
booked twice.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from tests.infra import Infra
from tests.integration.harness import rig

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("batch_max", [1, 100])
async def test_a_poll_with_a_refused_and_a_duplicated_record_books_each_good_one_once(
        infra: Infra, isolated_schema, fresh_topic, batch_max: int) -> None:
    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        for i in range(12):
            amount = "666.00" if i == 5 else f"{10 + i}.00"  # the handler refuses 666.00
            await r.place_order(f"order-{i % 3}", i, amount)
        relay = r.relay(duplicate=True)  # every record twice, in the same poll
        assert await relay.relay_once() == 12
        consumer = r.consumer(fail_on_amount="666.00", max_retries=2, batch_max=batch_max)
        r.start(consumer.run())
        await r.wait_for_count(11)
        async with r.pool_b.acquire() as conn:
            for _ in range(100):
                if await conn.fetchval("SELECT count(*) FROM dead_letters") >= 2:
                    break
                await r.wait_for_count(11, timeout_s=0.1)
            dead = await conn.fetch("SELECT reason FROM dead_letters")
            inbox = await conn.fetchval(
                "SELECT count(*) FROM inbox WHERE consumer = $1", consumer.group)
        good = sum(Decimal(f"{10 + i}.00") for i in range(12) if i != 5)
        assert await r.totals() == (good, 11, 11)
        # each delivered copy of the refused record fails and is dead-lettered
        assert [d["reason"] for d in dead] == ["handler_failed", "handler_failed"]
        assert inbox == 11


async def test_a_batch_with_an_already_handled_record_in_the_middle_applies_the_others_once(
        infra: Infra, isolated_schema, fresh_topic) -> None:
    from shared.inbox import RawMessage

    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        envs = [await r.place_order(f"order-{i}", i, f"{i + 1}.00") for i in range(6)]

        def raw(i: int, offset: int) -> RawMessage:
            return RawMessage(topic=r.topic, partition=0, offset=offset,
                              key=envs[i].aggregate_id.encode(), value=envs[i].to_bytes(),
                              headers=[("type", b"OrderPlacedInTest")])

        consumer = r.consumer(batch_max=100)
        assert (await consumer.process(raw(3, 0))).status == "applied"
        # a redelivery: record 3 again in the middle, record 1 twice in the same poll
        await consumer.process_many([raw(0, 1), raw(1, 2), raw(1, 3), raw(2, 4), raw(3, 5),
                                     raw(4, 6), raw(5, 7)])
        assert await r.totals() == (Decimal("21.00"), 6, 6)
        async with r.pool_b.acquire() as conn:
            offsets = await conn.fetch(
                "SELECT kafka_offset FROM inbox WHERE consumer = $1 ORDER BY kafka_offset",
                consumer.group)
        # each event's inbox row is the copy that took effect
        assert [o["kafka_offset"] for o in offsets] == [0, 1, 2, 4, 6, 7]


def _poll(r: Any, envs: list[Any]) -> dict[Any, list[Any]]:
    """One poll's records as the consumer gets them: three per partition, four partitions,
    offsets from 10 (the records are the envelopes ``r.place_order`` wrote)."""
    from aiokafka.structs import ConsumerRecord, TopicPartition

    batches: dict[Any, list[Any]] = {}
    for i, env in enumerate(envs):
        partition, offset = i % 4, 10 + i // 4
        batches.setdefault(TopicPartition(r.topic, partition), []).append(ConsumerRecord(
            r.topic, partition, offset, 0, 0, env.aggregate_id.encode(), env.to_bytes(), None,
            0, 0, [("type", b"OrderPlacedInTest")]))
    return batches


async def _assigned(r: Any) -> Any:
    """A real consumer holding the rig topic's four partitions (the loop seeks on it)."""
    from aiokafka.structs import TopicPartition

    from shared.kafka import make_consumer

    consumer = make_consumer(r.bootstrap, group_id=f"b-{uuid.uuid4().hex[:8]}",
                             client_id="test-poll")
    consumer.assign([TopicPartition(r.topic, p) for p in range(4)])
    await consumer.start()
    return consumer


async def _transactions(r: Any) -> int:
    """How many transactions wrote the booked effects (rows of one share an ``xmin``)."""
    async with r.pool_b.acquire() as conn:
        n: int = await conn.fetchval("SELECT count(DISTINCT xmin::text) FROM effects")
        return n


@pytest.mark.parametrize(("across", "transactions"), [(True, 1), (False, 4)])
async def test_one_poll_of_four_partitions_is_booked_in_one_transaction(
        infra: Infra, isolated_schema, fresh_topic, across: bool, transactions: int) -> None:
    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        envs = [await r.place_order(f"order-{i}", i, f"{i + 1}.00") for i in range(12)]
        inbox = r.consumer(batch_max=100, across_partitions=across)
        inbox.consumer = kafka = await _assigned(r)
        try:
            assert await inbox._process_poll(kafka, _poll(r, envs)) is False
        finally:
            await kafka.stop()
        assert await r.totals() == (Decimal(sum(range(1, 13))), 12, 12)
        assert await _transactions(r) == transactions
        # every partition's next offset, to be committed after the database commit
        assert {tp.partition: off for tp, off in inbox._processed.items()} == {
            0: 13, 1: 13, 2: 13, 3: 13}


@pytest.mark.parametrize("across", [True, False])
async def test_a_dead_letter_that_cannot_be_written_keeps_the_partitions_before_it(
        infra: Infra, isolated_schema, fresh_topic, across: bool) -> None:
    """Partition 2's second record is refused and its dead letter cannot be written: the
    partitions before it stand, partition 2 is read again from that record, partition 3
    (not reached) from its first one; nothing is booked twice on the second reading."""
    from aiokafka.structs import TopicPartition

    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        envs = [await r.place_order(f"order-{i}", i, "666.00" if i == 6 else f"{i + 1}.00")
                for i in range(12)]
        inbox = r.consumer(fail_on_amount="666.00", max_retries=1, batch_max=100,
                           across_partitions=across)

        async def no_dead_letters() -> Any:
            raise ConnectionError("the broker refuses the dead letter")

        inbox.dlq_producer = no_dead_letters
        inbox.consumer = kafka = await _assigned(r)
        try:
            assert await inbox._process_poll(kafka, _poll(r, envs)) is True
            positions = {p: await kafka.position(TopicPartition(r.topic, p))
                         for p in (2, 3)}
        finally:
            await kafka.stop()
        # partitions 0 and 1 (records 0, 4, 8 and 1, 5, 9), partition 2's first (2)
        booked = [0, 4, 8, 1, 5, 9, 2]
        assert await r.totals() == (Decimal(sum(i + 1 for i in booked)), 7, 7)
        assert {tp.partition: off for tp, off in inbox._processed.items()} == {
            0: 13, 1: 13, 2: 11}
        assert positions == {2: 11, 3: 10}
