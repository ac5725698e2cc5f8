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

Publishing right after commit (the hand-over): a unit of work over a pool the
relay is attached to (``shared.uow.attach_publisher``) inserts its rows already
claimed by the relay's hand-off token for a short lease (``handoff_lease_s``),
without NOTIFY, and hands them to :meth:`OutboxRelay.hand_over` after its
commit. A second loop of the relay publishes them as they were handed over, in
batches of whatever has been handed over meanwhile, each in three steps:

1. one statement (``HANDOFF_STEP_SQL``) marks the previous hand-over batch
   (fenced by the token) and checks the new one: a row is published here only
   while it is still claimed by this process's token, and only if no earlier
   unpublished row of its key exists outside the batch (a row another replica
   committed before, or one left to the claim path). Such a row is released
   (``claimed_until = NULL``) and left to the ordered claim below, which will
   not take it before the earlier row is published; the rows it keeps get the
   relay's full lease for the publish;
2. the rows are sent in id order and their acks awaited together;
3. they are marked by the next step, or alone when nothing else was handed
   over within ``handoff_mark_delay_s`` (20 ms). A marking that leaves a later
   row of the same key waiting unclaimed sends the NOTIFY (the relays of every
   replica wake for it).

The claim-and-lease relay stays for everything else: rows committed by a unit
of work that is not attached, rows of a process that died between its commit
and its publish (their short lease runs out), rows released by the check, and
a hand-over batch that failed to publish (released at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from shared.db import listen
from shared.telemetry import OUTBOX_BACKLOG, OUTBOX_PUBLISHED
from shared.uow import CommittedEvent

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

# One statement per hand-over batch: $1 the ids to mark (published by the previous batch)
# with $7/$8 their topics and keys, $2 the hand-off token, $3 the new batch, $4 the lease
# for its publish, $5/$6 the topics and keys of both batches. Every unpublished row of
# those keys is read once by the key index (``keyed``: a handful of rows, whatever the
# table's statistics say; the other steps only join these small sets, and the updates go
# by primary key). Every CTE reads one snapshot: the rows $1 marks still look unpublished,
# hence their exclusion (Kafka has acknowledged them). A row of the batch that is no
# longer ours (its lease ran out, another relay may hold it) blocks the later rows of its
# key like any other row. ``waiting`` is read by the final SELECT so that it runs.
HANDOFF_STEP_SQL = """
WITH marked AS (
    UPDATE outbox SET published_at = now(), claimed_until = NULL
     WHERE id = ANY($1::bigint[]) AND claim_token = $2
    RETURNING id
), keyed AS MATERIALIZED (
    SELECT p.id, p.topic, p.message_key, p.claim_token, p.claimed_until FROM outbox p
     WHERE p.topic = ANY($5::text[]) AND p.message_key = ANY($6::text[])
       AND p.published_at IS NULL
), ours AS MATERIALIZED (
    SELECT k.id, k.topic, k.message_key FROM keyed k
     WHERE k.id = ANY($3::bigint[]) AND k.claim_token = $2 AND k.claimed_until > now()
), first_foreign AS MATERIALIZED (
    SELECT p.topic, p.message_key, min(p.id) AS id FROM keyed p
     WHERE NOT (p.id = ANY($1::bigint[])) AND NOT (p.id = ANY(ARRAY(SELECT id FROM ours)))
     GROUP BY p.topic, p.message_key
), blocked AS MATERIALIZED (
    SELECT o.id FROM ours o JOIN first_foreign f
      ON f.topic = o.topic AND f.message_key = o.message_key AND f.id < o.id
), waiting AS (
    SELECT pg_notify(current_schema() || '_outbox', '') WHERE EXISTS (
        SELECT 1 FROM keyed p
          JOIN unnest($1::bigint[], $7::text[], $8::text[]) AS m(id, topic, message_key)
            ON p.topic = m.topic AND p.message_key = m.message_key AND p.id > m.id
         WHERE NOT (p.id = ANY($1::bigint[])) AND NOT (p.id = ANY($3::bigint[]))
           AND (p.claimed_until IS NULL OR p.claimed_until < now()))
), decided AS (
    UPDATE outbox o
       SET claimed_until = CASE WHEN b.id IS NULL
                                THEN now() + make_interval(secs => $4) END
      FROM ours x LEFT JOIN blocked b ON b.id = x.id
     WHERE o.id = x.id AND o.claim_token = $2
    RETURNING o.id, b.id IS NULL AS free
)
SELECT ARRAY(SELECT d.id FROM decided d WHERE d.free ORDER BY d.id) AS free,
       (SELECT count(*) FROM marked) AS marked, (SELECT count(*) FROM waiting) AS woken
"""

HANDOFF_RELEASE_SQL = """
UPDATE outbox SET claimed_until = NULL
 WHERE id = ANY($1::bigint[]) AND claim_token = $2 AND published_at IS NULL
"""

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
        handoff_lease_s: float = 5.0,
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
        # The hand-over (publishing right after commit). Rows handed over are claimed by
        # this token until the short lease, so a process that dies leaves them soon.
        self.handoff_token = uuid.uuid4()
        self.handoff_lease_s = min(handoff_lease_s, lease_s)
        self._handed: list[CommittedEvent] = []
        self._handed_ready = asyncio.Event()
        self._handed_unmarked: list[CommittedEvent] = []  # published, not yet marked
        self._handoff_task: asyncio.Task[None] | None = None
        self._handoff_producer: AIOKafkaProducer | None = None
        self._handoff_paused_until = 0.0
        # a published hand-over batch waits this long for the next one to be marked with
        # its check (one statement instead of two), then is marked alone
        self.handoff_mark_delay_s = 0.02
        # Test and benchmark hooks: before a hand-over batch is published (its ids),
        # and when its acks are in (the events).
        self.before_handoff_publish: Callable[[list[int]], Awaitable[None]] | None = None
        self.on_handoff_acked: Callable[[list[CommittedEvent]], None] | None = None

    async def _started_producer(self) -> AIOKafkaProducer:
        """A new producer from the factory, started (stopped again if it cannot start)."""
        producer = self.producer_factory()
        try:
            await producer.start()
        except Exception:
            await producer.stop()
            raise
        return producer

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self.producer is None:
            self.producer = await self._started_producer()
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

    # --- the hand-over: publishing right after commit ---------------------------------

    @property
    def accepting(self) -> bool:
        """Units of work hand their rows over while the hand-over loop runs and has not
        just failed (then they fall back to NOTIFY and the claim for a while)."""
        task = self._handoff_task
        return (task is not None and not task.done()
                and asyncio.get_running_loop().time() >= self._handoff_paused_until)

    def hand_over(self, events: list[CommittedEvent]) -> None:
        """Committed rows, claimed by :attr:`handoff_token`, to publish now."""
        self._handed.extend(events)
        self._handed_ready.set()

    async def _ensure_handoff_producer(self) -> AIOKafkaProducer:
        """The hand-over's own producer: a failure of either loop never stops the other's
        sends (per-key order between them is kept by the outbox, not by the producer)."""
        if self._handoff_producer is None:
            self._handoff_producer = await self._started_producer()
        return self._handoff_producer

    async def _drop_handoff_producer(self) -> None:
        producer, self._handoff_producer = self._handoff_producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def _handoff_step(self, batch: list[CommittedEvent]) -> list[int]:
        """Mark the previous hand-over batch and check ``batch``: the ids to publish."""
        marks = self._handed_unmarked
        both = marks + batch
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                HANDOFF_STEP_SQL, [e.id for e in marks], self.handoff_token,
                [e.id for e in batch], self.lease_s, sorted({e.topic for e in both}),
                sorted({e.key for e in both}), [e.topic for e in marks],
                [e.key for e in marks])
        self._handed_unmarked = []
        if marks:
            OUTBOX_PUBLISHED.labels(self.service).inc(len(marks))
        assert row is not None
        return list(row["free"])

    async def _publish_handed(self, batch: list[CommittedEvent]) -> int:
        batch.sort(key=lambda e: e.id)
        free = set(await self._handoff_step(batch))
        if len(free) < len(batch):
            self.wakeup.set()  # what was released goes through the ordered claim
        events = [e for e in batch if e.id in free]
        if not events:
            return 0
        ids = [e.id for e in events]
        try:
            if self.before_handoff_publish is not None:
                await self.before_handoff_publish(ids)
            producer = await self._ensure_handoff_producer()
            copies = 2 if self.duplicate else 1
            futures = []
            for e in events:
                headers = [("type", e.type.encode())]
                if e.traceparent:
                    headers.append(("traceparent", e.traceparent.encode()))
                key = e.key.encode()
                for _ in range(copies):
                    futures.append(await producer.send(
                        e.topic, value=e.envelope, key=key, headers=headers))
            await asyncio.gather(*futures)
        except BaseException:
            with contextlib.suppress(Exception):
                async with self.pool.acquire() as conn:
                    await conn.execute(HANDOFF_RELEASE_SQL, ids, self.handoff_token)
            self.wakeup.set()
            raise
        if self.on_handoff_acked is not None:
            self.on_handoff_acked(events)
        if self.after_publish is not None:
            await self.after_publish(ids)
        self._handed_unmarked = events
        return len(ids)

    async def run_handoff(self) -> None:
        """Publish what units of work hand over, until cancelled."""
        loop = asyncio.get_running_loop()
        backoff = 0.5
        while True:
            try:
                if not self._handed:
                    self._handed_ready.clear()
                    if self._handed_unmarked:
                        # the marking rides on the next check if more comes soon
                        try:
                            await asyncio.wait_for(self._handed_ready.wait(),
                                                   self.handoff_mark_delay_s)
                        except TimeoutError:
                            await self._handoff_step([])
                    else:
                        await self._handed_ready.wait()
                    continue
                batch = self._handed[:self.batch_size]
                del self._handed[:len(batch)]
                try:
                    await self._publish_handed(batch)
                except Exception:
                    self._handed[:0] = batch  # released below with the rest
                    raise
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox hand-over error (%s: %s); the relay's claim takes over"
                            " for %.1fs", type(exc).__name__, exc, backoff)
                self._handoff_paused_until = loop.time() + backoff
                await self._release_handed()
                await self._drop_handoff_producer()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _release_handed(self) -> None:
        """Leave every row handed over and not yet published to the claim path."""
        events, self._handed = self._handed, []
        if events:
            with contextlib.suppress(Exception):
                async with self.pool.acquire() as conn:
                    await conn.execute(HANDOFF_RELEASE_SQL, [e.id for e in events],
                                       self.handoff_token)
            self.wakeup.set()

    async def backlog(self) -> int:
        async with self.pool.acquire() as conn:
            n: int = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        OUTBOX_BACKLOG.labels(self.service).set(n)
        return n

    def start_handoff(self) -> asyncio.Task[None]:
        """Start the hand-over loop (the service runtime does, with :meth:`run`)."""
        if self._handoff_task is None or self._handoff_task.done():
            self._handoff_task = asyncio.create_task(self.run_handoff(), name="outbox-handoff")
        return self._handoff_task

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
        task, self._handoff_task = self._handoff_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        try:
            await self.flush_marks()
            if self._handed_unmarked:
                await self._handoff_step([])
        except Exception as exc:  # unmarked rows are re-published after their lease
            log.info("could not mark the last published batch (%s)", exc)
        await self._release_handed()
        await self._drop_handoff_producer()
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
