"""Money in: a confirmed collection callback or a wallet's direct repayment report.

Both post Dr provider settlement / Cr repayment suspense and emit
``RepaymentReceived`` with the loan reference as given (a reference ``SAV-<account id>``
is a savings deposit instead: Dr settlement / Cr that account's deposits and
``SavingsDepositReceived``, see ``handlers.savings``) — but only once the provider
has confirmed the transaction with a status query: a callback is confirmed before it
is recorded; a wallet's report is recorded ``unconfirmed`` when the provider cannot
confirm it yet, then confirmed by the confirmation job (a poll with backoff), a
callback for the same transaction, or the provider's statement, or ends
``rejected_unconfirmed`` after ``wallet_confirm_window_s`` having credited nothing.

One provider transaction is one payment: ``(provider, provider_reference)`` is unique
across both sources, so the second report of a transaction finds the first.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import asyncpg

from services.payments import state
from services.payments.domain import postings
from services.payments.domain import savings as savings_rules
from services.payments.handlers.leased_jobs import run_rounds
from services.payments.handlers.savings import credit_wallet_deposit
from services.payments.metrics import WALLET_REPORTS
from services.payments.providers.gsma import (
    ProviderClient,
    Providers,
    ProviderTransaction,
    ProviderUnanswered,
)
from services.payments.repository import ledger as ledger_repo
from services.payments.repository import payments as repo
from services.payments.settings import PaymentsSettings
from shared.app import Runtime
from shared.clock import Clock, system_clock
from shared.contracts.payments import RepaymentReceived
from shared.errors import InvalidInput
from shared.identifiers import InvalidIdentifier, canonical_phone, canonical_reference
from shared.uow import UnitOfWork

log = logging.getLogger("noria.payments.collections")


def provider_reference(raw: object, field: str = "provider_reference") -> str:
    """A provider's transaction reference in its one canonical form (NFKC, ASCII
    digits, trimmed; the provider's case is kept: its references are case-sensitive)."""
    return canonical_reference(raw, field=field, fold_case=False)


