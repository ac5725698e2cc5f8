"""The service composition: one FastAPI app with its pools, relay and consumers.

A service describes itself with a :class:`ServiceSpec`; :func:`create_app`
builds the app whose lifespan opens the pools, creates the topics, and runs the
outbox relay (and its hand-over: units of work over the service's pools give it
their rows right after commit), its LISTEN wake-up, the inbox consumers, the
retention job and any background jobs (sweepers) until shutdown.

Two pools, so that HTTP traffic can never starve background work: request
handlers use the HTTP pool (``db_pool_max``, a short statement timeout, a bounded
wait answered 503); the relay, the consumers and every job in
``ServiceSpec.background`` use the background pool (``db_background_pool_max``).
``runtime.pool`` and ``runtime.uow()`` give the pool of the caller's role: the
background tasks are started in a context marked as background work, and every
task they start inherits it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared import context
from shared.audit import AuditMiddleware, audit_router
from shared.auth import verifier_for
from shared.db import DbLimits, create_pool
from shared.dlq import dlq_router
from shared.http import health_router, install_error_handlers
from shared.inbox import Handler, InboxConsumer
from shared.kafka import TOPICS, ensure_topics, kafka_reachable, make_consumer, make_producer
from shared.metrics_access import check_metrics_access
from shared.migrations import migrate
from shared.openapi import describe_problems
from shared.outbox import OutboxRelay, listen_for_outbox
from shared.ratelimit import install_rate_limit, limiter_from
from shared.retention import RetentionJob, RetentionTable
from shared.settings import ServiceSettings
from shared.telemetry import HTTP_LATENCY, setup_logging, setup_tracing
from shared.uow import UnitOfWork, attach_publisher, detach_publisher

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
    retention: Sequence[RetentionTable] = ()
    """Service-owned tables the retention job prunes besides the platform's own, as
    (table, timestamp column) pairs: webhook receipts, delivery receipts."""
    on_stop: Sequence[Callable[[Runtime], Awaitable[None]]] = ()
    """Run at shutdown once the background jobs and consumers have stopped, each bounded
    like every shutdown step: close what the state holds (a provider's HTTP sessions)."""


_BACKGROUND: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "noria_background_work", default=False)


@contextlib.contextmanager
def background_work() -> Iterator[None]:
    """Mark what runs (and the tasks created) inside as background work: its
    ``runtime.pool`` is the background pool."""
    token = _BACKGROUND.set(True)
    try:
        yield
    finally:
        _BACKGROUND.reset(token)


def in_background() -> bool:
    return _BACKGROUND.get()


@dataclass
class Runtime:
    """What the running service shares with its routes, consumers and jobs."""

    spec: ServiceSpec
    http_pool: asyncpg.Pool
    relay: OutboxRelay
    background_pool: asyncpg.Pool | None = None
    """None: one pool for both (a test rig)."""
    consumers: dict[str, InboxConsumer] = field(default_factory=dict)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _dlq_producer: AIOKafkaProducer | None = None
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> ServiceSettings:
        return self.spec.settings

    @property
    def pool(self) -> asyncpg.Pool:
        """The pool of the caller's role: background work's own, or the HTTP pool."""
        if self.background_pool is not None and _BACKGROUND.get():
            return self.background_pool
        return self.http_pool

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


