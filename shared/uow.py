"""The unit of work: one PostgreSQL transaction, and the outbox rows it writes.

``async with uow:`` opens the transaction; ``uow.emit(...)`` queues messages;
``await uow.commit()`` writes them to the outbox and commits, in one
transaction. Leaving the block without committing rolls everything back, so a
failed request publishes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import Any

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


class UnitOfWork:
    def __init__(self, pool: asyncpg.Pool, *, topic_prefix: str = "") -> None:
        self._pool = pool
        self.topic_prefix = topic_prefix
        self._conn: PoolConnectionProxy[asyncpg.Record] | None = None
        self._tx: Any = None
        self._pending: list[tuple[str, Envelope]] = []
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
        """Write the queued messages: one statement (so one NOTIFY), ids in emit order."""
        if not self._pending:
            return
        pending = self._pending
        await self.conn.execute(
            OUTBOX_INSERT_SQL,
            [env.event_id for _, env in pending], [topic for topic, _ in pending],
            [env.aggregate_id for _, env in pending], [env.type for _, env in pending],
            [orjson.dumps(env.model_dump(mode="json")).decode() for _, env in pending],
            [env.traceparent for _, env in pending],
        )
        self._pending = []

    async def commit(self) -> None:
        await record_in_transaction(self.conn)  # who asked for this write (shared.audit)
        await self.flush_outbox()
        await self._tx.commit()
        self.committed = True
