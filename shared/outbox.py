"""The outbox relay: claim, publish, then mark — never broker I/O in a transaction.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` and a lease (``claimed_until``,
``claim_token``). Claims are serialised by a transaction-level advisory lock (a
few milliseconds) and a row is only claimed when no earlier row of the same key
is held by another relay, so several relays keep per-key order. Marking is
fenced by the claim token: a relay whose lease expired cannot overwrite a row
another relay re-claimed. A LISTEN connection wakes the relay early; it polls
anyway.

One cycle is one round trip: the function ``outbox_relay_step`` (platform
migration 0002) marks what the previous cycle published and claims the next
batch in one implicit transaction. The batch is sent to the producer at once
and its acks awaited together; the rows are marked only after every ack, by
the next cycle (``relay_once`` marks before it returns). After a wake-up the
relay lingers ``linger_s`` (a few milliseconds) so that the events of commits
close together leave in one batch.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from shared.db import listen
from shared.telemetry import OUTBOX_BACKLOG, OUTBOX_PUBLISHED

log = logging.getLogger("noria.outbox")

CLAIM_SQL = """
WITH candidates AS (
    SELECT o.id FROM outbox o
    WHERE o.published_at IS NULL
      AND (o.claimed_until IS NULL OR o.claimed_until < now())
      AND NOT EXISTS (
          SELECT 1 FROM outbox p
          WHERE p.published_at IS NULL AND p.topic = o.topic
            AND p.message_key = o.message_key AND p.id < o.id
            AND p.claimed_until >= now())
    ORDER BY o.id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE outbox o
   SET claimed_until = now() + make_interval(secs => $2), claim_token = $1,
       attempts = o.attempts + 1
  FROM candidates c
 WHERE o.id = c.id
RETURNING o.id, o.topic, o.message_key, o.type, o.envelope, o.traceparent
"""

MARK_SQL = """
UPDATE outbox SET published_at = now(), claimed_until = NULL
 WHERE id = ANY($1::bigint[]) AND claim_token = $2 AND published_at IS NULL
"""

RELEASE_SQL = (
    "UPDATE outbox SET claimed_until = NULL WHERE claim_token = $1 AND published_at IS NULL")

STEP_SQL = "SELECT * FROM outbox_relay_step($1::bigint[], $2::uuid, $3::uuid, $4, $5, $6)"

PRUNE_SQL = """
DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox WHERE published_at < now() - make_interval(secs => $1) LIMIT 5000)
"""


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        producer_factory: Callable[[], AIOKafkaProducer],
        *,
        service: str,
        schema: str,
        batch_size: int = 200,
        lease_s: float = 30.0,
        poll_interval_s: float = 0.5,
        duplicate: bool = False,
        keep_published_s: float = 3600.0,
        linger_s: float = 0.0,
    ) -> None:
        self.pool = pool
        self.producer_factory = producer_factory
        self.producer: AIOKafkaProducer | None = None
        self.service = service
        self.schema = schema
        self.batch_size = batch_size
        self.lease_s = lease_s
        self.poll_interval_s = poll_interval_s
        self.duplicate = duplicate
        self.keep_published_s = keep_published_s
        # after a wake-up, wait this long so that close commits leave in one batch
        self.linger_s = max(0.0, linger_s)
        self.wakeup = asyncio.Event()
        self.lock_key = f"noria.outbox.claim.{schema}"
        # Test hook: called after publishing and before marking (to simulate a crash).
        self.after_publish: Callable[[list[int]], Awaitable[None]] | None = None
        # published (every ack received) but not yet marked: (ids, claim token)
        self._unmarked: tuple[list[int], uuid.UUID] | None = None
        # the schema predates migration 0002: claim and mark in two transactions
        self._legacy = False

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self.producer is None:
            producer = self.producer_factory()
            try:
                await producer.start()
            except Exception:
                await producer.stop()
                raise
            self.producer = producer
        return self.producer

    async def claim(self, token: uuid.UUID) -> list[asyncpg.Record]:
        """Claim a batch (the two-transaction path, for a schema without migration 0002)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.lock_key)
            return list(await conn.fetch(CLAIM_SQL, token, self.lease_s, self.batch_size))

    async def _step(self, token: uuid.UUID, limit: int) -> list[asyncpg.Record]:
        """Mark the published batch (if any) and claim up to ``limit`` rows, in one go."""
        mark_ids, mark_token = self._unmarked or ([], None)
        if not self._legacy:
            try:
                async with self.pool.acquire() as conn:
                    rows = list(await conn.fetch(STEP_SQL, mark_ids, mark_token, token,
                                                 self.lease_s, limit, self.lock_key))
            except asyncpg.UndefinedFunctionError:
                log.warning("outbox_relay_step() is missing in schema %s (platform migration"
                            " 0002 not applied): claiming and marking separately", self.schema)
                self._legacy = True
            else:
                self._marked(mark_ids)
                return rows
        if mark_ids:
            async with self.pool.acquire() as conn:
                await conn.execute(MARK_SQL, mark_ids, mark_token)
            self._marked(mark_ids)
        return await self.claim(token) if limit > 0 else []

    def _marked(self, ids: list[int]) -> None:
        self._unmarked = None
        if ids:
            OUTBOX_PUBLISHED.labels(self.service).inc(len(ids))

    async def _cycle(self) -> int:
        """Mark the previous batch, claim the next and publish it (left unmarked)."""
        producer = await self._ensure_producer()
        token = uuid.uuid4()
        rows = await self._step(token, self.batch_size)
        if not rows:
            return 0
        try:
            copies = 2 if self.duplicate else 1
            futures = []
            for row in rows:
                value = _envelope_bytes(row["envelope"])
                headers = [("type", row["type"].encode())]
                if row["traceparent"]:
                    headers.append(("traceparent", row["traceparent"].encode()))
                key = row["message_key"].encode()
                for _ in range(copies):
                    futures.append(await producer.send(
                        row["topic"], value=value, key=key, headers=headers))
            await asyncio.gather(*futures)
        except BaseException:
            async with self.pool.acquire() as conn:
                await conn.execute(RELEASE_SQL, token)
            raise
        ids = [row["id"] for row in rows]
        if self.after_publish is not None:
            await self.after_publish(ids)
        self._unmarked = (ids, token)
        return len(ids)

    async def flush_marks(self) -> None:
        """Mark the batch published by the last cycle, if it is not marked yet."""
        if self._unmarked is not None:
            await self._step(uuid.uuid4(), 0)

    async def relay_once(self) -> int:
        """Publish one batch and mark it; return how many rows were published."""
        published = await self._cycle()
        await self.flush_marks()
        return published

    async def backlog(self) -> int:
        async with self.pool.acquire() as conn:
            n: int = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        OUTBOX_BACKLOG.labels(self.service).set(n)
        return n

    async def run(self) -> None:
        backoff = 0.5
        last_housekeeping = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                # marks the previous batch; when nothing is claimed, nothing is left unmarked
                published = await self._cycle()
                backoff = 0.5
                if loop.time() - last_housekeeping > 10:
                    last_housekeeping = loop.time()
                    await self.backlog()
                    async with self.pool.acquire() as conn:
                        await conn.execute(PRUNE_SQL, self.keep_published_s)
                if published:
                    continue
                self.wakeup.clear()
                try:
                    await asyncio.wait_for(self.wakeup.wait(), self.poll_interval_s)
                except TimeoutError:
                    pass
                else:
                    if self.linger_s > 0:
                        await asyncio.sleep(self.linger_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay error (%s: %s); retrying in %.1fs",
                            type(exc).__name__, exc, backoff)
                if self.producer is not None:
                    try:
                        await self.producer.stop()
                    except Exception:  # noqa: S110 - already failing; a fresh producer follows
                        pass
                    self.producer = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def stop(self) -> None:
        try:
            await self.flush_marks()
        except Exception as exc:  # unmarked rows are re-published after their lease
            log.info("could not mark the last published batch (%s)", exc)
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None


def _envelope_bytes(envelope: object) -> bytes:
    """The stored envelope as sent: its JSON text as is (a decoded one is re-encoded)."""
    if isinstance(envelope, str):
        return envelope.encode()
    return orjson.dumps(envelope)


async def listen_for_outbox(dsn: str, schema: str, wakeup: asyncio.Event) -> None:
    """Wake the relay on every outbox commit (``NOTIFY <schema>_outbox``). Only a hint."""
    await listen(dsn, schema, f"{schema}_outbox", wakeup)
