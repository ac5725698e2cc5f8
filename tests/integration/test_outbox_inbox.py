"""The outbox → Kafka → inbox path on the real broker and server.

What a user would notice: an order booked once in service A is booked exactly
once in service B, whatever the relay or the consumer suffer on the way.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from decimal import Decimal

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from shared.kafka import dlq_topic
from shared.uow import UnitOfWork
from tests.infra import Infra
from tests.integration.harness import OrderPlacedInTest, Rig, rig
from tests.kafka_facts import consumed_all, until

pytestmark = pytest.mark.integration


async def read_topic(bootstrap: str, topic: str, expect: int, timeout_s: float = 20.0
                     ) -> list[tuple[bytes | None, bytes, dict[str, bytes]]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    out: list[tuple[bytes | None, bytes, dict[str, bytes]]] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(out) < expect and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=300)
            for records in batches.values():
                out.extend((r.key, r.value, dict(r.headers)) for r in records)
    finally:
        await consumer.stop()
    return out


async def expire_leases(r: Rig) -> None:
    """The relay that claimed the unpublished rows is dead and its lease has run out: the
    lease's expiry put in the past, instead of waiting for it."""
    async with r.pool_a.acquire() as conn:
        await conn.execute("UPDATE outbox SET claimed_until = now() - interval '1 second'"
                           " WHERE published_at IS NULL AND claimed_until IS NOT NULL")


async def test_every_record_delivered_twice_takes_effect_once(
        infra: Infra, isolated_schema, fresh_topic) -> None:
    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        for i in range(20):
            await r.place_order(f"order-{i % 5}", i, "100.50")
        relay = r.relay(duplicate=True)
        assert await relay.relay_once() == 20
        assert len(await read_topic(infra.kafka_bootstrap, r.topic, 40)) == 40
        consumer = r.consumer()
        r.start(consumer.run())
        await r.wait_for_count(20)
        # every record read, the duplicates too: any wrong effect has landed
        await consumed_all(consumer, infra.kafka_bootstrap, [r.topic])
        booked, count, effects = await r.totals()
        assert (booked, count, effects) == (Decimal("2010.00"), 20, 20)


async def test_relay_dying_between_publish_and_mark_republishes_without_double_effect(
        infra: Infra, isolated_schema, fresh_topic) -> None:
    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        for i in range(10):
            await r.place_order("order-x", i, "10.00")

        class RelayCrashed(Exception):
            pass

        async def crash(ids: list[int]) -> None:
            raise RelayCrashed(f"killed after publishing {len(ids)} rows")

        dying = r.relay(lease_s=30.0)
        dying.after_publish = crash
        with pytest.raises(RelayCrashed):
            await dying.relay_once()
        await dying.stop()
        async with r.pool_a.acquire() as conn:
            assert await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 10

        consumer = r.consumer()
        r.start(consumer.run())
        await r.wait_for_count(10)
        # The restarted relay re-claims the rows once the dead one's lease expires.
        restarted = r.relay(lease_s=30.0)
        assert await restarted.relay_once() == 0  # lease still held by the dead relay
        await expire_leases(r)
        assert await restarted.relay_once() == 10
        assert len(await read_topic(infra.kafka_bootstrap, r.topic, 20)) == 20
        await consumed_all(consumer, infra.kafka_bootstrap, [r.topic])  # the resends read
        assert await r.totals() == (Decimal("100.00"), 10, 10)


async def test_consumer_dying_after_db_commit_before_offset_commit(
        infra: Infra, isolated_schema, fresh_topic) -> None:
    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        for i in range(12):
            await r.place_order(f"order-{i % 3}", i, "5.00")
        await r.relay().relay_once()
        consumer = r.consumer()
        crashes = 0

        async def crash_before_offset_commit() -> None:
            nonlocal crashes
            if crashes == 0:
                crashes += 1
                raise RuntimeError("killed between the database commit and the offset commit")

        consumer.before_offset_commit = crash_before_offset_commit
        r.start(consumer.run())
        await r.wait_for_count(12)
        # The consumer restarts, re-reads the uncommitted records, and the inbox
        # turns every one of them into a no-op; then it commits their offsets.
        await consumed_all(consumer, infra.kafka_bootstrap, [r.topic])
        assert crashes == 1
        async with r.pool_b.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM inbox") == 12
        assert await r.totals() == (Decimal("60.00"), 12, 12)


async def test_rolled_back_transaction_publishes_nothing(
        infra: Infra, isolated_schema, fresh_topic) -> None:
    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        # One request leaves its unit of work without committing, another fails.
        await r.place_order("order-1", 1, "99.00", commit=False)
        with pytest.raises(ZeroDivisionError):
            async with UnitOfWork(r.pool_a) as uow:
                await uow.conn.execute("INSERT INTO orders VALUES ('o2-2', 2, 1.00)")
                uow.emit(OrderPlacedInTest(order_id="o2", seq=2, amount=Decimal("1.00")),
                         key="o2", topic=r.topic)
                await uow.flush_outbox()  # even rows already written roll back
                _ = 1 / 0
        async with r.pool_a.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
            assert await conn.fetchval("SELECT count(*) FROM orders") == 0
        assert await r.relay().relay_once() == 0
        assert await read_topic(infra.kafka_bootstrap, r.topic, 1, timeout_s=3) == []


