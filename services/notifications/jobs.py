"""Background jobs: the sending worker, its wake-up, and the sweep of held triggers.

The sending worker claims due messages and sends them outside any transaction.

Each round claims queued messages whose time has come (``FOR UPDATE SKIP
LOCKED`` with a lease, so several replicas share the work), then for each one
tries the providers in order: a provider that errors, is slow or throttles
hands over to the next (failover); a permanent refusal ends the message at
once. When every provider failed temporarily the message waits (exponential
backoff, longer when throttled) until its attempts run out. Every try is
recorded in ``attempts``, and every try of one message gives the providers the same
reference (the message's id), so a provider that did receive an earlier try can
de-duplicate.

Delivery receipts and replies reach the worker through a bounded queue
(``providers/inbound.py``): an SMPP session acknowledges them at once and never
waits for PostgreSQL, so a slow database cannot hold back a ``submit_sm_resp`` (a
timed-out submission is tried again: the same SMS twice). The worker stores what is
queued in batches, retrying while the database is unavailable, then applies the
receipts in batches too.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import asyncpg
import stamina

from services.notifications.domain.encoding import EncodedText, Encoding, split_parts
from services.notifications.domain.messages import FailureKind, Receipt, suppression_reason
from services.notifications.handlers.held import expire_held
from services.notifications.handlers.opt_outs import record_reply
from services.notifications.handlers.policies import POLICIES, Policies
from services.notifications.handlers.receipts import apply_receipts, record_receipt
from services.notifications.metrics import (
    SMS_ATTEMPTS,
    SMS_FINISHED,
    SMS_SEGMENTS,
    SMS_SUBMITTED,
)
from services.notifications.providers.base import Provider, ProviderError
from services.notifications.providers.http_aggregator import HttpAggregatorProvider
from services.notifications.providers.inbound import Inbound, InboundQueue, Reply
from services.notifications.providers.smpp_client import SmppProvider
from services.notifications.repository import messages as messages_repo
from services.notifications.repository import receipts as receipts_repo
from services.notifications.settings import NotificationsSettings
from shared.app import Runtime
from shared.contracts.notifications import SmsFailed, SmsSubmitted
from shared.db import listen
from shared.uow import UnitOfWork

log = logging.getLogger("noria.notifications.sender")

# What the composition root puts in ``Runtime.state`` for these jobs (and POLICIES).
QUEUED = "queued"  # an asyncio.Event set when a queued message is committed
SENDER = "sender"

# Receipts are acknowledged at once, stored in batches from the inbound queue, and applied
# in one transaction per batch, by one task per process, this long after the first
# receipt of the batch arrived.
RECEIPT_LINGER_S = 0.05
RECEIPT_BATCH = 200  # receipts_repo.pending_receipts' default limit
STORE_BATCH = 500  # inbound items written per transaction
FLUSH_ON_STOP_S = 5.0  # how long an orderly stop waits for queued receipts to be written


@dataclass
class Outcome:
    provider: str | None
    part_ids: list[str]
    failure: FailureKind | None
    detail: str
    started: dt.datetime | None = None  # of the successful try (recorded with the result)


class Sender:
    def __init__(self, pool: asyncpg.Pool, policies: Policies, settings: NotificationsSettings,
                 wakeup: asyncio.Event | None = None) -> None:
        self.pool = pool
        self.policies = policies
        self.settings = settings
        # set when a queued message is committed (listen_for_queued), so sending need not
        # wait for the next poll
        self.wakeup = wakeup or asyncio.Event()
        self.providers: list[Provider] = []
        self.inbound = InboundQueue(settings.inbound_queue_size)
        # set while run() is running: receipts are then applied in batches by _applier
        self._apply_wanted: asyncio.Event | None = None

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.pool, topic_prefix=self.settings.topic_prefix)

    def build_providers(self) -> list[Provider]:
        built: list[Provider] = []
        for cfg in self.settings.providers:
            if cfg.kind == "smpp":
                built.append(SmppProvider(
                    cfg.name, cfg.host, cfg.port, system_id=cfg.system_id,
                    password=cfg.password, source_addr=cfg.source_addr,
                    timeout_s=cfg.timeout_s, enquire_link_s=cfg.enquire_link_s,
                    inbound=self.inbound))
            else:
                built.append(HttpAggregatorProvider(cfg.name, cfg.url, api_key=cfg.api_key,
                                                    timeout_s=cfg.timeout_s))
        return built

    # -- what the providers heard (receipts, replies) ----------------------------------
    async def store_inbound(self, batch: list[Inbound]) -> None:
        """Store a batch from the inbound queue: receipts in one statement, each reply in
        its own transaction. Retried (capped backoff) until the database takes it."""
        receipts = [(provider, item) for provider, item in batch if isinstance(item, Receipt)]
        replies = [(provider, item) for provider, item in batch if isinstance(item, Reply)]
        async for attempt in stamina.retry_context(on=Exception, attempts=None, timeout=None,
                                                   wait_initial=0.2, wait_max=5.0):
            with attempt:
                if receipts:
                    async with self.pool.acquire() as conn:
                        await receipts_repo.store_receipts(conn, [
                            (provider, r.provider_message_id, r.stat, r.error)
                            for provider, r in receipts])
                    receipts = []
                while replies:  # one by one: a reply stored is not stored again
                    await self.on_reply(*replies[0])
                    replies.pop(0)
        await self.request_apply()

    async def on_reply(self, provider: str, reply: Reply) -> None:
        uow = self.uow()
        async with uow:
            stop = await record_reply(uow, provider, reply.phone, reply.text)
            await uow.commit()
        log.info("reply from %s via %s%s", reply.phone, provider,
                 " (STOP: opted out)" if stop else "")

    async def _storer(self) -> None:
        """Drain the inbound queue into the database, a batch at a time."""
        while True:
            batch = await self.inbound.take(STORE_BATCH)
            try:
                await self.store_inbound(batch)
            finally:
                self.inbound.done(batch)

    async def apply_receipts(self) -> int:
        uow = self.uow()
        async with uow:
            applied = await apply_receipts(uow, self.policies)
            await uow.commit()
        return applied

    async def request_apply(self) -> None:
        """Have the stored receipts applied: by the batching task, or now without one."""
        if self._apply_wanted is None:
            await self.apply_receipts()
        else:
            self._apply_wanted.set()

    async def _applier(self, wanted: asyncio.Event) -> None:
        """Apply receipts in batches; a receipt stored meanwhile waits for the next round."""
        while True:
            await wanted.wait()
            await asyncio.sleep(RECEIPT_LINGER_S)
            wanted.clear()
            try:
                while await self.apply_receipts() >= RECEIPT_BATCH:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the receipts stay stored; the next round retries
                log.warning("applying receipts failed (%s: %s); retrying", type(exc).__name__,
                            exc)
                await asyncio.sleep(1.0)
                wanted.set()

    # -- sending ----------------------------------------------------------------------
    async def try_providers(self, phone: str, message: EncodedText, reference: str,
                            message_id: uuid.UUID, attempt: int) -> Outcome:
        failures: list[tuple[FailureKind, str]] = []
        for provider in self.providers:
            started = self.policies.clock()
            try:
                ids = await asyncio.wait_for(
                    provider.submit(phone, message, reference),
                    provider.timeout_s * max(len(message.parts), 1) + 1)
                # the successful try is recorded with the result, in send_one's transaction
                return Outcome(provider.name, ids, None, "", started)
            except TimeoutError:
                kind: FailureKind = "temporary"
                detail = f"{provider.name} too slow"
            except ProviderError as exc:
                kind, detail = exc.kind, exc.detail
            except Exception as exc:  # a provider bug must not stop the worker
                log.exception("provider %s failed unexpectedly", provider.name)
                kind, detail = "temporary", f"{type(exc).__name__}: {exc}"
            await self._attempt(message_id, attempt, provider.name, kind, detail, started)
            failures.append((kind, f"{provider.name}: {detail}"))
            if kind == "permanent":
                return Outcome(provider.name, [], "permanent", detail)
        if not failures:
            return Outcome(None, [], "temporary", "no provider is configured")
        kind = "throttled" if any(k == "throttled" for k, _ in failures) else "temporary"
        return Outcome(None, [], kind, "; ".join(d for _, d in failures))

    async def _attempt(self, message_id: uuid.UUID, attempt: int, provider: str,
                       outcome: str, detail: str | None, started: dt.datetime) -> None:
        async with self.pool.acquire() as conn:
            await messages_repo.record_attempt(conn, message_id, attempt, provider, outcome,
                                               detail, started)
        SMS_ATTEMPTS.labels(provider, outcome).inc()

    async def _still_wanted(self, row: asyncpg.Record) -> bool:
        """Re-check consent at send time: a deferred message may outlive it (STOP at night).
        The claim read the client's consent with the message (``claimed_recipient``)."""
        if row["client_id"] is None:
            return True
        recipient = messages_repo.claimed_recipient(row)
        if recipient is None or recipient.phone != row["phone"]:
            return True  # a payer's phone, or an operator's explicit choice
        reason = suppression_reason(recipient)
        if reason is None:
            return True
        async with self.pool.acquire() as conn:
            await messages_repo.finish(conn, row["id"], "suppressed", reason=reason,
                                       permanent=None, now=self.policies.clock(),
                                       from_status=("queued",))
        log.info("message %s suppressed at send time: %s", row["id"], reason)
        return False

    async def send_one(self, row: asyncpg.Record) -> None:
        if not await self._still_wanted(row):
            return
        attempt = row["attempts"] + 1
        encoding: Encoding = row["encoding"]
        parts = tuple(split_parts(row["text"], encoding))
        message = EncodedText(row["text"], encoding, parts, 0, False)
        outcome = await self.try_providers(row["phone"], message, str(row["id"]), row["id"],
                                           attempt)
        now = self.policies.clock()
        key = str(row["id"])
        uow = self.uow()
        async with uow:
            if outcome.failure is None:
                assert outcome.provider is not None and outcome.started is not None
                SMS_ATTEMPTS.labels(outcome.provider, "submitted").inc()
                # the attempt, the mark and the parts: one statement
                if await messages_repo.mark_submitted(uow.conn, row["id"], attempt,
                                                      outcome.provider, outcome.part_ids, now,
                                                      outcome.started):
                    SMS_SUBMITTED.labels(outcome.provider, row["language"], encoding).inc()
                    SMS_SEGMENTS.labels(outcome.provider, encoding).inc(len(parts))
                    uow.emit(SmsSubmitted(message_id=key, client_id=row["client_id"],
                                          template=row["template"], provider=outcome.provider,
                                          encoding=encoding, segments=len(parts)), key=key)
            elif self.policies.retry.gives_up(attempt, outcome.failure):
                permanent = outcome.failure == "permanent"
                done = await messages_repo.finish(
                    uow.conn, row["id"], "failed", reason=outcome.detail, permanent=permanent,
                    now=now, attempt=attempt, provider=outcome.provider,
                    from_status=("queued",))
                if done is not None:
                    SMS_FINISHED.labels("failed").inc()
                    uow.emit(SmsFailed(message_id=key, client_id=row["client_id"],
                                       template=row["template"], provider=outcome.provider,
                                       reason=outcome.detail, permanent=permanent), key=key)
            else:
                delay = self.policies.retry.delay(attempt, outcome.failure)
                await messages_repo.schedule_retry(uow.conn, row["id"], attempt,
                                                   now + dt.timedelta(seconds=delay),
                                                   outcome.detail)
            await uow.commit()
        if outcome.failure is None:
            await self.request_apply()  # a receipt may have overtaken this record

    async def send_due(self) -> int:
        async with self.pool.acquire() as conn:
            rows = await messages_repo.claim_due(conn, self.policies.clock(),
                                                 self.settings.claim_lease_s,
                                                 self.settings.worker_batch)
        if rows:
            await asyncio.gather(*(self.send_one(r) for r in rows))
        return len(rows)

    async def poll_receipts(self) -> None:
        for provider in self.providers:
            async with self.pool.acquire() as conn:
                ids = await receipts_repo.unreceipted_parts(conn, provider.name)
            if not ids:
                continue
            for receipt in await provider.poll(ids):
                uow = self.uow()
                async with uow:
                    await record_receipt(uow, provider.name, receipt)
                    await uow.commit()
        await self.request_apply()

    async def _maintain(self, providers: Sequence[Provider]) -> None:
        """Keep SMPP sessions bound so receipts and replies arrive between sends."""
        while True:
            for provider in providers:
                await provider.start()
            await asyncio.sleep(2.0)

    async def run(self) -> None:
        self.providers = self.build_providers()
        maintain = asyncio.create_task(self._maintain(self.providers), name="smpp-maintain")
        storer = asyncio.create_task(self._storer(), name="inbound-storer")
        wanted = asyncio.Event()
        applier = asyncio.create_task(self._applier(wanted), name="receipts-applier")
        self._apply_wanted = wanted
        wanted.set()  # receipts stored before a restart
        last_poll = 0.0
        loop = asyncio.get_running_loop()
        try:
            while True:
                self.wakeup.clear()  # a message queued from here on wakes the wait below
                sent = await self.send_due()
                if loop.time() - last_poll > self.settings.receipt_poll_s:
                    last_poll = loop.time()
                    await self.poll_receipts()
                if not sent:
                    # woken by a queued message's commit (NOTIFY, see listen_for_queued),
                    # else polls: retries and the end of quiet hours come due by time
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wakeup.wait(), self.settings.worker_poll_s)
        finally:
            self._apply_wanted = None
            maintain.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await maintain
            for provider in self.providers:  # unbound: nothing more is heard
                with contextlib.suppress(Exception):
                    await provider.close()
            # what was acknowledged is written before we go, if the database lets us
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self.inbound.join(), FLUSH_ON_STOP_S)
            if len(self.inbound):
                log.warning("stopping with %d receipts/replies not stored",
                            len(self.inbound))
            for task in (storer, applier):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


