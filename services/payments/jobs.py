"""The payout worker (a background job): talks to the providers outside any database
transaction.

Each round claims due payouts with a lease (``FOR UPDATE SKIP LOCKED``, so
replicas share the work), asks the provider (send, recover a lost response, or
poll the request state), then settles what it learned in a short transaction.
The same ``X-CorrelationID`` and the same body (its ``requestDate`` fixed before
the first send) go out on every attempt, so a retry never pays twice. A payout
whose outcome is unknown after its deadline is put in doubt and asked again at a
slower, capped pace (``in_doubt_poll_s`` doubling up to ``in_doubt_poll_max_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Any, cast

from services.payments import state
from services.payments.domain import postings
from services.payments.domain.accounts import FIXED
from services.payments.domain.ledger import TransferExists
from services.payments.domain.payouts import (
    Action,
    PayoutStatus,
    ProviderView,
    Seen,
    decide,
)
from services.payments.handlers import accrual_batches
from services.payments.handlers.payouts import resolve
from services.payments.metrics import PAYOUTS_IN_DOUBT, PAYOUTS_IN_FLIGHT, PROVIDER_CALLS
from services.payments.providers.gsma import Providers
from services.payments.repository import ledger as ledger_repo
from services.payments.repository import payouts as repo
from services.payments.repository.payouts import Payout
from services.payments.settings import PaymentsSettings
from shared.app import Runtime
from shared.clock import Clock, system_clock
from shared.db import listen
from shared.uow import UnitOfWork

log = logging.getLogger("noria.payments.worker")


async def open_books(settings: PaymentsSettings, pool: Any) -> None:
    """The chart of accounts and each provider's opening float (idempotent)."""
    uow = UnitOfWork(pool, topic_prefix=settings.topic_prefix)
    async with uow:
        await ledger_repo.ensure_accounts(uow.conn, list(FIXED))
        for name, cfg in settings.providers.items():
            if cfg.opening_float > 0:
                try:
                    await ledger_repo.post(uow.conn, postings.funding(
                        name, cfg.opening_float, f"funding:{name}:opening"))
                except TransferExists:
                    log.warning("provider %s: the opening float was already posted with another "
                                "amount; post a funding entry to change it", name)
        await uow.commit()


async def ask_provider(settings: PaymentsSettings, providers: Providers, payout: Payout,
                       pool: Any = None, clock: Clock = system_clock) -> ProviderView:
    client = providers.get(payout.provider)
    if client is None:
        return ProviderView(Seen.FAILED, reason=f"provider {payout.provider!r} not configured")
    cid = str(payout.correlation_id)
    if payout.status is PayoutStatus.IN_DOUBT:
        # Ask by our own correlation id; send the same request again only when an
        # operator's approved retry asked for it and the provider does not know it.
        view = await (client.request_state(payout.server_correlation_id)
                      if payout.server_correlation_id else client.recover(cid))
        if view.seen is Seen.NOT_FOUND and payout.server_correlation_id:
            view = await client.recover(cid)
        if not (payout.resend_requested and view.seen is Seen.NOT_FOUND):
            return view
        if pool is not None:
            async with pool.acquire() as conn:
                await repo.clear_resend(conn, payout.id)
        return await _send(settings, client, payout, pool, clock)
    if payout.status is PayoutStatus.SUBMITTED and payout.server_correlation_id:
        return await client.request_state(payout.server_correlation_id)
    if payout.attempts > 1 or payout.sent or clock() > payout.deadline:
        # We may have sent it before and lost the answer: recover it first.
        view = await client.recover(cid)
        if view.seen is not Seen.NOT_FOUND or clock() > payout.deadline:
            return view
    return await _send(settings, client, payout, pool, clock)


async def _send(settings: PaymentsSettings, client: Any, payout: Payout, pool: Any,
                clock: Clock) -> ProviderView:
    """Send the payout's request: its ``requestDate`` is recorded before it first leaves,
    so every resend is the same request byte for byte."""
    request_date = payout.request_date
    if request_date is None:
        request_date = clock()
        if pool is not None:
            async with pool.acquire() as conn:
                request_date = await repo.set_request_date(conn, payout.id, request_date)
    return cast(ProviderView, await client.disburse(
        correlation_id=str(payout.correlation_id), msisdn=payout.msisdn,
        amount=payout.amount, currency=payout.currency,
        callback_url=settings.callback_url(payout.provider), expiry=payout.deadline,
        reference=payout.saga_id, request_date=request_date,
        purpose=PURPOSES.get(payout.kind, payout.kind)))


PURPOSES = {"disbursement": "loan disbursement", "refund": "refund",
            "withdrawal": "savings withdrawal"}


_GAUGE_EVERY_S = 1.0
_gauge_at = 0.0


