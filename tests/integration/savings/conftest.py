"""One savings service over real HTTP, PostgreSQL and Kafka, for these tests.

Savings gets its own schema (a fresh role, like its own) and a topic prefix, so nothing
else on the shared broker interferes. Payments is not running: the tests play its part,
reading ``PayOutWithdrawal`` from the prefixed ``payments.commands`` and publishing its
replies on the prefixed ``payments.events``; clients' events are published the same way.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.savings.bootstrap import build_spec
from services.savings.settings import SavingsSettings
from shared.app import Runtime, create_app
from shared.contracts import clients, loans, payments, savings
from shared.db import create_pool
from shared.envelope import Contract, Envelope, envelope_for
from shared.inbox import InboxConsumer
from shared.kafka import ensure_topics, make_producer
from tests.identity import mint_token
from tests.infra import Infra, delete_topics
from tests.kafka_facts import TopicReader, consumed_all, until
from tests.rigs import free_port, new_msisdn, serve

PARTITIONS = 4
MIGRATIONS = Path(__file__).resolve().parents[3] / "services/savings/migrations"
READER_SCOPES = ("savings:read",)
OPERATOR_SCOPES = ("tenant:all", "savings:read", "savings:write", "savings:approve",
                   "products:write", "cob:run")



@dataclass
class Rig:
    api: httpx.AsyncClient
    app: Any
    pool: asyncpg.Pool
    settings: SavingsSettings
    producer: AIOKafkaProducer
    bootstrap: str
    reader: TopicReader
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, sub: str = "operator-1", scopes: tuple[str, ...] = OPERATOR_SCOPES,
             partner: str | None = None) -> dict[str, str]:
        key = f"{sub}:{scopes}:{partner}"
        if key not in self.tokens:
            self.tokens[key] = mint_token(sub=sub, scopes=scopes, partner_id=partner)
        return {"Authorization": f"Bearer {self.tokens[key]}"}

    def keyed(self, key: str | None = None, **auth: Any) -> dict[str, str]:
        return {**self.auth(**auth), "Idempotency-Key": key or uuid.uuid4().hex}

    @property
    def consumer(self) -> InboxConsumer:
        runtime: Runtime = self.app.state.runtime
        return runtime.consumers[self.settings.topic("savings")]

    async def send(self, message: Contract, key: str, env: Envelope | None = None) -> Envelope:
        env = env or envelope_for(message, aggregate_id=key)
        await self.producer.send_and_wait(self.settings.topic(message.topic), env.to_bytes(),
                                          key=key.encode(), headers=[("type", env.type.encode())])
        return env

    async def consumed(self) -> None:
        """Every record the consumer's topics hold now has taken effect."""
        await consumed_all(self.consumer, self.bootstrap,
                           self.consumer.topics)

    async def client(self, partner: str = "partner-a", *, verified: bool = True,
                     phone: str | None = None) -> str:
        """A client savings knows through clients.events (KYC verified unless told)."""
        client_id = f"client-{uuid.uuid4().hex[:10]}"
        await self.send(clients.ClientRegistered(
            client_id=client_id, partner_id=partner, full_name="Amina Test",
            phone=phone or new_msisdn(), language="fr", sms_consent=True), key=client_id)
        if verified:
            await self.send(clients.ClientKycVerified(client_id=client_id,
                                                      verified_by="checker"), key=client_id)

        async def known() -> bool:
            async with self.pool.acquire() as conn:
                status = await conn.fetchval(
                    "SELECT kyc_status FROM client_projection WHERE client_id = $1", client_id)
            return bool(status == ("verified" if verified else "pending"))
        await until(known, f"savings knows client {client_id}")
        return client_id

    async def product(self, **terms: Any) -> str:
        body = {"name": "Épargne libre", "kind": "voluntary", "annual_rate": "0.03", **terms}
        resp = await self.api.post("/v1/savings/products", json=body, headers=self.auth())
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    async def account(self, product_id: str, client_id: str, opening: str = "0.00"
                      ) -> dict[str, Any]:
        resp = await self.api.post("/v1/savings/accounts", headers=self.keyed(), json={
            "client_id": client_id, "product_id": product_id, "opening_deposit": opening})
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    async def get(self, account_id: str) -> dict[str, Any]:
        resp = await self.api.get(f"/v1/savings/accounts/{account_id}", headers=self.auth())
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    async def deposit(self, account_id: str, amount: str, key: str | None = None
                      ) -> httpx.Response:
        return await self.api.post(f"/v1/savings/accounts/{account_id}/deposits",
                                   json={"amount": amount}, headers=self.keyed(key))

    async def withdraw(self, account_id: str, amount: str, key: str | None = None
                       ) -> httpx.Response:
        return await self.api.post(f"/v1/savings/accounts/{account_id}/withdrawals",
                                   json={"amount": amount}, headers=self.keyed(key))

    async def withdrawal(self, withdrawal_id: str) -> dict[str, Any]:
        resp = await self.api.get(f"/v1/savings/withdrawals/{withdrawal_id}",
                                  headers=self.auth())
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    async def withdrawal_status(self, withdrawal_id: str, status: str) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            w = await self.withdrawal(withdrawal_id)
            return w if w["status"] == status else None
        found = await until(reached, f"withdrawal {withdrawal_id} {status}")
        assert found is not None
        return found

    async def statement(self, account_id: str) -> dict[str, Any]:
        resp = await self.api.get(f"/v1/savings/accounts/{account_id}/statement",
                                  headers=self.auth())
        assert resp.status_code == 200, resp.text
        return dict(resp.json())


