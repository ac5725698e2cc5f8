"""The unit of work: one PostgreSQL transaction, and the outbox rows it writes.

``async with uow:`` opens the transaction; ``uow.emit(...)`` queues messages;
``await uow.commit()`` writes them to the outbox and commits, in one
transaction. Leaving the block without committing rolls everything back, so a
failed request publishes nothing.

Publishing right after commit: when the process's relay is attached to the
unit of work's pool (:func:`attach_publisher`, done by the service runtime) and
is running, the outbox rows are inserted already claimed by that relay for a
short lease (``claim_token`` = the relay's hand-off token), the INSERT turns
the outbox's NOTIFY off for the transaction, and after the commit the rows are
handed to the relay, which publishes them without reading them back
(:meth:`shared.outbox.OutboxRelay.hand_over`). The rows are in the outbox
either way: if the process dies before publishing them, their lease runs out
and any replica's relay publishes them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy
from opentelemetry import propagate

from shared import context
from shared.audit import record_in_transaction
from shared.envelope import Contract, Envelope, envelope_for

# One multi-row INSERT per transaction: the statement-level trigger sends one NOTIFY,
# and the rows take their ids (the relay's order) in the order they were emitted.
OUTBOX_INSERT_SQL = (
    "INSERT INTO outbox (event_id, topic, message_key, type, envelope, traceparent)"
    " SELECT e, t, k, y, v::jsonb, p FROM unnest($1::uuid[], $2::text[], $3::text[],"
    " $4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS u(e, t, k, y, v, p, n)"
    " ORDER BY n"
)

# The same, for rows the committing process publishes itself: inserted claimed by its
# relay's hand-off token for a short lease (counted from the insert's clock, not from the
# transaction's start), with the transaction's NOTIFY turned off (platform migration 0004);
# the ids come back for the hand-over.
OUTBOX_INSERT_CLAIMED_SQL = (
    "INSERT INTO outbox (event_id, topic, message_key, type, envelope, traceparent,"
    " claimed_until, claim_token)"
    " SELECT e, t, k, y, v::jsonb, p, clock_timestamp() + make_interval(secs => $7), $8"
    " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])"
    " WITH ORDINALITY AS u(e, t, k, y, v, p, n),"
    " (SELECT set_config('noria.outbox_notify', 'off', true)) AS quiet(q)"
    " ORDER BY n RETURNING id, event_id"
)

# Several inbox rows at once; the conflict check skips each event already recorded, and a
# repeated event_id within the arrays is inserted once (the first copy).
INBOX_INSERT_MANY_SQL = (
    "INSERT INTO inbox (consumer, event_id, topic, kafka_partition, kafka_offset)"
    " SELECT $1, e, t, p, o FROM unnest($2::uuid[], $3::text[], $4::int[], $5::bigint[])"
    " WITH ORDINALITY AS u(e, t, p, o, n) ORDER BY n"
    " ON CONFLICT DO NOTHING RETURNING event_id"
)


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


@dataclass(slots=True)
class CommittedEvent:
    """An outbox row its committing process publishes: what the relay sends, as stored."""

    id: int
    topic: str
    key: str
    type: str
    envelope: bytes
    traceparent: str | None
    committed_at: float = 0.0  # time.monotonic() at the commit (latency figures)


class Publisher(Protocol):
    """The process's relay, seen from the unit of work."""

    @property
    def handoff_token(self) -> uuid.UUID: ...

    @property
    def handoff_lease_s(self) -> float: ...

    @property
    def accepting(self) -> bool:
        """True while it publishes what is handed over (its loop runs, Kafka answers)."""
        ...

    def hand_over(self, events: list[CommittedEvent]) -> None:
        """Take committed rows to publish; never blocks, never raises."""
        ...


# (asyncpg's Pool takes no weak reference: a pool stays referenced until it is detached)
_PUBLISHERS: dict[asyncpg.Pool, Publisher] = {}


def attach_publisher(pool: asyncpg.Pool, publisher: Publisher) -> None:
    """Units of work over ``pool`` hand their committed rows to ``publisher``."""
    _PUBLISHERS[pool] = publisher


def detach_publisher(pool: asyncpg.Pool, publisher: Publisher | None = None) -> None:
    """Units of work over ``pool`` go back to NOTIFY and the relay's claim (only if
    ``publisher`` is the one attached, when given)."""
    if publisher is None or _PUBLISHERS.get(pool) is publisher:
        _PUBLISHERS.pop(pool, None)


