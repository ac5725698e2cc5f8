"""Payee validation before a group's payouts: loans' ``ValidatePayee`` asks whether a
member's wallet can receive money before any member is paid.

The command only records a lookup (``payee_lookups``, one per saga step); the lookup job
asks the provider outside any transaction (GSMA ``GET /accounts/msisdn/{msisdn}/status``)
and answers in a short one:

- ``available`` → ``PayeeConfirmed``;
- ``unavailable`` or no such account (the provider's GSMA identification error) →
  ``PayeeRefused``;
- no answer (timeout, connection error, 5xx, anything unreadable) → the lookup stays
  pending and is asked again (``payee_lookup_retry_s`` doubling up to
  ``payee_lookup_retry_max_s``); the first time, ``PayeeLookupInDoubt`` tells loans.
  Never a yes or a no without the provider's word.

A repeated ``ValidatePayee`` (the saga's resend after a lost reply) is answered with what
is known; nothing moves money here, so nothing is posted to the ledger.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from typing import Any, cast

import orjson

from services.payments import state
from services.payments.handlers.leased_jobs import run_rounds
from services.payments.providers.gsma import PayeeView, Providers
from services.payments.repository import payee_lookups as repo
from services.payments.settings import PaymentsSettings
from shared.app import Runtime
from shared.clock import Clock, system_clock
from shared.contracts.payments import (
    PayeeConfirmed,
    PayeeLookupInDoubt,
    PayeeRefused,
    ValidatePayee,
)
from shared.envelope import Envelope
from shared.uow import UnitOfWork

log = logging.getLogger("noria.payments.payees")


def _hash(cmd: ValidatePayee) -> str:
    return hashlib.sha256(orjson.dumps(cmd.model_dump(mode="json"),
                                       option=orjson.OPT_SORT_KEYS)).hexdigest()


def validate_payee_handler(settings: PaymentsSettings) -> Any:
    async def on_validate_payee(uow: UnitOfWork, cmd: ValidatePayee, env: Envelope) -> None:
        await validate_payee(uow, settings, cmd)
    return on_validate_payee


async def validate_payee(uow: UnitOfWork, settings: PaymentsSettings, cmd: ValidatePayee
                         ) -> None:
    """Record the lookup (the job asks the provider), or answer again what is known."""
    conn = uow.conn
    provider = cmd.provider or settings.default_provider
    fresh = await repo.insert(conn, saga_id=cmd.saga_id, request_hash=_hash(cmd),
                              loan_id=cmd.loan_id, client_id=cmd.client_id,
                              msisdn=cmd.msisdn, provider=provider)
    if fresh:
        return
    row = await repo.by_saga(conn, cmd.saga_id)
    assert row is not None
    if row["msisdn"] != cmd.msisdn:
        log.error("ValidatePayee for saga step %s names another wallet than the first; "
                  "ignored (the first command stands)", cmd.saga_id)
        return
    if row["status"] == "pending":
        if row["in_doubt_since"] is not None:
            _emit(uow, row, "in_doubt", row["last_answer"] or "no answer yet")
        log.info("ValidatePayee for %s again: still asking the provider", cmd.saga_id)
        return
    _emit(uow, row, row["status"], row["reason"] or "")


def _emit(uow: UnitOfWork, row: Any, outcome: str, reason: str) -> None:
    common = {"loan_id": row["loan_id"], "saga_id": row["saga_id"],
              "client_id": row["client_id"], "msisdn": row["msisdn"],
              "provider": row["provider"]}
    if outcome == "confirmed":
        uow.emit(PayeeConfirmed(**common, account_status=row["account_status"] or "available"),
                 key=row["loan_id"])
    elif outcome == "refused":
        uow.emit(PayeeRefused(**common, reason=reason), key=row["loan_id"])
    else:
        uow.emit(PayeeLookupInDoubt(**common, reason=reason,
                                    since=row["in_doubt_since"]), key=row["loan_id"])


def _backoff(settings: PaymentsSettings, attempts: int) -> float:
    base = settings.payee_lookup_retry_s
    return float(min(base * (2 ** max(attempts - 1, 0)), settings.payee_lookup_retry_max_s))


async def lookup_due(pool: Any, settings: PaymentsSettings, providers: Providers, *,
                     clock: Clock = system_clock, only: list[str] | None = None
                     ) -> dict[str, int]:
    """One round: ask the provider about each lookup due; how many ended each way."""
    lease = max(cfg.request_timeout_s for cfg in settings.providers.values()) * 3 + 5
    async with pool.acquire() as conn:
        due = await repo.claim_due(conn, now=clock(), lease_s=lease,
                                   limit=settings.payout_batch_size, only=only)
    counts = {"confirmed": 0, "refused": 0, "unanswered": 0}
    views = await asyncio.gather(*(_ask(providers, row) for row in due))
    for row, view in zip(due, views, strict=True):
        uow = UnitOfWork(pool, topic_prefix=settings.topic_prefix)
        async with uow:
            now = clock()
            if view.seen in ("available", "unavailable"):
                outcome = "confirmed" if view.seen == "available" else "refused"
                if await repo.decide(uow.conn, row["id"], outcome,
                                     account_status=view.account_status, reason=view.reason,
                                     at=now):
                    fresh = await repo.by_saga(uow.conn, row["saga_id"])
                    _emit(uow, fresh, outcome, view.reason)
            else:
                outcome = "unanswered"
                next_at = now + dt.timedelta(seconds=_backoff(settings, row["attempts"]))
                if await repo.unanswered(uow.conn, row["id"], next_at=next_at,
                                         answer=view.reason, at=now):
                    fresh = await repo.by_saga(uow.conn, row["saga_id"])
                    _emit(uow, fresh, "in_doubt", view.reason)
            await uow.commit()
        counts[outcome] += 1
        log.info("payee lookup %s (%s, %s): %s → %s", row["saga_id"], row["provider"],
                 row["msisdn"], view.reason, outcome)
    return counts


async def _ask(providers: Providers, row: Any) -> PayeeView:
    client = providers.get(row["provider"])
    if client is None:
        return PayeeView("unanswered", reason=f"provider {row['provider']!r} not configured")
    try:
        return await client.account_status(row["msisdn"])
    except Exception as exc:  # a bug or an unreadable answer: no word, ask again later
        log.exception("payee lookup %s: asking the provider failed", row["saga_id"])
        return PayeeView("unanswered", reason=f"{type(exc).__name__}: {exc}")


async def run_lookups(pool: Any, settings: PaymentsSettings, providers: Providers,
                      clock: Clock = system_clock) -> None:
    """The lookup job's loop (every replica: claims are leased)."""
    await run_rounds(lambda: lookup_due(pool, settings, providers, clock=clock),
                     settings.payee_lookup_poll_s, "payee lookups")


async def payee_lookups(runtime: Runtime) -> None:
    """The background job: validate group members' payees with their provider."""
    await run_lookups(runtime.pool, cast(PaymentsSettings, runtime.settings),
                      state.providers(runtime.state),
                      clock=cast(Clock, runtime.state.get("clock", system_clock)))