async def listen_for_queued(dsn: str, schema: str, wakeup: asyncio.Event) -> None:
    """Wake the sender when a queued message is committed, by any replica. Only a hint."""
    await listen(dsn, schema, messages_repo.queued_channel(schema), wakeup)


# -- the jobs the composition root runs (shared.app.BackgroundJob) -----------------------

def _settings(runtime: Runtime) -> NotificationsSettings:
    return cast(NotificationsSettings, runtime.settings)


async def sending_worker(runtime: Runtime) -> None:
    sender = Sender(runtime.pool, runtime.state[POLICIES], _settings(runtime),
                    wakeup=runtime.state[QUEUED])
    runtime.state[SENDER] = sender
    await sender.run()


async def sms_wakeups(runtime: Runtime) -> None:
    await listen_for_queued(_settings(runtime).database_url, runtime.schema,
                            runtime.state[QUEUED])


async def held_sweeper(runtime: Runtime) -> None:
    policies: Policies = runtime.state[POLICIES]
    while True:
        async with runtime.uow() as uow:
            settled = await expire_held(uow, policies)
            await uow.commit()
        # a full batch: more may be waiting; otherwise nothing to do for a while
        await asyncio.sleep(1.0 if settled >= 100 else _settings(runtime).held_sweep_interval_s)
