"""Two replicas of one service on the same schema and topics, on the real broker and server.

Each replica is a whole runtime (``shared.app``: its pools, relay, consumers and
background jobs), exactly what a second process of the service would run:

- two relays publish every event once, each key's events in commit order;
- two consumers of one group, the second started mid-stream and the first stopped
  (two rebalances), apply every event once, each key's in order;
- two payments replicas (consumers and payout workers), one of them stopped half-way,
  pay each payout once;
- of two replicas running a singleton job, one runs it; when the holder's session is
  killed or the holder stops, the other takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from services.payments.bootstrap import build_spec as payments_spec
from services.payments.settings import DEV_CALLBACK_SECRET, PaymentsSettings, ProviderConfig
from shared.app import (
    ConsumerSpec,
    Runtime,
    ServiceSpec,
    build_runtime,
    close_pool,
    create_app,
    open_pools,
    start_runtime,
    stop_runtime,
)
from shared.contracts import loans, payments
from shared.db import create_pool
from shared.envelope import Envelope, envelope_for
from shared.inbox import InboxConsumer
from shared.kafka import ensure_topics, make_producer
from shared.settings import ServiceSettings
from shared.singleton import Singleton, holders, singleton
from shared.uow import UnitOfWork
from simulators.mobile_money.app import create_app as create_sim
from simulators.mobile_money.state import World
from tests.conftest import SchemaFactory
from tests.infra import Infra, delete_topics
from tests.integration.harness import OrderPlacedInTest
from tests.integration.payments.conftest import free_port, serve
from tests.integration.test_outbox_inbox import read_topic
from tests.kafka_facts import consumed_all, end_offsets, until

pytestmark = pytest.mark.integration

TOPIC = "replicas.events"
PAYMENTS_MIGRATIONS = Path(__file__).resolve().parents[2] / "services/payments/migrations"


@dataclass
class Replica:
    """One process's worth of a service: a runtime with its own pools."""

    spec: ServiceSpec
    runtime: Runtime | None = None

    async def start(self) -> Replica:
        s = self.spec.settings
        http, background = await open_pools(s, s.db_schema)
        self.runtime = build_runtime(self.spec, http, background)
        await start_runtime(self.runtime)
        return self

    def consumer(self) -> InboxConsumer:
        assert self.runtime is not None
        [consumer] = self.runtime.consumers.values()
        return consumer

    async def stop(self) -> None:
        runtime, self.runtime = self.runtime, None
        if runtime is None:
            return
        await stop_runtime(runtime)
        await close_pool(runtime.http_pool)
        if runtime.background_pool is not None:
            await close_pool(runtime.background_pool)


@dataclass
class Service:
    """A test service on one schema: it writes ``OrderPlacedInTest`` through its outbox
    and consumes its own topic into ``effects`` (no unique key: a second application of
    one event would show as a second row)."""

    settings: ServiceSettings
    topic: str
    writer: asyncpg.Pool
    background: list[Callable[[Runtime], Awaitable[None]]] = field(default_factory=list)
    replicas: list[Replica] = field(default_factory=list)
    versions: dict[tuple[str, int], int] = field(default_factory=dict)

    def spec(self, name: str) -> ServiceSpec:
        async def on_order(uow: UnitOfWork, event: OrderPlacedInTest, env: Envelope) -> None:
            await uow.conn.execute(
                "INSERT INTO effects (event_id, order_id, seq, applied_by) VALUES ($1, $2, $3,"
                " $4)", env.event_id, event.order_id, event.seq, name)

        return ServiceSpec(name="replicas", settings=self.settings,
                           consumers=[ConsumerSpec("replicas.orders", [TOPIC],
                                                   {"OrderPlacedInTest": on_order})],
                           background=self.background)

    async def replica(self, name: str) -> Replica:
        replica = await Replica(self.spec(name)).start()
        self.replicas.append(replica)
        return replica

    async def place(self, key: str, seq: int) -> None:
        async with UnitOfWork(self.writer) as uow:
            version = await uow.conn.fetchval(
                "INSERT INTO aggregates (key, version) VALUES ($1, 1) ON CONFLICT (key)"
                " DO UPDATE SET version = aggregates.version + 1 RETURNING version", key)
            uow.emit(OrderPlacedInTest(order_id=key, seq=seq, amount=Decimal("1.00")), key=key,
                     topic=self.topic)
            await uow.commit()
        self.versions[(key, seq)] = version

    def commit_order(self) -> dict[str, list[int]]:
        order: dict[str, list[int]] = defaultdict(list)
        for (key, seq), _ in sorted(self.versions.items(), key=lambda kv: (kv[0][0], kv[1])):
            order[key].append(seq)
        return order

    async def effects(self) -> list[asyncpg.Record]:
        return list(await self.writer.fetch(
            "SELECT event_id, order_id, seq, applied_by FROM effects ORDER BY n"))

    async def wait_effects(self, n: int, timeout_s: float = 60) -> list[asyncpg.Record]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            rows = await self.effects()
            if len({r["event_id"] for r in rows}) >= n:
                return rows
            await asyncio.sleep(0.2)
        raise AssertionError(f"only {len(await self.effects())} of {n} events applied")