def paid_out(command: dict[str, Any], reference: str = "prov-ref") -> savings.WithdrawalPaidOut:
    return savings.WithdrawalPaidOut(
        account_id=command["account_id"], withdrawal_id=command["withdrawal_id"],
        amount=Decimal(command["amount"]), msisdn=command["msisdn"], provider="sim",
        provider_reference=reference, completed_at=dt.datetime.now(dt.UTC))


@pytest.fixture(scope="package")
async def rig(infra: Infra, isolated_schema: Callable[..., Any]) -> AsyncIterator[Rig]:
    iso = await isolated_schema("savings_t", MIGRATIONS)
    prefix = f"t{uuid.uuid4().hex[:8]}."
    port = free_port()
    settings = SavingsSettings(
        database_url=iso.dsn, db_schema=iso.schema, kafka_bootstrap=infra.kafka_bootstrap,
        topic_prefix=prefix, consumer_retry_backoff_s=0.05, relay_poll_interval_s=0.1,
        opening_approval_above=Decimal("10000.00"),
        # the tests drive close of business themselves; the daily scheduler would catch up
        # the night before at start-up (after 00:00 Casablanca) and race them
        cob_schedule_enabled=False)
    await ensure_topics(infra.kafka_bootstrap, [settings.topic(t) for t in (
        savings.EVENTS, savings.COMMANDS, payments.COMMANDS, payments.EVENTS, clients.EVENTS,
        loans.EVENTS)], partitions=PARTITIONS)
    reader = TopicReader(infra.kafka_bootstrap, [settings.topic(payments.COMMANDS),
                                                 settings.topic(savings.EVENTS)],
                         strip_prefix=prefix)
    await reader.start()
    producer = make_producer(infra.kafka_bootstrap, client_id="savings-test")
    await producer.start()
    pool = await create_pool(iso.dsn, schema=iso.schema, min_size=1, max_size=4)
    app = create_app(build_spec(settings))
    try:
        async with serve(app, port), httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", timeout=30) as api:
            yield Rig(api, app, pool, settings, producer, infra.kafka_bootstrap, reader)
    finally:
        await producer.stop()
        await reader.stop()
        await pool.close()
        await delete_topics(infra.kafka_bootstrap, prefix)
