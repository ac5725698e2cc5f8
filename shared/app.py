"""The service composition: one FastAPI app with its pool, relay and consumers.

A service describes itself with a :class:`ServiceSpec`; :func:`create_app`
builds the app whose lifespan opens the pool, creates the topics, and runs the
outbox relay, its LISTEN wake-up, the inbox consumers and any background jobs
(sweepers) until shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared import context
from shared.db import create_pool
from shared.dlq import dlq_router
from shared.http import health_router, install_error_handlers
from shared.inbox import Handler, InboxConsumer
from shared.kafka import TOPICS, ensure_topics, kafka_reachable, make_consumer, make_producer
from shared.migrations import migrate
from shared.outbox import OutboxRelay, listen_for_outbox
from shared.settings import ServiceSettings
from shared.telemetry import HTTP_LATENCY, setup_logging, setup_tracing
from shared.uow import UnitOfWork

log = logging.getLogger("noria.app")


@dataclass(frozen=True)
class ConsumerSpec:
    """A consumer group: its canonical name and topics (the runtime prefixes both with
    ``settings.topic_prefix``) and a handler per message type."""

    group: str
    topics: list[str]
    handlers: dict[str, Handler]


BackgroundJob = Callable[["Runtime"], Awaitable[None]]


@dataclass
class ServiceSpec:
    name: str
    settings: ServiceSettings
    routers: Sequence[APIRouter] = ()
    consumers: Sequence[ConsumerSpec] = ()
    background: Sequence[BackgroundJob] = ()
    migrations_dir: Path | None = None
    title: str = ""
    description: str = ""
    run_migrations_on_start: bool = True
    state: dict[str, Any] = field(default_factory=dict)
    """What the composition root hands the runtime for the service's routes and jobs
    (a provider client, a wake-up event); copied into :attr:`Runtime.state`."""


@dataclass
class Runtime:
    """What the running service shares with its routes, consumers and jobs."""

    spec: ServiceSpec
    pool: asyncpg.Pool
    relay: OutboxRelay
    consumers: dict[str, InboxConsumer] = field(default_factory=dict)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _dlq_producer: AIOKafkaProducer | None = None
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> ServiceSettings:
        return self.spec.settings

    @property
    def schema(self) -> str:
        return self.settings.db_schema or self.spec.name

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.pool, topic_prefix=self.settings.topic_prefix)

    def topic(self, canonical: str) -> str:
        """The topic this instance uses for the platform topic ``canonical``."""
        return f"{self.settings.topic_prefix}{canonical}"

    async def dlq_producer(self) -> AIOKafkaProducer:
        if self._dlq_producer is None:
            producer = make_producer(self.settings.kafka_bootstrap,
                                     client_id=f"{self.spec.name}-dlq")
            await producer.start()
            self._dlq_producer = producer
        return self._dlq_producer


def build_runtime(spec: ServiceSpec, pool: asyncpg.Pool) -> Runtime:
    s = spec.settings
    schema = s.db_schema or spec.name
    relay = OutboxRelay(
        pool, lambda: make_producer(s.kafka_bootstrap, client_id=f"{spec.name}-relay"),
        service=spec.name, schema=schema, batch_size=s.relay_batch_size,
        lease_s=s.relay_lease_s, poll_interval_s=s.relay_poll_interval_s,
        duplicate=s.relay_duplicate, linger_s=s.relay_linger_s,
    )
    runtime = Runtime(spec=spec, pool=pool, relay=relay, state=dict(spec.state))
    prefix = s.topic_prefix
    for c in spec.consumers:
        group = f"{prefix}{c.group}"
        runtime.consumers[group] = InboxConsumer(
            service=spec.name, group=group, topics=[f"{prefix}{t}" for t in c.topics],
            handlers=c.handlers, pool=pool,
            consumer_factory=lambda g=group: make_consumer(  # type: ignore[misc]
                s.kafka_bootstrap, group_id=g, client_id=f"{g}-{uuid.uuid4().hex[:6]}"),
            dlq_producer=runtime.dlq_producer, max_retries=s.consumer_max_retries,
            retry_backoff_s=s.consumer_retry_backoff_s, batch_max=s.consumer_batch_max,
            topic_prefix=prefix,
        )
    return runtime


async def start_runtime(runtime: Runtime) -> None:
    s = runtime.settings
    topics = {t for c in runtime.consumers.values() for t in c.topics} | {
        runtime.topic(t) for t in TOPICS}
    try:
        await asyncio.wait_for(ensure_topics(
            s.kafka_bootstrap, sorted(topics), partitions=s.topic_partitions,
            replication=s.topic_replication), 30)
    except Exception as exc:  # Kafka may be down at start; the loops retry
        log.warning("could not ensure topics at start-up: %s", exc)
    spawn = runtime.tasks.append
    spawn(asyncio.create_task(runtime.relay.run(), name="outbox-relay"))
    spawn(asyncio.create_task(
        listen_for_outbox(s.database_url, runtime.schema, runtime.relay.wakeup),
        name="outbox-listen"))
    for consumer in runtime.consumers.values():
        spawn(asyncio.create_task(consumer.run(), name=f"consumer-{consumer.group}"))
    for job in runtime.spec.background:
        spawn(asyncio.create_task(_forever(job, runtime), name=f"job-{job.__name__}"))


async def _forever(job: BackgroundJob, runtime: Runtime) -> None:
    while True:
        try:
            await job(runtime)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background job %s failed; restarting", job.__name__)
            await asyncio.sleep(2.0)


STOP_TIMEOUT_S = 10.0


async def _bounded(what: str, step: Awaitable[object]) -> None:
    """One shutdown step, given STOP_TIMEOUT_S: a stuck step is logged, never waited on
    forever (an orchestrator would kill the process anyway, with less said)."""
    try:
        await asyncio.wait_for(step, STOP_TIMEOUT_S)
    except TimeoutError:
        log.error("shutdown: %s did not finish within %.0fs; going on", what, STOP_TIMEOUT_S)
    except Exception as exc:
        log.warning("shutdown: %s failed (%s: %s)", what, type(exc).__name__, exc)


async def stop_runtime(runtime: Runtime) -> None:
    for task in runtime.tasks:
        task.cancel()
    if runtime.tasks:
        _, pending = await asyncio.wait(runtime.tasks, timeout=STOP_TIMEOUT_S)
        for task in pending:
            log.error("shutdown: task %s did not stop within %.0fs", task.get_name(),
                      STOP_TIMEOUT_S)
    runtime.tasks.clear()
    await _bounded("the outbox relay", runtime.relay.stop())
    if runtime._dlq_producer is not None:
        await _bounded("the dead-letter producer", runtime._dlq_producer.stop())


async def close_pool(pool: asyncpg.Pool) -> None:
    """Close gracefully; a connection still held after STOP_TIMEOUT_S is cut."""
    try:
        await asyncio.wait_for(pool.close(), STOP_TIMEOUT_S)
    except TimeoutError:
        log.error("shutdown: database connections still in use after %.0fs; terminated",
                  STOP_TIMEOUT_S)
        pool.terminate()


class ObserveMiddleware:
    """Correlation id in and out (``X-Correlation-ID``) and the request latency metric.

    Plain ASGI: the request runs in the server's own task, without the extra task
    and memory streams ``@app.middleware("http")`` puts around every request.
    """

    def __init__(self, app: Any, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        corr = next((v.decode("latin-1") for k, v in scope["headers"]
                     if k == b"x-correlation-id" and v), None) or str(uuid.uuid4())
        token = context.correlation_id.set(corr)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() != b"x-correlation-id"]
                headers.append((b"x-correlation-id", corr.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            HTTP_LATENCY.labels(self.service, scope["method"], path, str(status)).observe(
                time.perf_counter() - started)
            context.correlation_id.reset(token)


def create_app(spec: ServiceSpec) -> FastAPI:
    s = spec.settings
    setup_tracing(spec.name, s.otlp_endpoint)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        schema = s.db_schema or spec.name
        if spec.run_migrations_on_start:
            await migrate(s.database_url, schema, spec.migrations_dir)
        pool = await create_pool(s.database_url, schema=schema, min_size=s.db_pool_min,
                                 max_size=s.db_pool_max)
        runtime = build_runtime(spec, pool)
        app.state.runtime = runtime
        await start_runtime(runtime)
        log.info("%s service started", spec.name)
        try:
            yield
        finally:
            await stop_runtime(runtime)
            await close_pool(pool)

    app = FastAPI(title=spec.title or f"Noria {spec.name}", description=spec.description,
                  version="0.1.0", lifespan=lifespan)
    app.state.jwt_secret = s.jwt_secret.get_secret_value()
    app.state.service = spec.name
    install_error_handlers(app)

    async def db_check() -> tuple[bool, str]:
        runtime: Runtime = app.state.runtime
        async with runtime.pool.acquire(timeout=2) as conn:
            await asyncio.wait_for(conn.fetchval("SELECT 1"), 2)
        return True, "database reachable"

    async def kafka_check() -> tuple[bool, str]:
        return await kafka_reachable(s.kafka_bootstrap)

    app.include_router(health_router({"database": db_check, "kafka": kafka_check}))
    app.include_router(dlq_router())
    for router in spec.routers:
        app.include_router(router)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(ObserveMiddleware, service=spec.name)

    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="health/.*,metrics")
    if s.otlp_endpoint:
        # A span per SQL statement is only worth its cost (a tenth of a service's CPU
        # under load) when the spans go somewhere.
        AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    return app


def serve(spec_factory: Callable[[], ServiceSpec], argv: list[str]) -> None:
    """Entry point of ``python -m services.<name> [serve|migrate]``."""
    import uvicorn

    spec = spec_factory()
    s = spec.settings
    setup_logging(spec.name, s.log_level)
    command = argv[0] if argv else "serve"
    if command == "migrate":
        applied = asyncio.run(migrate(s.database_url, s.db_schema or spec.name,
                                      spec.migrations_dir))
        log.info("migrations applied: %s", applied or "none pending")
        return
    if command != "serve":
        raise SystemExit(f"unknown command {command!r}: use serve or migrate")
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    uvicorn.run(create_app(spec), host=s.http_host, port=s.http_port, loop=loop,
                log_config=None, access_log=False)