@contextlib.asynccontextmanager
async def service(infra: Infra, isolated_schema: SchemaFactory,
                  background: list[Callable[[Runtime], Awaitable[None]]] | None = None
                  ) -> AsyncIterator[Service]:
    iso = await isolated_schema("replicas")
    prefix = f"r{uuid.uuid4().hex[:8]}."
    settings = ServiceSettings(
        database_url=iso.dsn, db_schema=iso.schema, kafka_bootstrap=infra.kafka_bootstrap,
        topic_prefix=prefix, relay_poll_interval_s=0.1, relay_batch_size=25,
        consumer_batch_max=10, db_pool_min=1, db_pool_max=3, db_background_pool_min=1,
        db_background_pool_max=6, retention_interval_s=3600)
    topic = f"{prefix}{TOPIC}"
    await ensure_topics(infra.kafka_bootstrap, [topic], partitions=4)
    writer = await create_pool(iso.dsn, schema=iso.schema, max_size=8)
    async with writer.acquire() as conn:
        await conn.execute("CREATE TABLE aggregates (key text PRIMARY KEY, version int)")
        await conn.execute(
            "CREATE TABLE effects (n bigserial PRIMARY KEY, event_id uuid, order_id text,"
            " seq int, applied_by text, at timestamptz DEFAULT clock_timestamp())")
        await conn.execute(
            "CREATE TABLE ticks (n bigserial PRIMARY KEY, replica text,"
            " at timestamptz DEFAULT clock_timestamp())")
    svc = Service(settings, topic, writer, background or [])
    try:
        yield svc
    finally:
        for replica in svc.replicas:
            await replica.stop()
        await writer.close()
        await delete_topics(infra.kafka_bootstrap, prefix)


def assert_once_in_order(rows: list[asyncpg.Record], expected: dict[str, list[int]]) -> None:
    ids = Counter(r["event_id"] for r in rows)
    assert [i for i, n in ids.items() if n > 1] == [], "an event was applied twice"
    applied: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        applied[r["order_id"]].append(r["seq"])
    assert applied.keys() == expected.keys()
    for key, seqs in expected.items():
        assert applied[key] == seqs, f"{key} applied out of commit order"


async def test_two_relays_publish_each_event_once_in_per_key_order(
        infra: Infra, isolated_schema: SchemaFactory) -> None:
    async with service(infra, isolated_schema) as svc:
        await svc.replica("one")
        await svc.replica("two")
        keys = [f"loan-{k}" for k in range(20)]

        async def writer(w: int) -> None:
            for i in range(50):
                await svc.place(keys[(w * 7 + i) % len(keys)], w * 1000 + i)

        await asyncio.gather(*(writer(w) for w in range(8)))

        async def all_published() -> bool:
            return await svc.writer.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
        # a row is marked published once the broker has acknowledged it: with every row
        # marked, no relay has anything left to send, and the topic's end is final
        await until(all_published, "every outbox row published", timeout_s=60)
        sent = sum((await end_offsets(infra.kafka_bootstrap, [svc.topic])).values())
        records = await read_topic(infra.kafka_bootstrap, svc.topic, sent, timeout_s=60)
        assert len(records) == sent
        events = Counter(orjson.loads(value)["event_id"] for _, value, _ in records)
        assert len(events) == 400 and set(events.values()) == {1}, \
            "each event published exactly once"
        published: dict[str, list[int]] = defaultdict(list)
        for key, value, _ in records:
            published[(key or b"").decode()].append(orjson.loads(value)["payload"]["seq"])
        assert published == svc.commit_order()
        # both relays had a share of the work
        async with svc.writer.acquire() as conn:
            tokens = await conn.fetchval(
                "SELECT count(DISTINCT claim_token) FROM outbox WHERE claim_token IS NOT NULL")
        assert tokens > 1
        assert_once_in_order(await svc.wait_effects(400), svc.commit_order())


