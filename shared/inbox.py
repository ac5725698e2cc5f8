"""The inbox consumer: an event takes effect exactly once, whatever is redelivered.

For each record: parse the envelope, open a unit of work, insert
``(consumer, event_id)`` into the inbox and run the handler in the same
transaction, commit, and only then commit the Kafka offset. A record that keeps
failing (or cannot be parsed) is recorded in ``dead_letters``, copied to
``<topic>.dlq`` with its origin in the headers, and the consumer moves on.

Errors are told apart by type. The database being unavailable (connection lost,
server restarting, no pooled connection free in time) is nobody's fault: the
consumer waits for it and never dead-letters. Anything else the handler raises —
a ``TimeoutError`` of its own, a statement cancelled by ``statement_timeout`` — is
a handler failure: retried with the platform's :class:`~shared.retry.RetryPolicy`
(capped exponential backoff with jitter) ``max_retries`` times in all, then
dead-lettered. A record whose dead-letter write or publish fails is neither
committed nor skipped: :class:`DeadLetterFailed` sends the consumer back to its
offset, and it comes back after a pause.

A record whose ``type`` header names a registered type this consumer has no
handler for is skipped before anything is decoded (no envelope, no span, no
transaction); its offset is committed with the others. A record without that
header, or of an unregistered type, is decoded as before (and dead-lettered if
it is not a known message). Each record is decoded once.

A poll that finds records lingers ``linger_s`` (a few milliseconds) for more, so
that batches form below the knee too; offsets are committed every
``commit_interval_s`` rather than after every poll (still only after the
database commit).

The records of one poll may share one transaction (each with its own inbox row, all
written by one statement; at most ``batch_max``), whatever their partition: a
consumer of several topics of four partitions each sees a record or two per
partition in a poll below the knee, so batching per partition alone left most
transactions with one event. Each partition's records keep their order (a
partition's records are applied one after another); partitions never had an order
between them. That is ``across_partitions=True``; the default keeps one transaction
per partition and poll (a wider transaction holds more rows' locks, in no global
order: payments' ledger postings then deadlocked against its HTTP requests'). If the
shared transaction fails, none of it was committed and the records are processed one
at a time, exactly as above.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

import shared.contracts  # noqa: F401  (registers every contract, so only truly unknown types dead-letter)
from shared import context
from shared.db import database_unavailable
from shared.envelope import REGISTRY, Contract, Envelope
from shared.kafka import dlq_topic
from shared.retry import WAIT_FOR_DATABASE, RetryPolicy
from shared.telemetry import CONSUMED, CONSUMER_LAG, DLQ_COUNT
from shared.uow import UnitOfWork

log = logging.getLogger("noria.inbox")
tracer = trace.get_tracer("noria.inbox")



class DatabaseUnreachable(Exception):
    """No transaction could be opened: the database, not the message, is at fault."""


class DeadLetterFailed(Exception):
    """A message could not be recorded or published as a dead letter; its offset must
    not be committed (the consumer reads it again)."""

    def __init__(self, msg: RawMessage, cause: BaseException) -> None:
        super().__init__(f"dead-lettering {msg.topic}[{msg.partition}]@{msg.offset} failed:"
                         f" {type(cause).__name__}: {cause}")
        self.msg = msg


def waits_for_database(exc: BaseException) -> bool:
    """The error means the database is unavailable: wait, do not count an attempt.

    Socket errors count only when no transaction could be opened: a handler's own
    ``TimeoutError`` or refused connection to a provider is the handler's failure.
    """
    return isinstance(exc, DatabaseUnreachable) or database_unavailable(exc, os_errors=False)


def handler_failure(exc: BaseException) -> bool:
    """What the bounded retries are for: every error but the database's absence.

    A cancellation is never one: the retry block sees every ``BaseException``, and a
    consumer being stopped (a replica leaving its group) must stop, not retry its
    handler and keep its partitions past the group's rebalance."""
    return isinstance(exc, Exception) and not waits_for_database(exc)

Handler = Callable[[UnitOfWork, Any, Envelope], Awaitable[None]]


@dataclass
class RawMessage:
    """What the consumer needs of a Kafka record (also rebuilt from a dead letter)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp: int | None = None


class PoisonMessage(Exception):
    """The message can never be processed as it is (malformed, unknown type)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass
class Outcome:
    status: str  # "applied" | "duplicate" | "ignored" | "dead_letter"
    error: str | None = None