class UnitOfWork:
    def __init__(self, pool: asyncpg.Pool, *, topic_prefix: str = "") -> None:
        self._pool = pool
        self.topic_prefix = topic_prefix
        self._conn: PoolConnectionProxy[asyncpg.Record] | None = None
        self._tx: Any = None
        self._pending: list[tuple[str, Envelope]] = []
        self._handed: list[CommittedEvent] = []
        self._publisher: Publisher | None = None
        self.committed = False

    @property
    def conn(self) -> PoolConnectionProxy[asyncpg.Record]:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open: use `async with uow:`")
        return self._conn

    async def __aenter__(self) -> UnitOfWork:
        conn = await self._pool.acquire()
        try:
            tx = conn.transaction()
            await tx.start()
        except BaseException:
            await self._pool.release(conn)
            raise
        self._conn = conn
        self._tx = tx
        self._pending = []
        self._handed = []
        self._publisher = None
        self.committed = False
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self.committed and self._tx is not None:
                await self._tx.rollback()
        finally:
            if self._conn is not None:
                await self._pool.release(self._conn)
            self._conn = None
            self._tx = None
            self._pending = []
            self._handed = []

    def emit(
        self, message: Contract, *, key: str, topic: str | None = None,
        correlation_id: str | None = None,
    ) -> Envelope:
        """Queue ``message`` for the outbox, keyed by its aggregate id, on its contract's
        topic under the service's prefix (``topic`` names another, already prefixed)."""
        env = envelope_for(
            message,
            aggregate_id=key,
            correlation_id=correlation_id or context.correlation_id.get(),
            causation_id=context.causation_id.get(),
            traceparent=current_traceparent(),
        )
        self._pending.append((topic or f"{self.topic_prefix}{message.topic}", env))
        return env

    async def record_inbox(
        self, consumer: str, event_id: uuid.UUID, *, topic: str | None = None,
        partition: int | None = None, offset: int | None = None,
    ) -> bool:
        """Record that ``consumer`` handled ``event_id``; False if it already had."""
        row = await self.conn.fetchval(
            "INSERT INTO inbox (consumer, event_id, topic, kafka_partition, kafka_offset)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1",
            consumer, event_id, topic, partition, offset,
        )
        return row is not None

    async def record_inbox_many(
        self, consumer: str, events: Sequence[tuple[uuid.UUID, str | None, int | None, int | None]],
    ) -> list[bool]:
        """:meth:`record_inbox` for several events (event_id, topic, partition, offset) in
        one statement; for each, in order, False if it was handled before or is a repeat
        of an earlier one in ``events``."""
        if not events:
            return []
        rows = await self.conn.fetch(
            INBOX_INSERT_MANY_SQL, consumer, [e[0] for e in events], [e[1] for e in events],
            [e[2] for e in events], [e[3] for e in events])
        inserted = {r["event_id"] for r in rows}
        out: list[bool] = []
        for event_id, *_ in events:
            out.append(event_id in inserted)
            inserted.discard(event_id)  # a second copy in the same run is a duplicate
        return out

    async def flush_outbox(self) -> None:
        """Write the queued messages: one statement (so at most one NOTIFY), ids in emit
        order. Claimed by the process's relay, without NOTIFY, when it publishes them."""
        if not self._pending:
            return
        pending = self._pending
        raw = [orjson.dumps(env.model_dump(mode="json")) for _, env in pending]
        envelopes = [text.decode() for text in raw]
        args = (
            [env.event_id for _, env in pending], [topic for topic, _ in pending],
            [env.aggregate_id for _, env in pending], [env.type for _, env in pending],
            envelopes, [env.traceparent for _, env in pending],
        )
        publisher = self._publisher or _PUBLISHERS.get(self._pool)
        if publisher is None or not publisher.accepting:
            await self.conn.execute(OUTBOX_INSERT_SQL, *args)
            self._pending = []
            return
        rows = await self.conn.fetch(OUTBOX_INSERT_CLAIMED_SQL, *args,
                                     publisher.handoff_lease_s, publisher.handoff_token)
        ids = {r["event_id"]: r["id"] for r in rows}
        self._publisher = publisher
        self._handed.extend(
            CommittedEvent(ids[env.event_id], topic, env.aggregate_id, env.type, value,
                           env.traceparent)
            for (topic, env), value in zip(pending, raw, strict=True))
        self._pending = []

    async def commit(self) -> None:
        await record_in_transaction(self.conn)  # who asked for this write (shared.audit)
        await self.flush_outbox()
        await self._tx.commit()
        self.committed = True
        if self._handed and self._publisher is not None:
            handed, self._handed = self._handed, []
            now = time.monotonic()
            for event in handed:
                event.committed_at = now
            self._publisher.hand_over(handed)