async def test_two_consumers_in_one_group_through_two_rebalances_apply_each_event_once(
        infra: Infra, isolated_schema: SchemaFactory) -> None:
    async with service(infra, isolated_schema) as svc:
        first = await svc.replica("one")
        keys = [f"loan-{k}" for k in range(16)]
        total = 600
        placed = 0

        async def stream(upto: int) -> None:
            nonlocal placed
            while placed < upto:
                await svc.place(keys[placed % len(keys)], placed)
                placed += 1
                if placed % 20 == 0:
                    await asyncio.sleep(0.05)

        writing = asyncio.create_task(stream(total))
        await svc.wait_effects(100)
        await svc.replica("two")           # joins the group mid-stream: a rebalance
        await svc.wait_effects(300)
        await first.stop()                 # leaves it mid-stream: another
        svc.replicas.remove(first)
        await writing
        await svc.wait_effects(total, timeout_s=90)
        # the group has committed every record: a redelivery would have been applied
        # before its commit, so nothing more can come
        consumer = svc.replicas[0].consumer()
        await consumed_all(consumer, infra.kafka_bootstrap, consumer.topics, timeout_s=60)
        rows = await svc.effects()
        assert len(rows) == total
        assert_once_in_order(rows, svc.commit_order())
        by = Counter(r["applied_by"] for r in rows)
        assert by["one"] > 0 and by["two"] > 0, by


async def test_of_two_replicas_one_runs_a_singleton_and_the_other_takes_over(
        infra: Infra, isolated_schema: SchemaFactory) -> None:
    async def ticker(runtime: Runtime) -> None:
        name = runtime.state["replica"]
        while True:
            async with runtime.pool.acquire() as conn:
                await conn.execute("INSERT INTO ticks (replica) VALUES ($1)", name)
            await asyncio.sleep(0.05)

    job = singleton(ticker, retry_s=0.2, check_s=0.2)
    async with service(infra, isolated_schema, [job]) as svc:
        one = Replica(svc.spec("one"))
        one.spec.state["replica"] = "one"
        await one.start()
        svc.replicas.append(one)
        two = Replica(svc.spec("two"))
        two.spec.state["replica"] = "two"
        await two.start()
        svc.replicas.append(two)
        schema = svc.settings.db_schema

        async def ticks_since(n: int) -> Counter[str]:
            rows = await svc.writer.fetch("SELECT replica FROM ticks WHERE n > $1", n)
            return Counter(r["replica"] for r in rows)

        async def last_tick() -> int:
            return int(await svc.writer.fetchval("SELECT coalesce(max(n), 0) FROM ticks"))

        async def sole_holder() -> str:
            async with svc.writer.acquire() as conn:
                found = await holders(conn, schema, "ticker")
            assert len(found) == 1, found
            return found[0]

        def election(replica: Replica) -> Singleton:
            assert replica.runtime is not None
            found: Singleton = replica.runtime.state["singletons"]["ticker"]
            return found

        def held(replica: Replica) -> bool:
            return election(replica).held

        async def holding(replica: Replica, *others: Replica) -> bool:
            """``replica`` holds the job (its gauge's flag, and one session holds the lock
            in the database) and the others do not: their job has been stopped."""
            if not held(replica) or any(held(o) for o in others):
                return False
            async with svc.writer.acquire() as conn:
                return len(await holders(conn, schema, "ticker")) == 1

        async def one_runs_it() -> Counter[str] | None:
            ran = await ticks_since(0)
            return ran if sum(ran.values()) > 10 else None

        ran = await until(one_runs_it, "the ticker runs", timeout_s=30)
        assert len(ran) == 1, ran  # one replica runs it
        holder, waiter = (one, two) if "one" in ran else (two, one)
        await until(lambda: holding(holder, waiter), "the first runner holds the lock",
                    timeout_s=30)
        assert (await sole_holder()).endswith(election(holder).holder)
        # The holder's session is killed (its connection dropped, the server restarting
        # for it): the holder stops the job, the other replica takes over. The holder
        # competes again only after 30 s, so the other one (asking every 0.2 s) is the one
        # to take it even on a busy machine (with 5 s, a fresh-clone run's holder once won
        # its own lock back first); still short of the 60 s the holder has to take over
        # again below, from that same pause.
        election(holder).retry_s = 30.0
        async with svc.writer.acquire() as conn:
            pid = await conn.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                await sole_holder())
            admin = await asyncpg.connect(infra.admin_url)
            try:
                assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            finally:
                await admin.close()
        await until(lambda: holding(waiter, holder), "the other replica took over",
                    timeout_s=60, interval_s=0.1)
        assert election(waiter).terms == 1
        mark = await last_tick()

        async def ticked_since_mark() -> Counter[str] | None:
            ran = await ticks_since(mark)
            return ran if sum(ran.values()) > 10 else None
        # ten ticks since the takeover, every one the new holder's
        after = await until(ticked_since_mark, "the new holder ticks", timeout_s=30)
        assert set(after) == {waiter.spec.state["replica"]}, after
        assert held(waiter) and not held(holder)

        # The new holder stops (its process ends): the first one takes over again.
        election(holder).retry_s = 0.2
        await waiter.stop()
        svc.replicas.remove(waiter)
        await until(lambda: holding(holder), "the first replica took over again",
                    timeout_s=60, interval_s=0.1)
        mark = await last_tick()
        await until(lambda: ticks_since(mark), "the first replica ticks again", timeout_s=30)
        after = await ticks_since(mark)
        assert set(after) == {holder.spec.state["replica"]}, after
        await sole_holder()