async def test_per_key_order_holds_over_a_burst_with_two_relays(
        infra: Infra, isolated_schema, fresh_topic) -> None:
    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        keys = [f"loan-{k}" for k in range(25)]

        async def writer(w: int) -> None:
            for i in range(100):
                key = keys[(w * 7 + i) % len(keys)]
                await r.place_order(key, w * 1000 + i, "1.00")

        relay_1 = r.relay(batch_size=37)
        relay_2 = r.relay(batch_size=23)
        r.start(relay_1.run())
        r.start(relay_2.run())
        # Ten writers commit concurrently while both relays run.
        await asyncio.gather(*(writer(w) for w in range(10)))
        records = await read_topic(infra.kafka_bootstrap, r.topic, 1000, timeout_s=60)
        # The order each key's writes committed in: the aggregate's version.
        expected: dict[str, list[int]] = defaultdict(list)
        for (key, seq), _ in sorted(r.versions.items(), key=lambda kv: (kv[0][0], kv[1])):
            expected[key].append(seq)
        assert len(records) == 1000
        published: dict[str, list[int]] = defaultdict(list)
        for key, value, _ in records:
            published[key.decode()].append(orjson.loads(value)["payload"]["seq"])
        assert published.keys() == expected.keys()
        for key, seqs in expected.items():
            # Within one key, the partition holds the events in commit order.
            assert published[key] == seqs, key
        # A batch is marked by the relay's next cycle, after its acks: soon, not at once.
        async def all_marked() -> bool:
            async with r.pool_a.acquire() as conn:
                return not await conn.fetchval(
                    "SELECT count(*) FROM outbox WHERE published_at IS NULL")
        await until(all_marked, "every published row marked", timeout_s=5)


async def test_poison_messages_go_to_the_dlq_and_the_next_message_is_processed(
        infra: Infra, isolated_schema, fresh_topic) -> None:
    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        from shared.kafka import make_producer

        producer = make_producer(infra.kafka_bootstrap, client_id="poison")
        await producer.start()
        try:
            await producer.send_and_wait(r.topic, b"{not json", key=b"order-p")
            await producer.send_and_wait(
                r.topic, orjson.dumps({"event_id": "6a1f9a7e-9d5b-4f4e-8f0e-1c2d3e4f5a6b",
                                       "type": "NoSuchEvent", "aggregate_id": "order-p",
                                       "payload": {}}), key=b"order-p")
        finally:
            await producer.stop()
        await r.place_order("order-p", 1, "666.00")   # the handler refuses this amount
        await r.place_order("order-p", 2, "7.00")     # and must still get this one
        await r.relay().relay_once()
        consumer = r.consumer(fail_on_amount="666.00", max_retries=3)
        r.start(consumer.run())
        await r.wait_for_count(1)
        assert await r.totals() == (Decimal("7.00"), 1, 1)

        dead = await read_topic(infra.kafka_bootstrap, dlq_topic(r.topic), 3)
        assert len(dead) == 3
        reasons = sorted(h["dlq.reason"].decode() for _, _, h in dead)
        assert reasons == ["handler_failed", "malformed", "unknown_type"]
        for key, _, headers in dead:
            assert key == b"order-p"
            assert headers["dlq.original.topic"].decode() == r.topic
            assert int(headers["dlq.original.offset"]) >= 0
            assert headers["dlq.original.partition"].decode().isdigit()
            assert headers["dlq.consumer.group"].decode() == consumer.group
        failed = next(h for _, _, h in dead if h["dlq.reason"] == b"handler_failed")
        assert b"cannot book an order of 666.00" in failed["dlq.exception"]
        async with r.pool_b.acquire() as conn:
            rows = await conn.fetch("SELECT reason FROM dead_letters ORDER BY id")
        assert sorted(row["reason"] for row in rows) == reasons


async def test_replaying_a_dead_letter_after_the_fix_takes_effect_once(
        infra: Infra, isolated_schema, fresh_topic) -> None:
    from shared.dlq import replay_dead_letter

    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        await r.place_order("order-r", 1, "666.00")
        await r.relay().relay_once()
        broken = r.consumer(fail_on_amount="666.00", max_retries=2)
        task = r.start(broken.run())

        async def dead_letter() -> int | None:
            async with r.pool_b.acquire() as conn:
                found: int | None = await conn.fetchval("SELECT id FROM dead_letters")
            return found
        dl_id = await until(dead_letter, "the message dead-lettered", timeout_s=20)
        task.cancel()
        fixed = r.consumer(group=broken.group)  # the cause is fixed: same group, new code
        first = await replay_dead_letter({fixed.group: fixed}, dl_id, "operator-amina")
        second = await replay_dead_letter({fixed.group: fixed}, dl_id, "operator-amina")
        assert (first.outcome, second.outcome) == ("applied", "duplicate")
        assert await r.totals() == (Decimal("666.00"), 1, 1)
        async with r.pool_b.acquire() as conn:
            audit = await conn.fetch(
                "SELECT replayed_by, outcome FROM dead_letter_replays ORDER BY id")
        assert [(a["replayed_by"], a["outcome"]) for a in audit] == [
            ("operator-amina", "applied"), ("operator-amina", "duplicate")]
