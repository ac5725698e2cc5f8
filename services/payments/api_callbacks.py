"""``POST|PUT /v1/mobile-money/{provider}/callbacks``: signed provider callbacks.

No bearer token: the Standard Webhooks signature (HMAC-SHA256 over
``{webhook-id}.{webhook-timestamp}.{raw body}``) is checked over the raw bytes
in constant time; timestamps more than the tolerance away are refused, a
``webhook-id`` seen before is a replay and refused. Nothing is credited or
settled before the provider confirms it with a status query.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from typing import Any

import httpx
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.payments import store
from services.payments.deps import Deps, utcnow
from services.payments.domain.payouts import Action, decide
from services.payments.domain.webhooks import SignatureRejected, verify
from services.payments.handlers.collections import record_collection
from services.payments.handlers.payouts import resolve
from services.payments.metrics import CALLBACKS
from services.payments.provider import ProviderClient, _party
from shared.errors import Conflict, DomainError, InvalidInput, NotFound
from shared.http import problem
from shared.money import CURRENCIES, parse_amount

log = logging.getLogger("noria.payments.callbacks")


class ProviderUnavailable(DomainError):
    title = "Provider unavailable"
    code = "provider_unavailable"


class NotYetCompleted(Conflict):
    """The provider does not (yet) report the transaction as completed: retry later."""

    code = "transaction_not_completed"


def callbacks_router(deps: Deps) -> APIRouter:
    router = APIRouter(tags=["mobile-money callbacks"])

    @router.api_route("/v1/mobile-money/{provider}/callbacks", methods=["POST", "PUT"],
                      summary="A signed callback from a mobile-money provider")
    async def callback(provider: str, request: Request) -> JSONResponse:
        limit = deps.settings.callback_max_in_flight
        if limit and deps.callbacks_in_flight >= limit:
            # Past the knee: refuse at once, before any work, rather than queue without
            # bound; providers send the callback again after Retry-After.
            CALLBACKS.labels(provider, "shed").inc()
            return problem(503, "Too many callbacks in flight",
                           f"{deps.callbacks_in_flight} callbacks are being handled; "
                           f"send it again after {deps.settings.callback_retry_after_s} s",
                           type_="https://noria.dev/problems/overloaded",
                           headers={"Retry-After": str(deps.settings.callback_retry_after_s)})
        deps.callbacks_in_flight += 1
        try:
            return await _handle(provider, request)
        finally:
            deps.callbacks_in_flight -= 1

    async def _handle(provider: str, request: Request) -> JSONResponse:
        cfg = deps.settings.provider(provider)
        client = deps.providers.get(provider)
        if cfg is None or client is None:
            raise NotFound(f"no mobile-money provider named {provider!r}", field="provider")
        raw = await request.body()
        h = request.headers
        try:
            verify([s.get_secret_value() for s in cfg.callback_secrets], h.get("webhook-id"),
                   h.get("webhook-timestamp"), h.get("webhook-signature"), raw, time.time(),
                   deps.settings.webhook_tolerance_s)
        except SignatureRejected as exc:
            CALLBACKS.labels(provider, "bad_signature").inc()
            log.warning("%s callback refused: %s", provider, exc.detail)
            return problem(401, exc.title, exc.detail,
                           type_="https://noria.dev/problems/webhook_rejected",
                           errors=[{"field": exc.field, "message": exc.detail}])
        webhook_id = h["webhook-id"]
        pool = request.app.state.runtime.pool
        async with pool.acquire() as conn:
            seen = await conn.fetchval(
                "SELECT outcome FROM webhook_receipts WHERE provider = $1 AND webhook_id = $2",
                provider, webhook_id)
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
                result = await _payout_callback(deps, request, provider, client, body,
                                                webhook_id)
            else:
                result = await _collection_callback(deps, request, provider, client, body,
                                                    webhook_id)
        except ProviderUnavailable as exc:
            return problem(503, exc.title, exc.detail, headers={"Retry-After": "5"})
        except NotYetCompleted:
            raise  # not remembered: the provider's retry with the same webhook-id is welcome
        except DomainError as exc:
            CALLBACKS.labels(provider, exc.code).inc()
            await _remember(request, provider, webhook_id, f"rejected: {exc.code}")
            raise
        CALLBACKS.labels(provider, str(result.get("status", "ok"))).inc()
        return JSONResponse(result)

    return router


async def _remember(request: Request, provider: str, webhook_id: str, outcome: str) -> None:
    async with request.app.state.runtime.uow() as uow:
        await store.record_webhook(uow.conn, provider, webhook_id, outcome)
        await uow.commit()


async def _collection_callback(deps: Deps, request: Request, provider: str,
                               client: ProviderClient, body: dict[str, Any],
                               webhook_id: str) -> dict[str, Any]:
    ref = body.get("transactionReference")
    if not isinstance(ref, str) or not ref:
        raise InvalidInput("transactionReference is required", field="transactionReference")
    try:
        amount = parse_amount(body.get("amount"))
    except ValueError as exc:
        raise InvalidInput(str(exc), field="amount") from None
    currency = body.get("currency")
    if currency not in CURRENCIES:
        raise InvalidInput(f"currency must be one of {sorted(CURRENCIES)}", field="currency")
    loan_ref = _party(body.get("creditParty"), "accountid")
    msisdn = _party(body.get("debitParty"), "msisdn")
    if not loan_ref:
        raise InvalidInput("creditParty must name the loan as accountid", field="creditParty")
    try:
        txn = await client.transaction(ref)  # the status query: never trust the callback alone
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"could not confirm {ref} with {provider}: "
                                  f"{type(exc).__name__}") from None
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
    if txn.credit_account != loan_ref or (msisdn and txn.debit_msisdn != msisdn):
        raise InvalidInput("the callback's parties differ from the provider's transaction",
                           field="creditParty" if txn.credit_account != loan_ref
                           else "debitParty")
    async with request.app.state.runtime.uow() as uow:
        if not await store.record_webhook(uow.conn, provider, webhook_id, "collection"):
            raise Conflict(f"webhook-id {webhook_id} was already received: a replay",
                           field="webhook-id")
        payment_id, created = await record_collection(
            deps, uow, loan_id=loan_ref, amount=txn.amount, currency=txn.currency,
            payer_msisdn=txn.debit_msisdn, provider=provider, source="callback",
            partner_id=None, external_ref=ref, provider_reference=ref)
        await uow.commit()
    return {"status": "accepted" if created else "duplicate", "payment_id": str(payment_id)}


async def _payout_callback(deps: Deps, request: Request, provider: str,
                           client: ProviderClient, body: dict[str, Any],
                           webhook_id: str) -> dict[str, Any]:
    cid_text = body.get("clientCorrelationId")
    scid = body.get("serverCorrelationId")
    try:
        cid = uuid.UUID(str(cid_text)) if cid_text else None
    except ValueError:
        raise InvalidInput("clientCorrelationId must be a UUID",
                           field="clientCorrelationId") from None
    async with request.app.state.runtime.pool.acquire() as conn:
        payout = await store.payout_by_correlation(
            conn, provider, correlation_id=cid,
            server_correlation_id=str(scid) if scid else None)
    if payout is None:
        raise NotFound("no payout with this correlation id", field="clientCorrelationId")
    # Confirm with the provider before settling anything, by our own correlation id
    # (never by ids taken from the callback body).
    view = await client.recover(str(payout.correlation_id))
    grace = dt.timedelta(seconds=deps.settings.payout_expiry_grace_s)
    action = decide(payout.status, view, utcnow(), payout.deadline, grace)
    async with request.app.state.runtime.uow() as uow:
        if not await store.record_webhook(uow.conn, provider, webhook_id, "payout"):
            raise Conflict(f"webhook-id {webhook_id} was already received: a replay",
                           field="webhook-id")
        if action in (Action.COMPLETE, Action.FAIL):
            settled = await resolve(deps, uow, payout.id, view, action, "callback")
        else:
            settled = payout
        await uow.commit()
    return {"status": settled.status.value if settled else "unknown",
            "payout_id": str(payout.id)}

