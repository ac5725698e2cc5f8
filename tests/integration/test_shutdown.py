"""A service's shutdown: its ``on_stop`` steps run once its background jobs have
stopped (payments closes its providers' HTTP sessions there)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.payments.bootstrap import close_provider_sessions
from services.payments.providers.gsma import Providers
from services.payments.settings import ProviderConfig
from services.payments.state import PROVIDERS
from shared.app import (
    Runtime,
    ServiceSpec,
    build_runtime,
    close_pool,
    open_pools,
    start_runtime,
    stop_runtime,
)
from shared.settings import ServiceSettings
from tests.conftest import SchemaFactory
from tests.infra import Infra

pytestmark = pytest.mark.integration


async def test_the_stop_steps_run_after_the_background_jobs_have_stopped(
        infra: Infra, isolated_schema: SchemaFactory) -> None:
    iso = await isolated_schema("shutdown")
    events: list[str] = []
    job_running = asyncio.Event()

    async def job(runtime: Runtime) -> None:
        job_running.set()
        try:
            await asyncio.Event().wait()
        finally:
            events.append("job stopped")

    async def stop_step(runtime: Runtime) -> None:
        events.append("stop step")

    providers = Providers({"sim": ProviderConfig(base_url="http://127.0.0.1:9")})
    session = providers.get("sim")
    assert session is not None
    session.http._open()  # a keep-alive session, as after a first call
    settings = ServiceSettings(
        database_url=iso.dsn, db_schema=iso.schema, kafka_bootstrap=infra.kafka_bootstrap,
        topic_prefix=f"s{uuid.uuid4().hex[:8]}.", db_pool_min=1, db_pool_max=2,
        db_background_pool_min=1, db_background_pool_max=2, retention_interval_s=3600)
    spec = ServiceSpec(name="shutdown", settings=settings, background=[job],
                       state={PROVIDERS: providers},
                       on_stop=[stop_step, close_provider_sessions])
    http, background = await open_pools(settings, iso.schema)
    runtime = build_runtime(spec, http, background)
    await start_runtime(runtime)
    try:
        await asyncio.wait_for(job_running.wait(), 10)
    finally:
        await stop_runtime(runtime)
        await close_pool(http)
        await close_pool(background)
    assert events == ["job stopped", "stop step"]
    assert session.http._session is None  # the providers' sessions were closed