# -- payments: two replicas' payout workers ------------------------------------------------

def new_msisdn() -> str:
    return "+2126" + str(uuid.uuid4().int)[:8]


async def test_two_payments_replicas_pay_each_payout_once_when_one_stops_half_way(
        infra: Infra, isolated_schema: SchemaFactory) -> None:
    iso = await isolated_schema("payments_r", PAYMENTS_MIGRATIONS)
    prefix = f"r{uuid.uuid4().hex[:8]}."
    sim_port, ports = free_port(), [free_port(), free_port()]
    world = World(provider="sim", callback_secret=DEV_CALLBACK_SECRET,
                  collection_callback_url=f"http://127.0.0.1:{ports[0]}"
                                          f"/v1/mobile-money/sim/callbacks")

    def settings(port: int) -> PaymentsSettings:
        return PaymentsSettings(
            database_url=iso.dsn, db_schema=iso.schema, kafka_bootstrap=infra.kafka_bootstrap,
            providers={"sim": ProviderConfig(base_url=f"http://127.0.0.1:{sim_port}",
                                             request_timeout_s=1.0, poll_after_s=0.5)},
            callback_base_url=f"http://127.0.0.1:{port}", topic_prefix=prefix,
            payout_poll_interval_s=0.1, payout_batch_size=3, payout_expiry_grace_s=1.0,
            in_doubt_poll_s=0.3, in_doubt_poll_max_s=1.0, consumer_retry_backoff_s=0.05,
            reconciliation_enabled=False)

    s0 = settings(ports[0])
    await ensure_topics(infra.kafka_bootstrap, [s0.topic(t) for t in (
        payments.COMMANDS, payments.EVENTS, loans.EVENTS)], partitions=4)
    producer = make_producer(infra.kafka_bootstrap, client_id="replicas-test")
    await producer.start()
    pool = await create_pool(iso.dsn, schema=iso.schema, max_size=2)
    wallets: dict[str, str] = {}

    async def disburse(n: int) -> None:
        for _ in range(n):
            msisdn, saga = new_msisdn(), str(uuid.uuid4())
            wallets[msisdn] = saga
            cmd = payments.DisburseLoan(
                saga_id=saga, loan_id=f"loan-{uuid.uuid4().hex[:10]}", client_id="client-r",
                partner_id="partner-r", amount=Decimal("700.00"), msisdn=msisdn,
                deadline=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120))
            env = envelope_for(cmd, aggregate_id=cmd.loan_id)
            await producer.send_and_wait(s0.topic(payments.COMMANDS), env.to_bytes(),
                                         key=cmd.loan_id.encode(),
                                         headers=[("type", env.type.encode())])

    async def completed() -> int:
        return int(await pool.fetchval("SELECT count(*) FROM payouts WHERE status = 'completed'"))

    async def until(n: int, timeout_s: float = 90) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while await completed() < n:
            assert asyncio.get_running_loop().time() < deadline, f"{await completed()} of {n}"
            await asyncio.sleep(0.2)

    try:
        async with serve(create_sim(world), sim_port), httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{sim_port}") as sim:
            # every provider call a little slow, so both workers' rounds overlap
            assert (await sim.post("/sim/config", json={"latency_s": 0.2})).status_code == 200
            async with serve(create_app(payments_spec(s0)), ports[0]) as first:
                async with serve(create_app(payments_spec(settings(ports[1]))), ports[1]):
                    await disburse(30)
                    await until(10)
                    first.should_exit = True   # the first replica stops half-way
                    await disburse(30)
                    await until(60)
        # Each wallet paid once, by the provider's own account of it.
        paid = Counter(t.msisdn for t in world.transactions.values()
                       if t.type == "disbursement" and t.status == "completed")
        assert set(paid) == set(wallets) and set(paid.values()) == {1}, paid
        assert {world.wallet(m).payouts for m in wallets} == {Decimal("700.00")}
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM payouts") == 60
            entries = Counter(r["transfer_id"] for r in await conn.fetch(
                "SELECT transfer_id FROM journal_entries WHERE transfer_id LIKE 'disburs%'"))
        # one disbursement entry per payout, none reversed
        assert sorted(entries) == sorted(f"disbursement:{saga}" for saga in wallets.values())
        assert set(entries.values()) == {1}
        # both replicas sent payouts (the provider saw both callback addresses)
        senders = Counter((r.callback_url or "").split("/v1/")[0]
                          for r in world.requests.values())
        assert all(senders[f"http://127.0.0.1:{p}"] > 0 for p in ports), senders
    finally:
        await producer.stop()
        await pool.close()

