"""One SMSC simulator and one notifications app (in-process) for the module's tests.

The simulator speaks real SMPP on a free port; the service's providers are that
SMPP port first, then the simulator's HTTP aggregator. The service's clock is
steerable (``rig.clock.set_local(...)``) so quiet hours can be tested.

The app has its own schema (a fresh role owning it, like ``notifications``), its
own topic prefix and so its own consumer group: it runs beside a running platform
and beside other test processes, and neither sees the other's events or rows.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.notifications.bootstrap import MIGRATIONS, build_spec
from services.notifications.consumers import consumer_spec
from services.notifications.domain.messages import CASABLANCA
from services.notifications.handlers.policies import Policies
from services.notifications.settings import NotificationsSettings, ProviderConfig
from shared.app import Runtime, create_app
from shared.auth import ROLE_SCOPES
from shared.contracts.clients import ClientRegistered
from shared.envelope import Contract, Envelope, envelope_for
from shared.inbox import InboxConsumer
from simulators.smsc.runner import Running, running
from tests.identity import mint_token
from tests.infra import Infra, delete_topics
from tests.kafka_facts import consumed_all, until

SMPP_TIMEOUT_S = 1.0
GROUP = consumer_spec(Policies()).group


class SteerableClock:
    """Wall time shifted so that 'now' starts at a chosen Casablanca time and runs on."""

    def __init__(self) -> None:
        self.set_local(12, 0)

    def set_local(self, hour: int, minute: int = 0, *, days: int = 0) -> None:
        today = dt.datetime.now(CASABLANCA).date() + dt.timedelta(days=days)
        self._base = dt.datetime.combine(today, dt.time(hour, minute), tzinfo=CASABLANCA)
        self._started = time.monotonic()

    def __call__(self) -> dt.datetime:
        return (self._base + dt.timedelta(seconds=time.monotonic() - self._started)).astimezone(
            dt.UTC)


@dataclass
class Rig:
    api: httpx.AsyncClient
    sim: httpx.AsyncClient
    smsc: Running
    producer: AIOKafkaProducer
    pool: asyncpg.Pool
    clock: SteerableClock
    partner_id: str
    topic_prefix: str
    consumer: InboxConsumer
    kafka_bootstrap: str
    runtime: Runtime

    def topic(self, canonical: str) -> str:
        """This instance's topic for the platform topic ``canonical``."""
        return f"{self.topic_prefix}{canonical}"

    @property
    def group(self) -> str:
        """This instance's consumer group (what dead letters name as their consumer)."""
        return f"{self.topic_prefix}{GROUP}"

    def token(self, role: str = "operator", partner: str | None = None,
              office_path: str | None = None) -> dict[str, str]:
        """A token of ``role``; with ``office_path``, scoped to that office's subtree."""
        tok = mint_token(sub=f"tester-{role}", scopes=ROLE_SCOPES[role],
                         partner_id=partner,
                         office_id=office_path.rsplit("/", 1)[-1] if office_path else None,
                         office_path=office_path)
        return {"Authorization": f"Bearer {tok}"}

    @property
    def operator(self) -> dict[str, str]:
        return self.token("operator")

    async def publish(self, message: Contract, key: str) -> Envelope:
        env = envelope_for(message, aggregate_id=key)
        await self.publish_envelope(env, message.topic, key)
        return env

    async def publish_envelope(self, env: Envelope, topic: str, key: str) -> None:
        """Publish on ``topic`` (a platform topic name) as this instance reads it."""
        await self.producer.send_and_wait(self.topic(topic), env.to_bytes(), key=key.encode(),
                                          headers=[("type", env.type.encode())])

    async def register(self, *, language: str = "fr", consent: bool = True,
                       partner_id: str | None = None, office_path: str | None = None,
                       officer_id: str | None = None) -> tuple[str, str]:
        """A new client in the projection (in the office ``office_path``, a path of
        office ids, when given); returns (client_id, phone)."""
        client_id = f"cl-{uuid.uuid4().hex[:12]}"
        phone = f"+2126{random.randint(10**7, 10**8 - 1)}"
        await self.publish(ClientRegistered(
            client_id=client_id, partner_id=partner_id or self.partner_id,
            full_name="Fatima Zahra", phone=phone, language=language,  # type: ignore[arg-type]
            sms_consent=consent,
            office_id=office_path.rsplit("/", 1)[-1] if office_path else None,
            office_path=office_path, officer_id=officer_id), key=client_id)
        await self.until(lambda: self._known(client_id), f"client {client_id} projected")
        return client_id, phone

    async def _known(self, client_id: str) -> bool:
        async with self.pool.acquire() as conn:
            return bool(await conn.fetchval(
                "SELECT 1 FROM recipients WHERE client_id = $1", client_id))

    async def messages(self, **query: str) -> list[dict[str, Any]]:
        resp = await self.api.get("/v1/messages", params=query, headers=self.operator)
        assert resp.status_code == 200, resp.text
        result: list[dict[str, Any]] = resp.json()
        return result

    async def message(self, message_id: str) -> dict[str, Any]:
        resp = await self.api.get(f"/v1/messages/{message_id}", headers=self.operator)
        assert resp.status_code == 200, resp.text
        result: dict[str, Any] = resp.json()
        return result

    async def wait_message(self, status: set[str], timeout_s: float = 60,
                           **query: str) -> dict[str, Any]:
        found: dict[str, Any] = {}

        async def check() -> bool:
            nonlocal found
            msgs = await self.messages(**query)
            if msgs and msgs[0]["status"] in status:
                found = msgs[0]
                return True
            return False

        await self.until(check, f"a message {query} in {status}", timeout_s)
        return found

    async def on_phone(self, phone: str) -> list[dict[str, Any]]:
        resp = await self.sim.get("/messages", params={"to": phone})
        result: list[dict[str, Any]] = resp.json()
        return result

    async def control(self, **behaviour: Any) -> None:
        resp = await self.sim.post("/control", json=behaviour)
        assert resp.status_code == 200, resp.text

    async def outbox_types(self, message_id: str) -> list[str]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT type FROM outbox WHERE message_key = $1 ORDER BY id", message_id)
        return [r["type"] for r in rows]

    @staticmethod
    async def until(check: Callable[[], Awaitable[bool]], what: str,
                    timeout_s: float = 30) -> None:
        await until(check, what, timeout_s)

    async def consumed_all(self) -> None:
        """Until the service's consumer has committed every record its topics hold now
        (redelivered copies included)."""
        await consumed_all(self.consumer, self.kafka_bootstrap, self.consumer.topics)

    async def after_a_sending_round(self) -> None:
        """Until a message queued now is delivered: the sending worker has since claimed
        everything due that was committed before (a barrier for "nothing was sent")."""
        client_id, _ = await self.register()
        resp = await self.api.post("/v1/messages", headers=self.operator, json={
            "template": "kyc_verified", "client_id": client_id})
        assert resp.status_code == 201, resp.text
        sentinel = resp.json()["id"]

        async def delivered() -> bool:
            return (await self.message(sentinel))["status"] == "delivered"

        await self.until(delivered, "a sentinel message delivered")