def build_runtime(spec: ServiceSpec, pool: asyncpg.Pool,
                  background_pool: asyncpg.Pool | None = None) -> Runtime:
    """The runtime over ``pool`` (HTTP) and ``background_pool`` (relay, consumers, jobs;
    ``pool`` too if None)."""
    s = spec.settings
    schema = s.db_schema or spec.name
    worker_pool = background_pool or pool
    relay = OutboxRelay(
        worker_pool, lambda: make_producer(s.kafka_bootstrap, client_id=f"{spec.name}-relay"),
        service=spec.name, schema=schema, batch_size=s.relay_batch_size,
        lease_s=s.relay_lease_s, poll_interval_s=s.relay_poll_interval_s,
        duplicate=s.relay_duplicate, linger_s=s.relay_linger_s,
    )
    runtime = Runtime(spec=spec, http_pool=pool, background_pool=background_pool, relay=relay,
                      state=dict(spec.state))
    prefix = s.topic_prefix
    for c in spec.consumers:
        group = f"{prefix}{c.group}"
        runtime.consumers[group] = InboxConsumer(
            service=spec.name, group=group, topics=[f"{prefix}{t}" for t in c.topics],
            handlers=c.handlers, pool=worker_pool,
            consumer_factory=lambda g=group: make_consumer(  # type: ignore[misc]
                s.kafka_bootstrap, group_id=g, client_id=f"{g}-{uuid.uuid4().hex[:6]}"),
            dlq_producer=runtime.dlq_producer, max_retries=s.consumer_max_retries,
            retry_backoff_s=s.consumer_retry_backoff_s,
            retry_backoff_max_s=s.consumer_retry_backoff_max_s, batch_max=s.consumer_batch_max,
            across_partitions=s.consumer_batch_across_partitions,
            linger_s=s.consumer_linger_s, topic_prefix=prefix,
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
    with background_work():  # every task below, and each it starts, uses the background pool
        spawn(asyncio.create_task(runtime.relay.run(), name="outbox-relay"))
        # units of work over either pool hand their committed rows to this relay
        spawn(runtime.relay.start_handoff())
        for pool in {runtime.http_pool, runtime.background_pool or runtime.http_pool}:
            attach_publisher(pool, runtime.relay)
        spawn(asyncio.create_task(
            listen_for_outbox(s.database_url, runtime.schema, runtime.relay.wakeup),
            name="outbox-listen"))
        for consumer in runtime.consumers.values():
            spawn(asyncio.create_task(consumer.run(), name=f"consumer-{consumer.group}"))
        spawn(asyncio.create_task(retention_job(runtime).run(), name="retention"))
        for job in runtime.spec.background:
            spawn(asyncio.create_task(_forever(job, runtime), name=f"job-{job.__name__}"))


def retention_job(runtime: Runtime) -> RetentionJob:
    s = runtime.settings
    return RetentionJob(
        runtime.background_pool or runtime.http_pool, service=runtime.spec.name,
        schema=runtime.schema, keep_days=s.retention_days, interval_s=s.retention_interval_s,
        batch_size=s.retention_batch_size, extra=runtime.spec.retention)


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
    for pool in {runtime.http_pool, runtime.background_pool or runtime.http_pool}:
        detach_publisher(pool, runtime.relay)
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
    for stop in runtime.spec.on_stop:
        await _bounded(getattr(stop, "__name__", "a stop step"), stop(runtime))


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


async def open_pools(s: ServiceSettings, schema: str) -> tuple[asyncpg.Pool, asyncpg.Pool]:
    """The HTTP pool and the background pool, each with its role's limits."""
    http = await create_pool(
        s.database_url, schema=schema, min_size=s.db_pool_min, max_size=s.db_pool_max,
        limits=DbLimits(s.db_statement_timeout_s, s.db_lock_timeout_s,
                        s.db_idle_in_transaction_timeout_s),
        acquire_timeout_s=s.db_acquire_timeout_s, role="http")
    try:
        background = await create_pool(
            s.database_url, schema=schema, min_size=s.db_background_pool_min,
            max_size=s.db_background_pool_max,
            limits=DbLimits(s.db_background_statement_timeout_s, s.db_lock_timeout_s,
                            s.db_idle_in_transaction_timeout_s),
            acquire_timeout_s=s.db_background_acquire_timeout_s, role="background")
    except BaseException:
        await close_pool(http)
        raise
    return http, background


def create_app(spec: ServiceSpec) -> FastAPI:
    s = spec.settings
    setup_tracing(spec.name, s.otlp_endpoint)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        schema = s.db_schema or spec.name
        if spec.run_migrations_on_start:
            await migrate(s.database_url, schema, spec.migrations_dir)
        pool, background = await open_pools(s, schema)
        runtime = build_runtime(spec, pool, background)
        app.state.runtime = runtime
        await start_runtime(runtime)
        log.info("%s service started", spec.name)
        try:
            yield
        finally:
            await stop_runtime(runtime)
            await close_pool(pool)
            await close_pool(background)

    app = FastAPI(title=spec.title or f"Noria {spec.name}", description=spec.description,
                  version="0.1.0", lifespan=lifespan,
                  docs_url="/docs" if s.api_docs else None,
                  redoc_url="/redoc" if s.api_docs else None,
                  openapi_url="/openapi.json" if s.api_docs else None)
    app.state.token_verifier = verifier_for(s)
    install_rate_limit(app, limiter_from(s))
    app.state.service = spec.name
    install_error_handlers(app)
    describe_problems(app)  # the document says what install_error_handlers sends

    async def db_check() -> tuple[bool, str]:
        runtime: Runtime = app.state.runtime
        async with runtime.http_pool.acquire(timeout=2) as conn:
            await asyncio.wait_for(conn.fetchval("SELECT 1"), 2)
        return True, "database reachable"

    async def kafka_check() -> tuple[bool, str]:
        return await kafka_reachable(s.kafka_bootstrap)

    app.include_router(health_router({"database": db_check, "kafka": kafka_check}))
    app.include_router(dlq_router())
    app.include_router(audit_router())
    for router in spec.routers:
        app.include_router(router)

    app.state.metrics_access = s

    @app.get("/metrics", include_in_schema=False,
             dependencies=[Depends(check_metrics_access)])
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(AuditMiddleware)  # who did what (shared.audit): inside Observe
    app.add_middleware(ObserveMiddleware, service=spec.name)

    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # no spans for the ASGI receive/send events: two per request, nothing to read in them
    FastAPIInstrumentor.instrument_app(app, excluded_urls="health/.*,metrics",
                                       exclude_spans=["receive", "send"])
    if s.otlp_endpoint:
        # A span per SQL statement is only worth its cost (a tenth of a service's CPU
        # under load) when the spans go somewhere.
        AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    return app


# How long a server keeps an idle keep-alive connection. It must outlast every client's
# own idle limit (httpx's 5 s, a wallet SDK's, an ingress' upstream pool at 60 s): when both
# sides give up at the same moment, the client sends its next request on a connection the
# server is closing and gets no answer at all (httpx: ReadError, a proxy: 502) for a request
# that may or may not have been handled. uvicorn's own default is 5 s.
KEEP_ALIVE_S = 75


def server_options() -> dict[str, Any]:
    """The uvicorn options every Noria HTTP server runs with."""
    return {"timeout_keep_alive": KEEP_ALIVE_S, "log_config": None, "access_log": False}


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
                **server_options())
