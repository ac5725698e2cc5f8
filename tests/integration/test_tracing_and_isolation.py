"""One trace follows a request through the outbox and Kafka; schemas stay private."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.telemetry import setup_tracing
from tests.infra import Infra
from tests.integration.harness import rig
from tests.kafka_facts import until

pytestmark = pytest.mark.integration


async def test_consumer_processing_span_carries_the_producers_trace_id(
        infra: Infra, isolated_schema, fresh_topic) -> None:
    provider = setup_tracing("tests")
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = trace.get_tracer("tests")
    async with rig(isolated_schema, fresh_topic, infra.kafka_bootstrap) as r:
        with tracer.start_as_current_span("POST /v1/orders") as request_span:
            await r.place_order("order-t", 1, "12.00")
        request_trace = request_span.get_span_context().trace_id
        await r.relay().relay_once()
        consumer = r.consumer()
        r.start(consumer.run())
        await r.wait_for_count(1)

        async def ended() -> list[Any]:
            return [s for s in exporter.get_finished_spans() if s.name == f"{r.topic} process"]
        # the span ends once the handler's transaction has committed
        processing = await until(ended, "the consumer's processing span ended")
    assert processing[0].context.trace_id == request_trace
    assert processing[0].parent is not None
    assert processing[0].attributes["noria.message.type"] == "OrderPlacedInTest"


async def test_a_service_role_cannot_read_another_services_schema(infra: Infra) -> None:
    # The deployed roles and schemas themselves (nothing else shows their grants): a probe
    # table of this test's own, gone afterwards, beside whatever a running platform keeps.
    probe = f"isolation_probe_{uuid.uuid4().hex[:8]}"
    loans = await asyncpg.connect(infra.service_url("loans"))
    clients = await asyncpg.connect(infra.service_url("clients"))
    try:
        await loans.execute(f"CREATE TABLE {probe} (secret text)")
        await loans.execute(f"INSERT INTO {probe} VALUES ('loan book')")
        assert await clients.fetchval("SELECT current_schema()") == "clients"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await clients.fetch(f"SELECT * FROM loans.{probe}")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await clients.execute(f"CREATE TABLE loans.intruder_{probe} (x int)")
        # Nor can it reach into the public schema to share data sideways.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await clients.execute("CREATE TABLE public.sideways (x int)")
    finally:
        await loans.execute(f"DROP TABLE IF EXISTS {probe}")
        await loans.close()
        await clients.close()