@pytest.fixture(scope="package")
async def sms_rig(infra: Infra, isolated_schema: Callable[..., Any]) -> AsyncIterator[Rig]:
    clock = SteerableClock()
    iso = await isolated_schema("notif_it", MIGRATIONS)
    prefix = f"nt{uuid.uuid4().hex[:8]}."
    async with running() as smsc:
        settings = NotificationsSettings(
            database_url=iso.dsn, db_schema=iso.schema, topic_prefix=prefix,
            kafka_bootstrap=infra.kafka_bootstrap,
            providers=[
                ProviderConfig(name="smsc", kind="smpp", port=smsc.smpp_port,
                               timeout_s=SMPP_TIMEOUT_S),
                ProviderConfig(name="aggregator", kind="http",
                               url=f"{smsc.http_url}/aggregator", timeout_s=2.0),
            ],
            retry_base_s=0.3, throttle_backoff_s=0.5, max_attempts=4, worker_poll_s=0.1,
            receipt_poll_s=0.3, consumer_retry_backoff_s=0.05)
        app = create_app(build_spec(settings, clock=clock))
        producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap,
                                    enable_idempotence=True)
        await producer.start()
        try:
            async with app.router.lifespan_context(app):
                pool = app.state.runtime.pool
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                             base_url="http://notifications") as api, \
                        httpx.AsyncClient(base_url=smsc.http_url) as sim:
                    yield Rig(api, sim, smsc, producer, pool, clock,
                              partner_id=f"pa-{uuid.uuid4().hex[:8]}", topic_prefix=prefix,
                              consumer=app.state.runtime.consumers[f"{prefix}{GROUP}"],
                              kafka_bootstrap=infra.kafka_bootstrap,
                              runtime=app.state.runtime)
        finally:
            await producer.stop()
            await delete_topics(infra.kafka_bootstrap, prefix)


@pytest.fixture
async def rig(sms_rig: Rig) -> AsyncIterator[Rig]:
    await sms_rig.sim.post("/control/reset")
    sms_rig.clock.set_local(12, 0)
    yield sms_rig
    await sms_rig.sim.post("/control/reset")
    sms_rig.clock.set_local(12, 0)
