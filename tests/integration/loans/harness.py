"""Drive the loans service as its neighbours do: produce their contracts, read its output.

Each test gets its own schema (a role owning it, like ``noria_loans``), its own
consumer group and its own topics (``NORIA_LOANS_TOPIC_PREFIX``): on a broker shared
with the other services' tests, nobody else answers this instance's commands, and
it never answers (or refunds) anybody else's payments.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.loans.bootstrap import MIGRATIONS, build_spec
from services.loans.settings import LoansSettings
from shared.app import create_app
from shared.auth import ROLE_SCOPES
from shared.contracts.clients import ClientRegistered, CreditReserved
from shared.contracts.payments import DisbursementCompleted, RepaymentReceived
from shared.envelope import Contract, Envelope, envelope_for
from shared.kafka import ensure_topics
from tests.identity import mint_token
from tests.infra import delete_topics

OUTPUT_TOPICS = ["loans.events", "clients.commands", "payments.commands", "savings.commands"]
INPUT_TOPICS = ["clients.events", "payments.events", "savings.events"]


def fresh_prefix() -> str:
    return f"lt{uuid.uuid4().hex[:8]}."


async def create_topics(bootstrap: str, prefix: str) -> None:
    await ensure_topics(bootstrap, [prefix + t for t in OUTPUT_TOPICS + INPUT_TOPICS],
                        partitions=2)


def token(role: str, sub: str, partner: str | None = None) -> dict[str, str]:
    tok = mint_token(sub=sub, scopes=ROLE_SCOPES[role], partner_id=partner)
    return {"Authorization": f"Bearer {tok}"}


async def _end_offsets(consumer: AIOKafkaConsumer, topics: list[str]
                       ) -> dict[TopicPartition, int]:
    cluster = await consumer._client.fetch_all_metadata()
    parts = [TopicPartition(t, p) for t in topics
             for p in sorted(cluster.partitions_for_topic(t) or ())]
    assert parts, f"no partitions found for {topics}"
    ends: dict[TopicPartition, int] = await consumer.end_offsets(parts)
    return ends


@dataclass
class Received:
    topic: str
    key: str | None
    env: Envelope

    @property
    def type(self) -> str:
        return self.env.type

    @property
    def payload(self) -> dict[str, Any]:
        return self.env.payload


@dataclass
class Bus:
    """A producer acting as clients/payments and a reader of everything loans sends."""

    bootstrap: str
    prefix: str = ""
    producer: AIOKafkaProducer | None = None
    reader: AIOKafkaConsumer | None = None
    seen: list[Received] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap,
                                         enable_idempotence=True)
        await self.producer.start()
        self.reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                       enable_auto_commit=False)
        await self.reader.start()
        ends = await _end_offsets(self.reader, [self.prefix + t for t in OUTPUT_TOPICS])
        self.reader.assign(list(ends))
        for tp, offset in ends.items():
            self.reader.seek(tp, offset)
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.reader is not None
        while True:
            batches = await self.reader.getmany(timeout_ms=200)
            for records in batches.values():
                for r in records:
                    try:
                        env = Envelope.from_bytes(r.value)
                    except Exception:
                        continue
                    topic = r.topic.removeprefix(self.prefix)
                    self.seen.append(Received(topic, r.key.decode() if r.key else None, env))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        if self.reader is not None:
            await self.reader.stop()
        if self.producer is not None:
            await self.producer.stop()

    async def send(self, message: Contract, *, key: str, env: Envelope | None = None
                   ) -> Envelope:
        assert self.producer is not None
        env = env or envelope_for(message, aggregate_id=key)
        await self.producer.send_and_wait(
            self.prefix + message.topic, value=env.to_bytes(), key=key.encode(),
            headers=[("type", message.type_name().encode())])
        return env

    def matching(self, type_: str, **fields: Any) -> list[Received]:
        return [m for m in self.seen if m.type == type_
                and all(m.payload.get(k) == v for k, v in fields.items())]

    async def wait_for(self, type_: str, count: int = 1, timeout_s: float = 30.0,
                       **fields: Any) -> list[Received]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            found = self.matching(type_, **fields)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"expected {count} {type_} with {fields}; saw "
                             f"{[(m.type, m.payload) for m in self.seen][-10:]}")


@dataclass
class Loans:
    client: httpx.AsyncClient
    pool: asyncpg.Pool
    bus: Bus
    settings: LoansSettings
    operator: dict[str, str]
    checker: dict[str, str]
    partner_id: str
    partner: dict[str, str]

    async def count(self, table: str, where: str = "true") -> int:
        async with self.pool.acquire() as conn:
            n: int = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {where}")
        return n

    async def register_client(self, partner_id: str | None = None) -> str:
        client_id = f"cli_{uuid.uuid4().hex[:10]}"
        await self.bus.send(ClientRegistered(
            client_id=client_id, partner_id=partner_id or self.partner_id, full_name="Amina B",
            phone="+212612345678", language="fr", sms_consent=True), key=client_id)
        await self.wait_until(
            f"SELECT 1 FROM client_projection WHERE client_id = '{client_id}'"
            " AND partner_id IS NOT NULL")
        return client_id

    async def wait_until(self, query: str, timeout_s: float = 30.0) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            async with self.pool.acquire() as conn:
                value = await conn.fetchval(query)
            if value:
                return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"never true: {query}")

    async def create_product(self, **overrides: Any) -> str:
        body: dict[str, Any] = {
            "name": "Flat monthly", "interest_method": "flat",
            "amortization": "equal_installments", "frequency": "monthly",
            "annual_rate": "0.12", "min_principal": "500.00", "max_principal": "20000.00",
            "min_term": 2, "max_term": 24,
        }
        body.update(overrides)
        resp = await self.client.post("/v1/products", json=body, headers=self.operator)
        assert resp.status_code == 201, resp.text
        product_id: str = resp.json()["id"]
        return product_id

    async def apply(self, client_id: str, product_id: str, principal: str = "1200.00",
                    term: int = 4) -> dict[str, Any]:
        resp = await self.client.post("/v1/loans", headers=self.partner, json={
            "client_id": client_id, "product_id": product_id, "principal": principal,
            "term": term})
        assert resp.status_code == 201, resp.text
        body: dict[str, Any] = resp.json()
        return body

    async def get(self, loan_id: str) -> dict[str, Any]:
        resp = await self.client.get(f"/v1/loans/{loan_id}", headers=self.operator)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    async def wait_status(self, loan_id: str, status: str, timeout_s: float = 30.0
                          ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        body: dict[str, Any] = {}
        while asyncio.get_running_loop().time() < deadline:
            body = await self.get(loan_id)
            if body["status"] == status:
                return body
            await asyncio.sleep(0.1)
        raise AssertionError(f"loan {loan_id} never became {status}: {body.get('status')}")

    async def approve(self, loan_id: str) -> str:
        resp = await self.client.post(f"/v1/loans/{loan_id}/approve", headers=self.checker)
        assert resp.status_code == 200, resp.text
        saga_id: str = resp.json()["saga_id"]
        return saga_id

    async def reserve(self, saga_id: str, loan_id: str, client_id: str) -> Envelope:
        return await self.bus.send(CreditReserved(
            client_id=client_id, reservation_id=saga_id, saga_id=saga_id, loan_id=loan_id,
            amount=Decimal("1.00"), credit_limit=Decimal("50000.00"),
            exposure=Decimal("1.00"), msisdn="+212612345678", language="fr"), key=client_id)

    async def complete(self, saga_id: str, loan_id: str, client_id: str, amount: str,
                       on: date | None = None) -> Envelope:
        at = datetime.combine(on, time(10, 0), UTC) if on else datetime.now(UTC)
        return await self.bus.send(DisbursementCompleted(
            loan_id=loan_id, saga_id=saga_id, client_id=client_id, amount=Decimal(amount),
            msisdn="+212612345678", provider="simulator", provider_reference=f"ref-{saga_id}",
            completed_at=at), key=loan_id)

    async def active_loan(self, product_id: str, *, principal: str = "1200.00", term: int = 4,
                          disbursed_on: date | None = None) -> dict[str, Any]:
        """A loan taken through the whole saga (acting as clients and payments)."""
        client_id = await self.register_client()
        loan = await self.apply(client_id, product_id, principal, term)
        saga_id = await self.approve(loan["id"])
        await self.bus.wait_for("ReserveCredit", saga_id=saga_id)
        await self.reserve(saga_id, loan["id"], client_id)
        await self.bus.wait_for("DisburseLoan", saga_id=saga_id)
        await self.complete(saga_id, loan["id"], client_id, principal, disbursed_on)
        body = await self.wait_status(loan["id"], "active")
        body["saga_id"] = saga_id
        return body

    async def pay(self, loan_id: str, amount: str, on: date | None = None,
                  payment_id: str | None = None) -> str:
        payment_id = payment_id or f"pay_{uuid.uuid4().hex[:10]}"
        at = datetime.combine(on, time(9, 0), UTC) if on else datetime.now(UTC)
        await self.bus.send(RepaymentReceived(
            loan_id=loan_id, payment_id=payment_id, amount=Decimal(amount),
            payer_msisdn="+212612345678", provider="simulator", external_ref=payment_id,
            received_at=at), key=loan_id)
        return payment_id


@contextlib.asynccontextmanager
async def running_loans(infra: Any, isolated_schema: Callable[..., Any], **overrides: Any
                        ) -> AsyncIterator[Loans]:
    iso = await isolated_schema("loans_it")
    prefix = fresh_prefix()
    await create_topics(infra.kafka_bootstrap, prefix)
    values: dict[str, Any] = {
        "database_url": iso.dsn, "db_schema": iso.schema,
        "kafka_bootstrap": infra.kafka_bootstrap, "topic_prefix": prefix,
        "topic_partitions": 2,
        "cob_schedule_enabled": False, "sweeper_interval_s": 0.3,
        "relay_poll_interval_s": 0.1, **overrides}
    settings = LoansSettings(**values)
    bus = Bus(infra.kafka_bootstrap, prefix)
    await bus.start()
    app = create_app(build_spec(settings))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://loans") as client:
                partner_id = f"partner_{uuid.uuid4().hex[:6]}"
                yield Loans(client, app.state.runtime.pool, bus, settings,
                            operator=token("operator", "op-maker"),
                            checker=token("operator", "op-checker"), partner_id=partner_id,
                            partner=token("partner", "agent-1", partner_id))
    finally:
        await bus.stop()
        await delete_topics(infra.kafka_bootstrap, prefix)


__all__ = ["MIGRATIONS", "Loans", "running_loans", "token"]
