"""One payments service and one mobile-money simulator, over real HTTP, for these tests.

The simulator and the payments app run under uvicorn on free ports in the test's
event loop (the simulator calls payments back over HTTP). Payments gets its own
schema (a fresh role, like its own), its own consumer group and topic prefix, so
nothing else running on the shared broker interferes with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.payments.bootstrap import build_spec
from services.payments.domain.webhooks import sign
from services.payments.settings import DEV_CALLBACK_SECRET, PaymentsSettings, ProviderConfig
from shared.app import create_app
from shared.auth import ROLE_SCOPES
from shared.contracts import clients, loans, payments
from shared.envelope import Contract, Envelope, envelope_for
from shared.kafka import ensure_topics, make_producer
from simulators.mobile_money.app import create_app as create_sim
from simulators.mobile_money.state import World
from tests.identity import mint_token
from tests.infra import Infra, delete_topics
from tests.rigs import free_port, new_msisdn, serve

PARTITIONS = 4
ORANGE_SECRET = "whsec_b3JhbmdlLW1vbmV5LXRlc3Qtc2VjcmV0"
MIGRATIONS = Path(__file__).resolve().parents[3] / "services/payments/migrations"



class Events:
    """Everything published on the (prefixed) ``topics`` (payments.events and
    payments.postings), read from the start."""

    def __init__(self, bootstrap: str, *topics: str) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.seen: list[Envelope] = []
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def of_service(cls, bootstrap: str, settings: PaymentsSettings) -> Events:
        """What the service under test publishes: its payments.events and payments.postings."""
        return cls(bootstrap, settings.topic(payments.EVENTS), settings.topic(payments.POSTINGS))

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        tps = [TopicPartition(t, p) for t in self.topics for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    self.seen.append(Envelope.from_bytes(r.value))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    def of(self, type_: str, **match: Any) -> list[dict[str, Any]]:
        return [e.payload for e in self.seen if e.type == type_
                and all(e.payload.get(k) == v for k, v in match.items())]

    async def wait(self, type_: str, timeout_s: float = 30, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.of(type_, **match)
            if found:
                return found[0]
            await asyncio.sleep(0.1)
        got = [(e.type, e.payload) for e in self.seen if any(
            e.payload.get(k) == v for k, v in match.items())]
        raise AssertionError(f"no {type_} matching {match} within {timeout_s}s; related: {got}")


class ShiftedClock:
    """The payments service's clock in these tests: the real time plus an offset a test
    moves (``advance``) to reach a deadline without waiting, then puts back (``reset``)."""

    def __init__(self) -> None:
        self.offset = dt.timedelta(0)

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def advance(self, **delta: float) -> dt.datetime:
        self.offset += dt.timedelta(**delta)
        return self()

    def reset(self) -> None:
        self.offset = dt.timedelta(0)


@dataclass
class Rig:
    api: httpx.AsyncClient
    sim: httpx.AsyncClient
    world: World
    events: Events
    pool: asyncpg.Pool
    settings: PaymentsSettings
    producer: Any
    payments_url: str
    orange: httpx.AsyncClient
    clock: ShiftedClock = field(default_factory=ShiftedClock)
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, role: str = "operator", partner: str | None = None,
             sub: str | None = None) -> dict[str, str]:
        sub = sub or f"test-{role}"
        key = f"{role}:{partner}:{sub}"
        if key not in self.tokens:
            self.tokens[key] = mint_token(sub=sub,
                                          scopes=ROLE_SCOPES[role], partner_id=partner)
        return {"Authorization": f"Bearer {self.tokens[key]}"}

    async def send(self, message: Contract, key: str, env: Envelope | None = None) -> Envelope:
        env = env or envelope_for(message, aggregate_id=key)
        topic = self.settings.topic(message.topic)
        await self.producer.send_and_wait(topic, env.to_bytes(), key=key.encode(),
                                          headers=[("type", env.type.encode())])
        return env

    async def configure(self, msisdn: str | None = None, **behaviour: Any) -> None:
        body = {"msisdn": msisdn, **behaviour}
        resp = await self.sim.post("/sim/config", json=body)
        assert resp.status_code == 200, resp.text

    async def wallet(self, msisdn: str) -> dict[str, Any]:
        return (await self.sim.get(f"/sim/wallets/{msisdn}")).json()

    async def portfolio(self, loan_id: str) -> Decimal:
        resp = await self.api.get(f"/v1/loans/{loan_id}/portfolio-balance", headers=self.auth())
        assert resp.status_code == 200, resp.text
        return Decimal(resp.json()["portfolio_balance"])

    async def trial_balance(self) -> dict[str, Any]:
        resp = await self.api.get("/v1/ledger/trial-balance", headers=self.auth())
        assert resp.status_code == 200, resp.text
        return resp.json()

    async def lines(self, transfer_prefix: str) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            return await conn.fetch(
                "SELECT e.transfer_id, l.account_id, l.side, l.amount FROM journal_lines l"
                " JOIN journal_entries e ON e.id = l.entry_id WHERE e.transfer_id LIKE $1"
                " ORDER BY l.id", transfer_prefix + "%")

    def signed(self, body: dict[str, Any] | bytes, *, msg_id: str | None = None,
               ts: int | None = None, secret: str = DEV_CALLBACK_SECRET
               ) -> tuple[bytes, dict[str, str]]:
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
        ts = int(time.time()) if ts is None else ts
        return raw, {"content-type": "application/json", "webhook-id": msg_id,
                     "webhook-timestamp": str(ts),
                     "webhook-signature": sign(secret, msg_id, ts, raw)}

    async def callback(self, raw: bytes, headers: dict[str, str],
                       method: str = "POST") -> httpx.Response:
        return await self.api.request(method, "/v1/mobile-money/sim/callbacks", content=raw,
                                      headers=headers)


async def paid_at_provider(rig: Rig, loan_id: str, amount: str, msisdn: str | None = None,
                           *, callback: bool = False) -> tuple[str, str]:
    """A client pays ``amount`` to ``loan_id`` from a fresh wallet at the simulator;
    ``(msisdn, the provider's transaction reference)``. Without ``callback`` the
    provider's callback is lost, so only a wallet's report (or reconciliation) tells us."""
    msisdn = msisdn or new_msisdn()
    if not callback:
        await rig.configure(msisdn, lose_callbacks=True)
    resp = await rig.sim.post("/sim/cash-in", json={"msisdn": msisdn, "amount": amount})
    assert resp.status_code == 201, resp.text
    resp = await rig.sim.post("/sim/collections", json={"msisdn": msisdn, "amount": amount,
                                                        "reference": loan_id})
    assert resp.status_code == 201, resp.text
    return msisdn, str(resp.json()["transactionReference"])


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def disburse(loan_id: str, msisdn: str, amount: str, *, saga_id: str | None = None,
             deadline_s: float = 120) -> payments.DisburseLoan:
    return payments.DisburseLoan(
        saga_id=saga_id or str(uuid.uuid4()), loan_id=loan_id, client_id=new_id("client"),
        partner_id="partner-a", amount=Decimal(amount), msisdn=msisdn,
        deadline=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=deadline_s))


def rejected(loan_id: str, payment_id: str, amount: str, msisdn: str | None,
             reason: str = "unknown_loan") -> loans.RepaymentRejected:
    return loans.RepaymentRejected(
        loan_id=loan_id, client_id="", payment_id=payment_id, amount=Decimal(amount),
        payer_msisdn=msisdn, reason=reason, refundable_amount=Decimal(amount))  # type: ignore[arg-type]


@pytest.fixture(scope="package")
async def rig(infra: Infra, isolated_schema: Callable[..., Any]) -> AsyncIterator[Rig]:
    iso = await isolated_schema("payments_t", MIGRATIONS)
    prefix = f"t{uuid.uuid4().hex[:8]}."
    sim_port, api_port, orange_port = free_port(), free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    world = World(provider="sim", callback_secret=DEV_CALLBACK_SECRET,
                  collection_callback_url=f"{api_url}/v1/mobile-money/sim/callbacks")
    orange = World(provider="orange", callback_secret=ORANGE_SECRET,
                   collection_callback_url=f"{api_url}/v1/mobile-money/orange/callbacks")
    settings = PaymentsSettings(
        database_url=iso.dsn, db_schema=iso.schema, kafka_bootstrap=infra.kafka_bootstrap,
        providers={"sim": ProviderConfig(base_url=f"http://127.0.0.1:{sim_port}",
                                         request_timeout_s=1.0, poll_after_s=1.0),
                   # a second provider is configuration only; this one honours expiry
                   "orange": ProviderConfig(base_url=f"http://127.0.0.1:{orange_port}",
                                            callback_secrets=[ORANGE_SECRET],
                                            opening_float=Decimal("50000.00"),
                                            request_timeout_s=1.0, poll_after_s=1.0,
                                            honours_expiry=True)},
        callback_base_url=api_url, topic_prefix=prefix,
        payout_poll_interval_s=0.1, payout_expiry_grace_s=1.0,
        in_doubt_poll_s=0.3, in_doubt_poll_max_s=1.0,
        consumer_retry_backoff_s=0.05)
    clock = ShiftedClock()
    await ensure_topics(infra.kafka_bootstrap, [settings.topic(t) for t in (
        payments.COMMANDS, payments.EVENTS, payments.POSTINGS, loans.EVENTS, clients.EVENTS)],
        partitions=PARTITIONS)
    events = Events.of_service(infra.kafka_bootstrap, settings)
    await events.start()
    producer = make_producer(infra.kafka_bootstrap, client_id="payments-test")
    await producer.start()
    pool = await asyncpg.create_pool(iso.dsn, server_settings={"search_path": iso.schema})
    assert pool is not None
    async with serve(create_sim(world), sim_port), serve(create_sim(orange), orange_port), \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{orange_port}") as orange_client, \
            serve(create_app(build_spec(settings, clock)), api_port), \
            httpx.AsyncClient(base_url=api_url, timeout=30) as api, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim_port}", timeout=30) as sim:
        rig = Rig(api, sim, world, events, pool, settings, producer, api_url, orange_client,
                  clock)
        # the books are open once the worker has posted the opening float
        for _ in range(100):
            if (await rig.trial_balance())["total_debits"] != "0.00":
                break
            await asyncio.sleep(0.1)
        yield rig
    await producer.stop()
    await events.stop()
    await pool.close()
    await delete_topics(infra.kafka_bootstrap, prefix)


@pytest.fixture
def clock(rig: Rig) -> Iterator[ShiftedClock]:
    """The service's clock, put back to the real time after the test."""
    try:
        yield rig.clock
    finally:
        rig.clock.reset()
