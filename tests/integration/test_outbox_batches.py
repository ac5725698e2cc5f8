"""The relay in batches: one round trip marks a batch and claims the next.

What a user would notice: events of one aggregate arrive in the order they were
written, even when a transaction writes several at once and a batch carries
many keys; commits close together leave in one batch; a relay that dies after
Kafka acknowledged a batch and before marking it makes the batch go again,
and the consumer still books each event once.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from decimal import Decimal

import orjson
import pytest

from shared.outbox import listen_for_outbox
from shared.uow import UnitOfWork
from tests.infra import Infra
from tests.integration.harness import OrderPlacedInTest, rig
from tests.integration.test_outbox_inbox import expire_leases, read_topic
from tests.kafka_facts import consumed_all, until

pytestmark = pytest.mark.integration


async def test_one_transactions_events_and_a_many_key_batch_keep_per_key_order(
        infra: Infra, isolated_schema, fresh_topic) -> None:
    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        # one transaction emits five events of each of three keys, interleaved
        async with UnitOfWork(r.pool_a) as uow:
            for seq in range(5):
                for key in ("k-a", "k-b", "k-c"):
                    uow.emit(OrderPlacedInTest(order_id=key, seq=seq, amount=Decimal("1.00")),
                             key=key, topic=r.topic)
            await uow.commit()
        for seq in range(5, 9):  # then more, one transaction each
            await r.place_order("k-b", seq, "1.00")
        async with r.pool_a.acquire() as conn:
            rows = await conn.fetch("SELECT message_key, envelope FROM outbox ORDER BY id")
        # the outbox ids follow the emit order
        first = [(x["message_key"], x["envelope"]["payload"]["seq"]) for x in rows[:15]]
        assert first == [(k, s) for s in range(5) for k in ("k-a", "k-b", "k-c")]

        relay = r.relay(batch_size=100)
        assert await relay.relay_once() == 19  # all in one batch
        assert await relay.relay_once() == 0
        records = await read_topic(infra.kafka_bootstrap, r.topic, 19)
        seqs: dict[str, list[int]] = defaultdict(list)
        for key, value, headers in records:
            assert headers["type"] == b"OrderPlacedInTest"
            seqs[key.decode()].append(orjson.loads(value)["payload"]["seq"])
        assert seqs == {"k-a": list(range(5)), "k-b": list(range(9)), "k-c": list(range(5))}
        async with r.pool_a.acquire() as conn:
            assert await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
            # one batch: one claim token for every row
            assert await conn.fetchval("SELECT count(DISTINCT claim_token) FROM outbox") == 1


async def test_commits_close_together_after_a_wake_up_leave_in_one_batch(
        infra: Infra, isolated_schema, fresh_topic) -> None:
    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        relay = r.relay(linger_s=0.5, poll_interval_s=30.0)
        cycles = 0
        cycle = relay._cycle

        async def counted() -> int:
            nonlocal cycles
            n = await cycle()
            cycles += 1
            return n
        relay._cycle = counted  # type: ignore[method-assign]
        r.start(listen_for_outbox(r.dsn_a, r.schema_a, relay.wakeup))
        r.start(relay.run())

        async def woken_by_a_notify() -> bool:
            before = cycles
            async with r.pool_a.acquire() as conn:
                await conn.execute("SELECT pg_notify($1, '')", f"{r.schema_a}_outbox")

            async def cycled() -> bool:
                return cycles > before
            with contextlib.suppress(AssertionError):  # sent before LISTEN: lost, send again
                await until(cycled, "a cycle after the NOTIFY", timeout_s=2)
                return True
            return False
        # the listener is up (a NOTIFY woke the relay), and the relay, having found
        # nothing, is back asleep: nothing but the next commit's NOTIFY wakes it
        await until(woken_by_a_notify, "the relay woken by a NOTIFY")
        for seq in range(4):
            await r.place_order("order-l", seq, "2.00")
        records = await read_topic(infra.kafka_bootstrap, r.topic, 4)
        assert [orjson.loads(v)["payload"]["seq"] for _, v, _ in records] == [0, 1, 2, 3]
        async with r.pool_a.acquire() as conn:
            tokens = await conn.fetchval("SELECT count(DISTINCT claim_token) FROM outbox")
        assert tokens == 1


async def test_relay_dying_after_the_acks_before_the_marking_cycle_resends_once_booked(
        infra: Infra, isolated_schema, fresh_topic) -> None:
    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        for i in range(6):
            await r.place_order(f"order-{i % 2}", i, "3.00")
        dying = r.relay(lease_s=30.0)
        # a cycle publishes the batch; the process dies before the next cycle marks it
        assert await dying._cycle() == 6
        dying._unmarked = None
        await dying.stop()
        async with r.pool_a.acquire() as conn:
            assert await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 6
        consumer = r.consumer()
        r.start(consumer.run())
        await r.wait_for_count(6)
        restarted = r.relay(lease_s=30.0)
        assert await restarted.relay_once() == 0  # the dead relay's lease still holds them
        await expire_leases(r)
        assert await restarted.relay_once() == 6
        assert len(await read_topic(infra.kafka_bootstrap, r.topic, 12)) == 12
        await consumed_all(consumer, infra.kafka_bootstrap, [r.topic])  # the resends read
        assert await r.totals() == (Decimal("18.00"), 6, 6)
        async with r.pool_a.acquire() as conn:
            assert await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


async def test_a_schema_without_the_step_function_still_relays(
        infra: Infra, isolated_schema, fresh_topic) -> None:
    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        async with r.pool_a.acquire() as conn:
            await conn.execute("DROP FUNCTION outbox_relay_step")
        for i in range(3):
            await r.place_order("order-o", i, "1.00")
        relay = r.relay()
        assert await relay.relay_once() == 3
        records = await read_topic(infra.kafka_bootstrap, r.topic, 3)
        assert [orjson.loads(v)["payload"]["seq"] for _, v, _ in records] == [0, 1, 2]
        async with r.pool_a.acquire() as conn:
            assert await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
