"""The clients service in-process on the real PostgreSQL and Kafka, isolated.

The app has a schema of its own (a fresh role owning it, like ``clients``), and a topic
prefix of this process's own, so its topics and its consumer group (``<prefix>clients``)
are not a running platform's: it neither answers nor reads a ``make up`` beside it, and
each pytest-xdist worker (a process) has its own. One app per worker (its consumer group
joins once); a collector reads everything published on the prefixed ``clients.events``
from the package's start, and a producer plays the loans service.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import SecretStr

import services.clients
from services.clients.bootstrap import build_spec
from services.clients.settings import ClientsSettings
from shared.app import Runtime, create_app
from shared.auth import ROLE_SCOPES
from shared.envelope import Contract, Envelope, envelope_for
from tests.identity import mint_token
from tests.infra import Infra, delete_topics

MIGRATIONS = Path(services.clients.__file__).parent / "migrations"
PREFIX = f"ct{uuid.uuid4().hex[:8]}."
"""This process's topic prefix (and so its consumer group's)."""
EVENTS = f"{PREFIX}clients.events"
KEYCLOAK_ADMIN_SECRET = "noria-admin-dev-secret"  # deploy/keycloak/noria-realm.json


def token(role: str, sub: str | None = None, partner: str | None = None) -> dict[str, str]:
    tok = mint_token(sub=sub or f"{role}-{uuid.uuid4().hex[:6]}",
                     scopes=ROLE_SCOPES[role], partner_id=partner)
    return {"Authorization": f"Bearer {tok}"}


def new_partner() -> str:
    return f"partner-{uuid.uuid4().hex[:8]}"


def random_cin() -> str:
    letters = "".join(random.choices("ABCDEFGHJKLMNPRSTUVWXYZ", k=2))
    return f"{letters}{random.randint(100000, 999999)}"


def random_phone() -> str:
    return f"06{random.randint(0, 99_999_999):08d}"


def client_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "full_name": f"Khadija Ait {uuid.uuid4().hex[:6]}",
        "national_id": random_cin(),
        "phone": random_phone(),
        "date_of_birth": "1988-04-12",
        "language": "fr",
        "sms_consent": True,
        "region": "Souss-Massa",
        "address": "Douar Tighmert, Agadir",
    }
    body.update(overrides)
    return body


@dataclass
class Collector:
    """Every record published on clients.events since the session started."""

    seen: list[tuple[str, Envelope]] = field(default_factory=list)

    async def wait_for(self, pred: Callable[[str, Envelope], bool], *, count: int = 1,
                       timeout_s: float = 30.0) -> list[Envelope]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            found = [env for key, env in list(self.seen) if pred(key, env)]
            if len(found) >= count:
                return found
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"only {len(found)} of {count} expected events arrived")
            await asyncio.sleep(0.1)

    async def of(self, key: str, type_: str, *, count: int = 1, timeout_s: float = 30.0
                 ) -> list[Envelope]:
        return await self.wait_for(lambda k, e: k == key and e.type == type_, count=count,
                                   timeout_s=timeout_s)

    def now(self, key: str, type_: str) -> list[Envelope]:
        return [e for k, e in list(self.seen) if k == key and e.type == type_]


@dataclass
class Service:
    http: httpx.AsyncClient
    runtime: Runtime
    events: Collector
    producer: AIOKafkaProducer

    async def send(self, message: Contract, key: str) -> Envelope:
        env = envelope_for(message, aggregate_id=key)
        await self.producer.send_and_wait(
            f"{PREFIX}{message.topic}", value=env.to_bytes(), key=key.encode(),
            headers=[("type", env.type.encode())])
        return env

    async def register(self, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
        resp = await self.http.post("/v1/clients", json=client_body(**overrides),
                                    headers=headers)
        assert resp.status_code == 201, resp.text
        body: dict[str, Any] = resp.json()
        return body

    async def verified_client(self, partner: str, **overrides: Any) -> dict[str, Any]:
        client = await self.register(token("partner", partner=partner), **overrides)
        resp = await self.http.post(f"/v1/clients/{client['id']}/kyc",
                                    json={"decision": "verified"}, headers=token("operator"))
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    async def credit(self, client_id: str) -> dict[str, Any]:
        resp = await self.http.get(f"/v1/clients/{client_id}/credit",
                                   headers=token("operator"))
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    async def rows(self, sql: str, *args: Any) -> list[Any]:
        async with self.runtime.pool.acquire() as conn:
            return list(await conn.fetch(sql, *args))


async def _collect(bootstrap: str, collector: Collector, ready: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(EVENTS, bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="latest")
    await consumer.start()
    try:
        while not consumer.assignment():
            await asyncio.sleep(0.1)
        for tp in consumer.assignment():
            await consumer.position(tp)  # pins "latest" before anything is produced
        ready.set()
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for r in records:
                    with contextlib.suppress(Exception):
                        collector.seen.append(((r.key or b"").decode(),
                                               Envelope.from_bytes(r.value)))
    finally:
        await consumer.stop()


@pytest.fixture(scope="package")
async def svc(infra: Infra, isolated_schema: Callable[..., Any]) -> AsyncIterator[Service]:
    iso = await isolated_schema("clients_t", MIGRATIONS)
    settings = ClientsSettings(
        database_url=iso.dsn, db_schema=iso.schema, topic_prefix=PREFIX,
        kafka_bootstrap=infra.kafka_bootstrap, relay_poll_interval_s=0.2,
        consumer_retry_backoff_s=0.05,
        # partners' credentials in the real Keycloak, whose tokens it trusts too
        oidc_extra_issuers=infra.keycloak_issuer, identity_admin_url=infra.keycloak_url,
        identity_admin_client_secret=SecretStr(KEYCLOAK_ADMIN_SECRET))
    app = create_app(build_spec(settings))
    collector = Collector()
    ready = asyncio.Event()
    async with app.router.lifespan_context(app):
        task = asyncio.create_task(_collect(infra.kafka_bootstrap, collector, ready))
        await asyncio.wait_for(ready.wait(), 30)
        producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap,
                                    enable_idempotence=True)
        await producer.start()
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://clients") as http:
                yield Service(http, app.state.runtime, collector, producer)
        finally:
            await producer.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    await delete_topics(infra.kafka_bootstrap, PREFIX)