def same_msisdn(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a == b
    try:
        return canonical_phone(a) == canonical_phone(b)
    except InvalidIdentifier:
        return a.strip() == b.strip()


def same_reference(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a == b
    try:
        return canonical_reference(a) == canonical_reference(b)
    except InvalidIdentifier:
        return a.strip() == b.strip()


async def record_collection(
    uow: UnitOfWork, *, loan_id: str, amount: Decimal, currency: str,
    payer_msisdn: str | None, provider: str, source: str, partner_id: str | None,
    external_ref: str, provider_reference: str | None, reported_ref: str | None = None,
    confirmed: bool = True, confirm_deadline: dt.datetime | None = None,
    clock: Clock = system_clock,
) -> tuple[asyncpg.Record, bool]:
    """Record one collection; ``(payment, False)`` if it was already recorded.

    ``confirmed``: the provider confirmed it, so it is credited now (or, if this
    transaction was recorded ``unconfirmed`` before, that payment is credited now);
    otherwise it is recorded ``unconfirmed`` (nothing posted, no event).
    ``external_ref`` is unique per provider and source; ``reported_ref`` (default:
    the same) is the reference put on ``RepaymentReceived``.
    """
    conn = uow.conn
    payment_id = uuid.uuid4()
    now = clock()
    inserted = await repo.insert_payment(
        conn, payment_id=payment_id, loan_id=loan_id, amount=amount, currency=currency,
        payer_msisdn=payer_msisdn, provider=provider, source=source, partner_id=partner_id,
        external_ref=external_ref, provider_reference=provider_reference,
        confirmed_at=now if confirmed else None, confirm_deadline=confirm_deadline)
    if not inserted:
        row = None
        if provider_reference is not None:
            row = await repo.payment_by_provider_reference(conn, provider, provider_reference)
        if row is None:
            row = await repo.payment_by_ref(conn, provider, source, external_ref)
        assert row is not None
        if confirmed and row["status"] in repo.NOT_CREDITED:
            credited = await credit(uow, row["id"], clock, reported_ref=reported_ref,
                                    amount=amount, loan_id=loan_id)
            return (credited or row), False
        return row, False
    row = await repo.payment(conn, payment_id)
    assert row is not None
    if confirmed:
        await _post_and_announce(uow, row, reported_ref or external_ref)
    return row, True


async def credit(uow: UnitOfWork, payment_id: uuid.UUID, clock: Clock = system_clock, *,
                 reported_ref: str | None = None, amount: Decimal | None = None,
                 loan_id: str | None = None) -> asyncpg.Record | None:
    """The provider confirmed a payment recorded ``unconfirmed``: credit it, once, for
    the provider's ``amount`` and ``loan_id`` when given.

    None if it was not waiting for confirmation (already credited by another path).
    """
    row = await repo.confirm(uow.conn, payment_id, clock(), amount=amount, loan_id=loan_id)
    if row is None:
        return None
    ref = reported_ref or (row["external_ref"].split(":", 1)[-1] if row["source"] == "api"
                           else row["external_ref"])
    await _post_and_announce(uow, row, ref)
    WALLET_REPORTS.labels(row["provider"], "confirmed").inc()
    return row


async def _post_and_announce(uow: UnitOfWork, row: asyncpg.Record, reported_ref: str) -> None:
    account = savings_rules.account_of(row["loan_id"])
    if account is not None:  # paid to `SAV-<account id>`: a savings deposit, not a repayment
        await credit_wallet_deposit(uow, row, account, reported_ref)
        return
    pid = str(row["id"])
    await ledger_repo.post(uow.conn, postings.collection(pid, row["loan_id"], row["provider"],
                                                         row["amount"]))
    uow.emit(RepaymentReceived(
        loan_id=row["loan_id"], payment_id=pid, amount=row["amount"],
        currency=row["currency"], payer_msisdn=row["payer_msisdn"], provider=row["provider"],
        external_ref=reported_ref, received_at=row["confirmed_at"] or system_clock()),
        key=row["loan_id"])


# -- what the provider says about a wallet's report ----------------------------------


@dataclass(frozen=True)
class Verdict:
    """``confirmed``; ``refuted`` (the provider's transaction differs, or failed: never
    to be credited; ``field`` names what differs); or ``unknown`` (not known, not
    completed yet, or the provider could not be asked)."""

    outcome: str
    reason: str
    field: str | None = None
    transaction: ProviderTransaction | None = None


async def check_with_provider(client: ProviderClient, reference: str, *, loan_id: str,
                              amount: Decimal, currency: str, payer_msisdn: str | None
                              ) -> Verdict:
    """The status query by the provider's transaction reference (outside any transaction)."""
    try:
        txn = await client.transaction(reference)
    except ProviderUnanswered as exc:
        return Verdict("unknown", f"{client.name} could not be asked: {exc}")
    except (ValueError, KeyError) as exc:
        return Verdict("unknown", f"{client.name} could not be asked: {type(exc).__name__}")
    if txn is None:
        return Verdict("unknown", f"{client.name} does not know transaction {reference}")
    if txn.status == "failed":
        return Verdict("refuted", f"{client.name} reports transaction {reference} failed",
                       "provider_reference", txn)
    if txn.status != "completed":
        return Verdict("unknown", f"{client.name} reports transaction {reference} as "
                       f"{txn.status!r}", transaction=txn)
    if txn.amount != amount or txn.currency != currency:
        return Verdict("refuted", f"amount_mismatch: reported {amount} {currency}, "
                       f"{client.name} says {txn.amount} {txn.currency}", "amount", txn)
    if not same_reference(txn.credit_account, loan_id):
        return Verdict("refuted", f"{client.name}'s transaction {reference} paid "
                       f"{txn.credit_account!r}, not loan {loan_id!r}", "loan_id", txn)
    if payer_msisdn is not None and not same_msisdn(txn.debit_msisdn, payer_msisdn):
        return Verdict("refuted", f"{client.name}'s transaction {reference} was paid by "
                       "another wallet", "payer_msisdn", txn)
    return Verdict("confirmed", "confirmed by the provider's status query", transaction=txn)


def refuse(verdict: Verdict) -> InvalidInput:
    return InvalidInput(verdict.reason, field=verdict.field or "provider_reference")


# -- the confirmation job ---------------------------------------------------------------


def _backoff(settings: PaymentsSettings, attempts: int) -> float:
    base = settings.wallet_confirm_interval_s
    return float(min(base * (2 ** max(attempts - 1, 0)), settings.wallet_confirm_max_backoff_s))


async def confirm_due(pool: Any, settings: PaymentsSettings, providers: Providers, *,
                      clock: Clock = system_clock, only: list[uuid.UUID] | None = None
                      ) -> dict[str, int]:
    """One round: ask the provider about each wallet report due, then credit it, try
    again later, or (past its deadline by ``clock``) end it ``rejected_unconfirmed``."""
    lease = max(cfg.request_timeout_s for cfg in settings.providers.values()) * 3 + 5
    async with pool.acquire() as conn:
        due = await repo.claim_unconfirmed(conn, now=clock(), lease_s=lease,
                                           limit=settings.payout_batch_size, only=only)
    counts = {"confirmed": 0, "rejected": 0, "waiting": 0}
    for row in due:
        client = providers.get(row["provider"])
        if client is None:
            verdict = Verdict("unknown", f"provider {row['provider']!r} is not configured")
        else:
            verdict = await check_with_provider(
                client, row["provider_reference"], loan_id=row["loan_id"],
                amount=row["amount"], currency=row["currency"],
                payer_msisdn=row["payer_msisdn"])
        uow = UnitOfWork(pool, topic_prefix=settings.topic_prefix)
        async with uow:
            now = clock()
            if verdict.outcome == "confirmed":
                outcome = "confirmed" if await credit(uow, row["id"], clock) else "waiting"
            elif verdict.outcome == "refuted" or (
                    row["confirm_deadline"] is not None and now >= row["confirm_deadline"]):
                outcome = "rejected" if await repo.reject_unconfirmed(
                    uow.conn, row["id"], f"not confirmed by the provider: {verdict.reason}"
                ) else "waiting"
                if outcome == "rejected":
                    WALLET_REPORTS.labels(row["provider"], "rejected_unconfirmed").inc()
            else:
                outcome = "waiting"
                next_at = min(now + dt.timedelta(seconds=_backoff(settings,
                                                                  row["confirm_attempts"])),
                              row["confirm_deadline"] or now)
                await repo.retry_confirmation(uow.conn, row["id"], next_at, verdict.reason)
            await uow.commit()
        counts[outcome] += 1
        log.info("wallet report %s (%s %s): %s → %s", row["id"], row["provider"],
                 row["provider_reference"], verdict.reason, outcome)
    return counts


async def run_confirmations(pool: Any, settings: PaymentsSettings, providers: Providers,
                            clock: Clock = system_clock) -> None:
    """The confirmation job's loop (every replica: claims are leased)."""
    await run_rounds(lambda: confirm_due(pool, settings, providers, clock=clock),
                     settings.wallet_confirm_interval_s, "wallet report confirmations")


async def wallet_confirmations(runtime: Runtime) -> None:
    """The background job: confirm wallet reports with their provider (every replica)."""
    await run_confirmations(runtime.pool, cast(PaymentsSettings, runtime.settings),
                            state.providers(runtime.state),
                            clock=cast(Clock, runtime.state.get("clock", system_clock)))
