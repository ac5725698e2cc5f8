"""``/health/ready`` follows the broker: false while Kafka is down, true when back."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

import services.clients
from services.clients.bootstrap import build_spec
from services.clients.settings import ClientsSettings
from shared.app import create_app
from tests.conftest import SchemaFactory
from tests.infra import Infra, delete_topics, kafka_ctl

pytestmark = [pytest.mark.integration, pytest.mark.disruptive]


async def poll_ready(client: httpx.AsyncClient, want: bool, timeout_s: float = 60) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout_s
    body: dict = {}
    while asyncio.get_running_loop().time() < deadline:
        resp = await client.get("/health/ready")
        body = resp.json()
        if (resp.status_code == 200) == want and body["ready"] == want:
            return body
        await asyncio.sleep(0.5)
    raise AssertionError(f"readiness never became {want}: {body}")


async def test_ready_turns_false_when_kafka_stops_and_true_when_it_is_back(
        infra: Infra, isolated_schema: SchemaFactory) -> None:
    if not infra.managed_locally:
        pytest.skip("stops the broker, so it runs only against the project's own Kafka "
                    f"(this session's infrastructure came from {infra.source})")
    # Its own schema, topics and consumer group; the broker it stops is everyone's.
    iso = await isolated_schema("ready", Path(services.clients.__file__).parent / "migrations")
    prefix = f"rd{uuid.uuid4().hex[:8]}."
    try:
        await _follows_the_broker(ClientsSettings(
            database_url=iso.dsn, db_schema=iso.schema, topic_prefix=prefix,
            kafka_bootstrap=infra.kafka_bootstrap))
    finally:
        await delete_topics(infra.kafka_bootstrap, prefix)


async def _follows_the_broker(settings: ClientsSettings) -> None:
    app = create_app(build_spec(settings))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=transport, base_url="http://clients") as client:
            body = await poll_ready(client, True)
            assert body["checks"]["database"]["ok"] is True
            await asyncio.to_thread(kafka_ctl, "down")
            try:
                body = await poll_ready(client, False)
                assert body["checks"]["kafka"]["ok"] is False
                assert body["checks"]["database"]["ok"] is True
            finally:
                await asyncio.to_thread(kafka_ctl, "up")
            await poll_ready(client, True)
