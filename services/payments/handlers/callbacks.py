"""A provider callback whose signature checked out: confirm, then record or settle.

Nothing is credited or settled before the provider confirms it with a status query
(never by ids taken from the callback body alone). A ``webhook-id`` seen before is a
replay and refused; a callback refused for a domain reason is remembered under its
``webhook-id``, one the provider cannot confirm yet (or could not be asked) is not,
so the provider's retry with the same ``webhook-id`` is welcome.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from services.payments.domain.payouts import Action, decide
from services.payments.handlers.collections import (
    provider_reference,
    record_collection,
    same_msisdn,
    same_reference,
)
from services.payments.handlers.payouts import resolve
from services.payments.metrics import CALLBACKS
from services.payments.providers.gsma import ProviderClient, ProviderUnanswered, party
from services.payments.repository import payouts as payouts_repo
from services.payments.repository import webhooks as webhooks_repo
from services.payments.settings import PaymentsSettings
from shared.app import Runtime
from shared.clock import system_clock
from shared.errors import Conflict, DomainError, InvalidInput, NotFound
from shared.money import CURRENCIES, parse_amount


class ProviderUnavailable(DomainError):
    title = "Provider unavailable"
    code = "provider_unavailable"


class NotYetCompleted(Conflict):
    """The provider does not (yet) report the transaction as completed: retry later."""

    code = "transaction_not_completed"


@dataclass(frozen=True)
class CollectionOutcome:
    status: str  # accepted, or duplicate
    payment_id: str


@dataclass(frozen=True)
class PayoutOutcome:
    status: str  # the payout's status after the callback
    payout_id: str


async def handle(runtime: Runtime, settings: PaymentsSettings, provider: str,
                 client: ProviderClient, webhook_id: str, raw: bytes
                 ) -> CollectionOutcome | PayoutOutcome:
    """A signed callback: a collection, or a payout's (``type: disbursement``) result.

    Raises :class:`ProviderUnavailable` when the provider could not be asked.
    """
    async with runtime.pool.acquire() as conn:
        seen = await webhooks_repo.webhook_outcome(conn, provider, webhook_id)
    if seen is not None:
        CALLBACKS.labels(provider, "replay").inc()
        raise Conflict(f"webhook-id {webhook_id} was already received ({seen}): a replay",
                       field="webhook-id")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise InvalidInput("the callback body must be a JSON object", field="body")
    try:
        if str(body.get("type", "")).lower() == "disbursement":
            return await payout_callback(runtime, settings, provider, client, body,
                                         webhook_id)
        return await collection_callback(runtime, provider, client, body, webhook_id)
    except (ProviderUnavailable, NotYetCompleted):
        raise  # not remembered: the provider's retry with the same webhook-id is welcome
    except DomainError as exc:
        CALLBACKS.labels(provider, exc.code).inc()
        await _remember(runtime, provider, webhook_id, f"rejected: {exc.code}")
        raise


async def _remember(runtime: Runtime, provider: str, webhook_id: str, outcome: str) -> None:
    async with runtime.uow() as uow:
        await webhooks_repo.record_webhook(uow.conn, provider, webhook_id, outcome)
        await uow.commit()


async def collection_callback(runtime: Runtime, provider: str, client: ProviderClient,
                              body: dict[str, Any], webhook_id: str) -> CollectionOutcome:
    raw_ref = body.get("transactionReference")
    if not isinstance(raw_ref, str) or not raw_ref:
        raise InvalidInput("transactionReference is required", field="transactionReference")
    ref = provider_reference(raw_ref, field="transactionReference")
    try:
        amount = parse_amount(body.get("amount"))
    except ValueError as exc:
        raise InvalidInput(str(exc), field="amount") from None
    currency = body.get("currency")
    if currency not in CURRENCIES:
        raise InvalidInput(f"currency must be one of {sorted(CURRENCIES)}", field="currency")
    loan_ref = party(body.get("creditParty"), "accountid")
    msisdn = party(body.get("debitParty"), "msisdn")
    if not loan_ref:
        raise InvalidInput("creditParty must name the loan as accountid", field="creditParty")
    try:
        txn = await client.transaction(ref)  # the status query: never trust the callback alone
    except ProviderUnanswered as exc:
        raise ProviderUnavailable(f"could not confirm {ref} with {provider}: {exc}") from None
    if txn is None:
        raise InvalidInput(f"{provider} does not know transaction {ref}",
                           field="transactionReference")
    if txn.status != "completed":
        raise NotYetCompleted(f"{provider} reports transaction {ref} as {txn.status!r}",
                              field="transactionStatus")
    if txn.amount != amount or txn.currency != currency:
        raise InvalidInput(
            f"amount_mismatch: the callback says {amount} {currency}, {provider} says "
            f"{txn.amount} {txn.currency}", field="amount")
    same_loan = same_reference(txn.credit_account, loan_ref)
    if not same_loan or (msisdn and not same_msisdn(txn.debit_msisdn, msisdn)):
        raise InvalidInput("the callback's parties differ from the provider's transaction",
                           field="creditParty" if not same_loan else "debitParty")
    assert txn.credit_account is not None
    async with runtime.uow() as uow:
        if not await webhooks_repo.record_webhook(uow.conn, provider, webhook_id, "collection"):
            raise Conflict(f"webhook-id {webhook_id} was already received: a replay",
                           field="webhook-id")
        # One provider transaction, one payment: a wallet's report of it recorded
        # before (unconfirmed) is credited now; one already credited stays as it is.
        payment, created = await record_collection(
            uow, loan_id=txn.credit_account, amount=txn.amount, currency=txn.currency,
            payer_msisdn=txn.debit_msisdn, provider=provider, source="callback",
            partner_id=None, external_ref=ref, provider_reference=ref)
        await uow.commit()
    return CollectionOutcome("accepted" if created else "duplicate", str(payment["id"]))


async def payout_callback(runtime: Runtime, settings: PaymentsSettings, provider: str,
                          client: ProviderClient, body: dict[str, Any],
                          webhook_id: str) -> PayoutOutcome:
    cid_text = body.get("clientCorrelationId")
    scid = body.get("serverCorrelationId")
    try:
        cid = uuid.UUID(str(cid_text)) if cid_text else None
    except ValueError:
        raise InvalidInput("clientCorrelationId must be a UUID",
                           field="clientCorrelationId") from None
    async with runtime.pool.acquire() as conn:
        payout = await payouts_repo.payout_by_correlation(
            conn, provider, correlation_id=cid,
            server_correlation_id=str(scid) if scid else None)
    if payout is None:
        raise NotFound("no payout with this correlation id", field="clientCorrelationId")
    # Confirm with the provider before settling anything, by our own correlation id
    # (never by ids taken from the callback body).
    view = await client.recover(str(payout.correlation_id))
    grace = dt.timedelta(seconds=settings.payout_expiry_grace_s)
    action = decide(payout.status, view, system_clock(), payout.deadline, grace)
    async with runtime.uow() as uow:
        if not await webhooks_repo.record_webhook(uow.conn, provider, webhook_id, "payout"):
            raise Conflict(f"webhook-id {webhook_id} was already received: a replay",
                           field="webhook-id")
        if action in (Action.COMPLETE, Action.FAIL):
            settled = await resolve(uow, settings, payout.id, view, action, "callback")
        else:
            settled = payout
        await uow.commit()
    return PayoutOutcome(settled.status.value if settled else "unknown", str(payout.id))
