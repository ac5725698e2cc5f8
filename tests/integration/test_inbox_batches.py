"""Records of one poll share a transaction: the effects are those of one at a time.

A batch with a record its handler refuses, a record delivered twice and records
of several keys ends exactly as the one-record-per-transaction path ends: every
good record booked once, each copy of the refused one dead-lettered, nothing
booked twice.
"""

from __future__ import annotations

from decimal import Decimal

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