async def work_once(settings: PaymentsSettings, providers: Providers, pool: Any,
                    clock: Clock = system_clock) -> int:
    global _gauge_at
    s = settings
    lease = max(cfg.request_timeout_s for cfg in s.providers.values()) * 3 + 5
    async with pool.acquire() as conn:
        now = time.monotonic()
        if now - _gauge_at >= _GAUGE_EVERY_S:  # not on every wake-up: once a second is plenty
            _gauge_at = now
            for row in await conn.fetch(
                    "SELECT s.status, count(p.id) AS n FROM (VALUES ('pending'), ('submitted'))"
                    " AS s(status) LEFT JOIN payouts p ON p.status = s.status"
                    " GROUP BY s.status"):
                PAYOUTS_IN_FLIGHT.labels(row["status"]).set(row["n"])
            for row in await repo.in_doubt_counts(conn, list(s.providers)):
                PAYOUTS_IN_DOUBT.labels(row["kind"], row["provider"]).set(row["n"])
        # one UPDATE … RETURNING: atomic on its own, no BEGIN/COMMIT round trips around it
        due = await repo.claim_due(conn, s.payout_batch_size, lease)
    if not due:
        return 0
    await asyncio.gather(*(settle(settings, providers, pool, p, clock) for p in due))
    return len(due)


async def settle(settings: PaymentsSettings, providers: Providers, pool: Any,
                 payout: Payout, clock: Clock = system_clock) -> None:
    try:
        view = await ask_provider(settings, providers, payout, pool, clock)
    except Exception as exc:  # a bug or an unreadable answer: keep the payout, retry later
        log.exception("payout %s: asking the provider failed", payout.saga_id)
        view = ProviderView(Seen.UNREACHABLE, reason=f"{type(exc).__name__}: {exc}")
    grace = dt.timedelta(seconds=settings.payout_expiry_grace_s)
    cfg = settings.provider(payout.provider)
    async with pool.acquire() as conn:  # sent (requestDate fixed) by now, or never
        current = await repo.payout(conn, payout.id)
    sent = current.sent if current is not None else True
    action = decide(payout.status, view, clock(), payout.deadline, grace,
                    honours_expiry=cfg.honours_expiry if cfg else False, sent=sent)
    resolved_by = "poll"
    if action is Action.FAIL and view.seen is not Seen.FAILED:
        resolved_by = "deadline"
        why = ("never sent before its deadline" if not sent
               else "the provider honours expiry and does not know the request")
        view = ProviderView(view.seen, view.reference, view.server_correlation_id,
                            f"deadline passed without confirmation from the provider "
                            f"({why}; last answer: {view.seen.value})")
    PROVIDER_CALLS.labels(payout.provider, payout.status.value, view.seen.value).inc()
    uow = UnitOfWork(pool, topic_prefix=settings.topic_prefix)
    async with uow:
        await resolve(uow, settings, payout.id, view, action, resolved_by, clock=clock)
        await uow.commit()
    log.info("payout %s (%s): provider says %s → %s", payout.saga_id, payout.kind,
             view.seen.value, action.value)


async def run(settings: PaymentsSettings, providers: Providers, wakeup: asyncio.Event,
              pool: Any, clock: Clock = system_clock) -> None:
    await open_books(settings, pool)
    try:
        while True:
            wakeup.clear()  # a payout recorded from here on wakes the wait below
            handled = await work_once(settings, providers, pool, clock)
            if not handled:
                # woken by a recorded payout (NOTIFY, see listen_for_payouts), else polls
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), settings.payout_poll_interval_s)
    finally:
        await providers.close()


async def listen_for_payouts(dsn: str, schema: str, wakeup: asyncio.Event) -> None:
    """Wake the worker when a payout is recorded, by any replica (``LISTEN``).

    Only a hint, like the outbox's: the worker keeps polling.
    """
    await listen(dsn, schema, repo.payouts_channel(schema), wakeup)


# -- the background jobs the composition root runs -----------------------------------


async def payout_worker(runtime: Runtime) -> None:
    """Pay recorded payouts (:func:`run`), with the provider clients the composition root
    put in the runtime's state."""
    await run(cast(PaymentsSettings, runtime.settings), state.providers(runtime.state),
              state.payout_wakeup(runtime.state), runtime.pool, state.clock(runtime.state))


async def payout_wakeups(runtime: Runtime) -> None:
    """``LISTEN`` for recorded payouts and wake the payout worker."""
    await listen_for_payouts(runtime.settings.database_url, runtime.schema,
                             state.payout_wakeup(runtime.state))


async def accrual_workers(runtime: Runtime) -> None:
    """Post the staged accrual batches, ``accrual_workers`` at once on this replica
    (:mod:`services.payments.handlers.accrual_batches`)."""
    settings = cast(PaymentsSettings, runtime.settings)
    pool = runtime.pool
    await asyncio.gather(*(accrual_batches.drain(pool, settings)
                           for _ in range(settings.accrual_workers)))
