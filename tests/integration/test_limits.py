"""Database limits: a runaway query and a full pool are answered 503, and HTTP traffic
cannot starve the relay, the consumers or the jobs of a service."""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal

import asyncpg
import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request

from shared.app import ConsumerSpec, Runtime, ServiceSpec, create_app
from shared.db import DbLimits, create_pool
from shared.envelope import Envelope
from shared.http import install_error_handlers
from shared.settings import ServiceSettings
from shared.uow import UnitOfWork
from tests.conftest import SchemaFactory
from tests.infra import Infra
from tests.integration.harness import OrderPlacedInTest
from tests.kafka_facts import until

pytestmark = pytest.mark.integration


def assert_503(resp: httpx.Response) -> None:
    assert resp.status_code == 503, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert int(resp.headers["retry-after"]) >= 1
    assert resp.json()["status"] == 503


async def test_a_runaway_query_is_cancelled_by_the_statement_timeout_and_answered_503(
        isolated_schema: SchemaFactory) -> None:
    iso = await isolated_schema("runaway")
    pool = await create_pool(iso.dsn, schema=iso.schema, max_size=2,
                             limits=DbLimits(statement_timeout_s=0.5))
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/report")
    async def report() -> dict[str, str]:
        async with pool.acquire() as conn:
            await conn.execute("SELECT pg_sleep(30)")
        return {"status": "done"}

    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            started = time.monotonic()
            resp = await asyncio.wait_for(client.get("/report"), timeout=10)
        assert_503(resp)
        assert time.monotonic() - started < 5
        # the connection went back to the pool healthy, limits intact
        assert await pool.fetchval("SHOW statement_timeout") == "500ms"
    finally:
        await pool.close()


async def test_a_request_that_waits_too_long_for_a_connection_is_answered_503(
        isolated_schema: SchemaFactory) -> None:
    iso = await isolated_schema("waiting")
    pool = await create_pool(iso.dsn, schema=iso.schema, min_size=1, max_size=1,
                             acquire_timeout_s=0.3)
    holding, release = asyncio.Event(), asyncio.Event()
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/hold")
    async def hold() -> dict[str, str]:
        async with pool.acquire() as conn:
            await conn.execute("SELECT 1")
            holding.set()
            await release.wait()
        return {"status": "done"}

    @app.get("/quick")
    async def quick() -> dict[str, int]:
        return {"one": await pool.fetchval("SELECT 1")}

    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            holder = asyncio.create_task(client.get("/hold"))
            await holding.wait()
            resp = await asyncio.wait_for(client.get("/quick"), timeout=10)
            assert_503(resp)
            release.set()
            assert (await holder).status_code == 200
            assert (await client.get("/quick")).json() == {"one": 1}
    finally:
        await pool.close()


async def test_http_requests_holding_every_connection_do_not_stop_relay_consumer_or_jobs(
        infra: Infra, isolated_schema: SchemaFactory) -> None:
    iso = await isolated_schema("starve")
    prefix = f"starve{uuid.uuid4().hex[:8]}."
    topic = "orders.events"
    async with asyncpg.create_pool(iso.dsn, min_size=1, max_size=2) as setup:
        await setup.execute("CREATE TABLE effects (event_id uuid PRIMARY KEY)")
        await setup.execute("CREATE TABLE heartbeats (at timestamptz NOT NULL)")

    async def on_order(uow: UnitOfWork, event: OrderPlacedInTest, env: Envelope) -> None:
        await uow.conn.execute("INSERT INTO effects VALUES ($1)", env.event_id)

    async def heartbeat(runtime: Runtime) -> None:
        while True:   # a job as services write them: through runtime.pool
            async with runtime.pool.acquire() as conn:
                await conn.execute("INSERT INTO heartbeats VALUES (now())")
            await asyncio.sleep(0.05)

    in_flight = 0
    holding = 0
    release = asyncio.Event()
    router = APIRouter()

    @router.get("/slow")
    async def slow(request: Request) -> dict[str, str]:
        nonlocal in_flight, holding
        in_flight += 1
        runtime: Runtime = request.app.state.runtime
        async with runtime.pool.acquire() as conn:
            await conn.execute("SELECT 1")
            holding += 1
            await release.wait()
        return {"status": "done"}

    settings = ServiceSettings(
        database_url=iso.dsn, db_schema=iso.schema, kafka_bootstrap=infra.kafka_bootstrap,
        topic_prefix=prefix, db_pool_min=1, db_pool_max=4, db_acquire_timeout_s=120,
        db_background_pool_min=1, db_background_pool_max=4, relay_poll_interval_s=0.1)
    spec = ServiceSpec(
        name="starve", settings=settings, routers=[router],
        consumers=[ConsumerSpec("starve-orders", [topic],
                                {"OrderPlacedInTest": on_order})],
        background=[heartbeat])
    app = create_app(spec)
    writer = await create_pool(iso.dsn, schema=iso.schema, max_size=2)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=transport, base_url="http://t", timeout=300) as client:
            slow = [asyncio.create_task(client.get("/slow")) for _ in range(200)]
            await until(lambda: _ready(in_flight == 200 and holding == 4),
                        "200 requests in flight, 4 holding every HTTP connection")
            beats_before = await writer.fetchval("SELECT count(*) FROM heartbeats")
            for i in range(30):   # another writer's commits: the relay must publish them
                async with UnitOfWork(writer) as uow:
                    uow.emit(OrderPlacedInTest(order_id=f"o-{i}", seq=i, amount=Decimal("1")),
                             key=f"o-{i}", topic=f"{prefix}{topic}")
                    await uow.commit()

            async def applied() -> bool:
                return await writer.fetchval("SELECT count(*) FROM effects") == 30
            await until(applied, "the consumer applied all 30 events", timeout_s=60)

            async def beating() -> bool:
                n = await writer.fetchval("SELECT count(*) FROM heartbeats")
                return bool(n >= beats_before + 5)
            await until(beating, "the background job kept writing")
            assert holding == 4 and not any(t.done() for t in slow), \
                "the HTTP pool was still exhausted throughout"
            release.set()
            results = await asyncio.gather(*slow)
            assert {r.status_code for r in results} == {200}
    finally:
        release.set()
        await writer.close()


async def _ready(value: bool) -> bool:
    return value


