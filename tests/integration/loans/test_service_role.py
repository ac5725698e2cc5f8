"""The service as deployed: its own role ``noria_loans`` and schema ``loans``."""

from __future__ import annotations

import uuid

import httpx
import pytest

from services.loans.bootstrap import build_spec
from services.loans.settings import LoansSettings
from shared.app import create_app
from tests.infra import Infra
from tests.integration.loans.harness import create_topics, delete_topics, fresh_prefix, token

pytestmark = pytest.mark.integration


async def test_migrates_and_serves_as_its_own_role(infra: Infra) -> None:
    prefix = fresh_prefix()
    await create_topics(infra.kafka_bootstrap, prefix)
    settings = LoansSettings(database_url=infra.service_url("loans"),
                             kafka_bootstrap=infra.kafka_bootstrap, topic_prefix=prefix,
                             topic_partitions=2, cob_schedule_enabled=False)
    app = create_app(build_spec(settings))
    try:
        await _serve(app)
    finally:
        await delete_topics(infra.kafka_bootstrap, prefix)


async def _serve(app: object) -> None:
    async with app.router.lifespan_context(app):  # type: ignore[attr-defined]
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://loans") as client:
            ready = await client.get("/health/ready")
            assert ready.status_code == 200, ready.text
            operator = token("operator", "op-1")
            name = f"Role check {uuid.uuid4().hex[:6]}"
            created = await client.post("/v1/products", headers=operator, json={
                "name": name, "interest_method": "flat", "frequency": "weekly",
                "annual_rate": "0.20", "min_principal": "500.00", "max_principal": "3000.00",
                "min_term": 4, "max_term": 26})
            assert created.status_code == 201, created.text
            listed = (await client.get("/v1/products", headers=operator)).json()["items"]
            assert name in [p["name"] for p in listed]
            async with app.state.runtime.pool.acquire() as conn:  # type: ignore[attr-defined]
                assert await conn.fetchval("SELECT current_user") == "noria_loans"
                assert await conn.fetchval("SELECT current_schema()") == "loans"