class InboxConsumer:
    def __init__(
        self,
        *,
        service: str,
        group: str,
        topics: list[str],
        handlers: dict[str, Handler],
        pool: asyncpg.Pool,
        consumer_factory: Callable[[], AIOKafkaConsumer],
        dlq_producer: Callable[[], Awaitable[AIOKafkaProducer]],
        max_retries: int = 3,
        retry_backoff_s: float = 0.2,
        retry_backoff_max_s: float = 5.0,
        batch_max: int = 100,
        topic_prefix: str = "",
        linger_s: float = 0.005,
        commit_interval_s: float = 0.2,
        across_partitions: bool = False,
    ) -> None:
        unknown = [t for t in handlers if t not in REGISTRY]
        if unknown:
            raise ValueError(f"handlers for unregistered message types: {unknown}")
        self.service = service
        self.group = group
        self.topics = topics
        self.handlers = handlers
        # the ``type`` header values to skip undecoded: registered, but not handled here
        self._unhandled = frozenset(t.encode() for t in REGISTRY if t not in handlers)
        self.pool = pool
        self.consumer_factory = consumer_factory
        self.dlq_producer = dlq_producer
        self.max_retries = max(1, max_retries)
        self.retry_backoff_s = retry_backoff_s
        self.retry = RetryPolicy(attempts=self.max_retries, wait_initial_s=retry_backoff_s,
                                 wait_max_s=max(retry_backoff_max_s, retry_backoff_s))
        # how many messages of one poll may share a transaction (1: one each)
        self.batch_max = max(1, batch_max)
        # after a poll that found records, wait this long for more before processing:
        # batches form by design, not only once a backlog has (0: never wait)
        self.linger_s = max(0.0, linger_s)
        # the records of one poll share transactions across partitions (else per partition)
        self.across_partitions = across_partitions
        # offsets are committed at most this often (and whenever the consumer is idle,
        # its partitions are revoked or the loop restarts); always after the database
        # commit, so a crash redelivers at most this much, and the inbox skips it
        self.commit_interval_s = max(0.0, commit_interval_s)
        self.topic_prefix = topic_prefix
        self.consumer: AIOKafkaConsumer | None = None
        self._processed: dict[TopicPartition, int] = {}
        # The next offset to read per partition, as last committed: every record before
        # it has taken effect (or was a no-op). A fact tests and the lag gauge can wait on.
        self.committed: dict[TopicPartition, int] = {}
        # Test hook: called after the database commit, before the offset commit.
        self.before_offset_commit: Callable[[], Awaitable[None]] | None = None

    # -- processing one message -------------------------------------------------
    def skips(self, headers: Any) -> bool:
        """True when a record's ``type`` header names a message this consumer does not
        handle: it is dropped without being decoded."""
        for name, value in headers or ():
            if name == "type":
                return value in self._unhandled
        return False

    def _decode(self, msg: RawMessage) -> tuple[Envelope, Contract | None]:
        try:
            env = Envelope.from_bytes(msg.value)
        except (ValidationError, ValueError) as exc:
            raise PoisonMessage("malformed", f"not a valid envelope: {exc}") from None
        if env.type not in REGISTRY:
            raise PoisonMessage("unknown_type", f"no contract for message type {env.type!r}")
        if env.type not in self.handlers:
            return env, None
        try:
            return env, env.parse()
        except ValidationError as exc:
            raise PoisonMessage("invalid_payload", f"{env.type} payload invalid: {exc}") from None

    async def _apply(self, msg: RawMessage, env: Envelope, parsed: Contract) -> bool:
        handler = self.handlers[env.type]
        async with contextlib.AsyncExitStack() as stack:
            try:
                uow = await stack.enter_async_context(
                    UnitOfWork(self.pool, topic_prefix=self.topic_prefix))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise DatabaseUnreachable(f"{type(exc).__name__}: {exc}") from exc
            if not await uow.record_inbox(
                self.group, env.event_id, topic=msg.topic, partition=msg.partition,
                offset=msg.offset,
            ):
                return False
            await handler(uow, parsed, env)
            await uow.commit()
            return True

    def _span(self, msg: RawMessage) -> Any:
        """The processing span, a child of the producer's trace (traceparent header)."""
        carrier = {k: v.decode(errors="replace") for k, v in msg.headers}
        return tracer.start_as_current_span(
            f"{msg.topic} process", context=propagate.extract(carrier), kind=SpanKind.CONSUMER,
            attributes={"messaging.system": "kafka", "messaging.destination.name": msg.topic,
                        "messaging.kafka.partition": msg.partition,
                        "messaging.kafka.offset": msg.offset,
                        "messaging.consumer.group.name": self.group})

    # -- processing one poll's messages together ------------------------------------------
    async def process_many(self, msgs: list[RawMessage]) -> None:
        """Messages in order (each partition's in its order), applied in one transaction
        per run.

        Each keeps its own inbox row, span and causation; a message that is not
        for a handler (poison, unhandled type) goes alone through :meth:`process`.
        If the shared transaction fails for any reason, nothing of it was committed
        and its messages are processed one at a time (retries, dead letters) as if
        never batched. Offsets are committed by the caller after all of this.
        """
        run: list[tuple[RawMessage, Envelope, Contract]] = []
        for msg in msgs:
            decoded: tuple[Envelope, Contract | None] | None
            try:
                decoded = self._decode(msg)
            except PoisonMessage:
                decoded = None  # process() dead-letters it, with the reason
            if decoded is None or decoded[1] is None or len(run) >= self.batch_max:
                await self._apply_run(run)
                run = []
            if decoded is None or decoded[1] is None:
                await self.process(msg, decoded)
            else:
                run.append((msg, decoded[0], decoded[1]))
        await self._apply_run(run)

    async def _apply_run(self, run: list[tuple[RawMessage, Envelope, Contract]]) -> None:
        if len(run) <= 1:
            for msg, env, parsed in run:
                await self.process(msg, (env, parsed))
            return
        outcomes: list[str] = []
        try:
            async with UnitOfWork(self.pool, topic_prefix=self.topic_prefix) as uow:
                # every inbox row of the run in one statement; a duplicate (seen before,
                # or twice in this poll) gets no row and is skipped on its own
                fresh = await uow.record_inbox_many(self.group, [
                    (env.event_id, msg.topic, msg.partition, msg.offset)
                    for msg, env, _ in run])
                for (msg, env, parsed), new in zip(run, fresh, strict=True):
                    outcomes.append(await self._apply_in(uow, msg, env, parsed, new))
                await uow.commit()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("%d messages of %s failed together (%s: %s); one at a time", len(run),
                     run[0][0].topic, type(exc).__name__, exc)
            for msg, env, parsed in run:
                await self.process(msg, (env, parsed))
            return
        for outcome in outcomes:
            CONSUMED.labels(self.service, self.group, outcome).inc()

    async def _apply_in(self, uow: UnitOfWork, msg: RawMessage, env: Envelope,
                        parsed: Contract, new: bool) -> str:
        if not new:
            return "duplicate"
        with self._span(msg) as span:
            span.set_attribute("noria.message.type", env.type)
            corr = context.correlation_id.set(env.correlation_id)
            cause = context.causation_id.set(str(env.event_id))
            try:
                await self.handlers[env.type](uow, parsed, env)
                return "applied"
            finally:
                context.correlation_id.reset(corr)
                context.causation_id.reset(cause)

    async def process(self, msg: RawMessage,
                      decoded: tuple[Envelope, Contract | None] | None = None) -> Outcome:
        """Process one message: retries, then the dead-letter path.

        ``decoded``: the message's envelope and payload, when the caller has them.
        Waits as long as the database is unavailable. Raises only
        :class:`DeadLetterFailed` (the message could not be dead-lettered: its offset
        must not be committed) and cancellation.
        """
        if decoded is None:
            try:
                env, parsed = self._decode(msg)
            except PoisonMessage as poison:
                with self._span(msg):
                    await self.dead_letter(msg, poison.reason, str(poison))
                return Outcome("dead_letter", str(poison))
        else:
            env, parsed = decoded
        if parsed is None:
            CONSUMED.labels(self.service, self.group, "ignored").inc()
            return Outcome("ignored")
        with self._span(msg) as span:
            span.set_attribute("noria.message.type", env.type)
            corr = context.correlation_id.set(env.correlation_id)
            cause = context.causation_id.set(str(env.event_id))
            try:
                try:
                    applied = await self._apply_with_retries(msg, env, parsed)
                except Exception as exc:
                    last_error = "".join(traceback.format_exception_only(exc)).strip()
                    span.set_status(trace.StatusCode.ERROR, last_error)
                    await self.dead_letter(msg, "handler_failed", last_error,
                                           message_type=env.type)
                    return Outcome("dead_letter", last_error)
                outcome = "applied" if applied else "duplicate"
                CONSUMED.labels(self.service, self.group, outcome).inc()
                return Outcome(outcome)
            finally:
                context.correlation_id.reset(corr)
                context.causation_id.reset(cause)

    async def _apply_with_retries(self, msg: RawMessage, env: Envelope,
                                  parsed: Contract) -> bool:
        """Apply, retrying handler failures per :attr:`retry` and waiting out the database
        (which never spends an attempt); raise the last handler failure."""
        async for outage in WAIT_FOR_DATABASE.attempts_for(self._log_outage(env)):
            with outage:
                async for attempt in self.retry.attempts_for(self._log_failure(env)):
                    with attempt:
                        return await self._apply(msg, env, parsed)
        raise AssertionError("unreachable: the retry loops return or raise")

    def _log_outage(self, env: Envelope) -> Any:
        def on(exc: Exception) -> bool:
            if not isinstance(exc, Exception) or not waits_for_database(exc):
                return False
            log.warning("database unavailable while handling %s (%s: %s); waiting",
                        env.type, type(exc).__name__, exc)
            return True
        return on

    def _log_failure(self, env: Envelope) -> Any:
        attempts = 0

        def on(exc: Exception) -> bool:
            nonlocal attempts
            if not handler_failure(exc):
                return False
            attempts += 1
            log.warning("handling %s %s failed (attempt %d/%d): %s: %s", env.type,
                        env.event_id, attempts, self.max_retries, type(exc).__name__, exc)
            return True
        return on

    async def dead_letter(
        self, msg: RawMessage, reason: str, error: str, *, message_type: str | None = None
    ) -> None:
        """Record the message in ``dead_letters`` and publish it to ``<topic>.dlq``.

        Raises :class:`DeadLetterFailed` when either fails: the caller then leaves the
        offset uncommitted, so the message comes back rather than being lost.
        """
        log.error("dead-lettering %s[%d]@%d (%s): %s", msg.topic, msg.partition, msg.offset,
                  reason, error)
        try:
            await self._dead_letter(msg, reason, error, message_type)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("could not dead-letter %s[%d]@%d (%s: %s); it will be read again",
                        msg.topic, msg.partition, msg.offset, type(exc).__name__, exc)
            raise DeadLetterFailed(msg, exc) from exc
        DLQ_COUNT.labels(self.service, self.group).inc()
        CONSUMED.labels(self.service, self.group, "dead_letter").inc()

    async def _dead_letter(self, msg: RawMessage, reason: str, error: str,
                           message_type: str | None) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO dead_letters (consumer, topic, kafka_partition, kafka_offset,"
                " message_key, message_type, value, headers, reason, error)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                " ON CONFLICT (consumer, topic, kafka_partition, kafka_offset) DO NOTHING",
                self.group, msg.topic, msg.partition, msg.offset,
                msg.key.decode(errors="replace") if msg.key else None, message_type,
                msg.value, [[k, v.decode(errors="replace")] for k, v in msg.headers],
                reason, error[:4000],
            )
        headers = [h for h in msg.headers if not h[0].startswith("dlq.")] + [
            ("dlq.original.topic", msg.topic.encode()),
            ("dlq.original.partition", str(msg.partition).encode()),
            ("dlq.original.offset", str(msg.offset).encode()),
            ("dlq.original.timestamp", str(msg.timestamp or "").encode()),
            ("dlq.consumer.group", self.group.encode()),
            ("dlq.reason", reason.encode()),
            ("dlq.exception", error[:1000].encode(errors="replace")),
        ]
        if msg.key:
            headers.append(("dlq.original.key", msg.key))
        producer = await self.dlq_producer()
        await producer.send_and_wait(dlq_topic(msg.topic), value=msg.value, key=msg.key,
                                     headers=headers)

    # -- the consume loop ---------------------------------------------------------
    async def _commit(self) -> None:
        if not self._processed or self.consumer is None:
            return
        offsets = dict(self._processed)
        try:
            await self.consumer.commit(offsets)
            self.committed.update(offsets)
            for tp, off in offsets.items():
                if self._processed.get(tp) == off:
                    del self._processed[tp]
        except CommitFailedError as exc:
            # A rebalance took the partitions; the new owner re-reads and the inbox
            # turns the redelivery into a no-op.
            log.warning("offset commit failed after rebalance: %s", exc)
            self._processed.clear()

    def _record_lag(self, tp: TopicPartition) -> None:
        assert self.consumer is not None
        high = self.consumer.highwater(tp)
        if high is None:
            return
        position = self._processed.get(tp)
        if position is not None:
            CONSUMER_LAG.labels(self.service, self.group, tp.topic).set(max(high - position, 0))

    def _wanted(self, records: list[Any]) -> list[RawMessage]:
        """A partition's records of one poll, less those skipped undecoded."""
        wanted = []
        for record in records:
            if self.skips(record.headers):
                continue
            wanted.append(RawMessage(
                topic=record.topic, partition=record.partition, offset=record.offset,
                key=record.key, value=record.value, headers=list(record.headers or ()),
                timestamp=record.timestamp))
        if len(wanted) < len(records):
            CONSUMED.labels(self.service, self.group, "ignored").inc(
                len(records) - len(wanted))
        return wanted

    async def _process_poll(self, consumer: AIOKafkaConsumer,
                            batches: dict[TopicPartition, list[Any]]) -> bool:
        """Apply one poll's records (together, or per partition) and note the offsets
        to commit. True when a dead letter could not be written: the partitions applied
        before it stand, the failed message's partition is read again from it, and the
        partitions not reached yet from their first record (the inbox makes any repeat
        a no-op)."""
        polled = [(tp, records, self._wanted(records))
                  for tp, records in batches.items() if records]
        groups = [polled] if self.across_partitions else [[one] for one in polled]
        failed_at: RawMessage | None = None
        for group in groups:
            done = len(group)  # how many of the group's partitions were wholly applied
            if failed_at is None:
                try:
                    await self.process_many([m for _, _, wanted in group for m in wanted])
                except DeadLetterFailed as exc:
                    failed_at = exc.msg
                    done = next(i for i, (tp, _, _) in enumerate(group)
                                if (tp.topic, tp.partition) == (exc.msg.topic,
                                                                exc.msg.partition))
            else:
                done = 0
            for i, (tp, records, _) in enumerate(group):
                if i < done:
                    self._processed[tp] = records[-1].offset + 1
                    self._record_lag(tp)
                elif failed_at is not None and (tp.topic, tp.partition) == (
                        failed_at.topic, failed_at.partition):
                    # the failed message's partition: read again from that message
                    if failed_at.offset > records[0].offset:
                        self._processed[tp] = failed_at.offset
                    consumer.seek(tp, failed_at.offset)
                else:
                    consumer.seek(tp, records[0].offset)
        return failed_at is not None

    async def run(self) -> None:
        backoff = 0.5
        while True:
            consumer = self.consumer_factory()
            self.consumer = consumer
            try:
                consumer.subscribe(self.topics, listener=_CommitOnRevoke(self))
                await consumer.start()
                backoff = 0.5
                dlq_failures = 0
                loop = asyncio.get_running_loop()
                last_commit = loop.time()
                while True:
                    batches = await consumer.getmany(timeout_ms=500)
                    if batches and self.linger_s > 0 and sum(
                            len(r) for r in batches.values()) < self.batch_max:
                        await asyncio.sleep(self.linger_s)
                        for tp, more in (await consumer.getmany(timeout_ms=0)).items():
                            batches.setdefault(tp, []).extend(more)
                    failed = await self._process_poll(consumer, batches)
                    due = (not batches or failed
                           or loop.time() - last_commit >= self.commit_interval_s)
                    if self._processed and due:
                        if self.before_offset_commit is not None:
                            await self.before_offset_commit()
                        await self._commit()
                        last_commit = loop.time()
                    if failed:
                        dlq_failures += 1
                        await asyncio.sleep(WAIT_FOR_DATABASE.backoff_s(dlq_failures))
                    else:
                        dlq_failures = 0
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:
                log.warning("consumer %s lost Kafka (%s); restarting in %.1fs",
                            self.group, exc, backoff)
            except Exception:
                log.exception("consumer %s crashed; restarting in %.1fs", self.group, backoff)
            finally:
                self._processed.clear()
                try:
                    await consumer.stop()
                except Exception:  # noqa: S110 - stopping a broken consumer
                    pass
                self.consumer = None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: InboxConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.owner._commit()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None
