"""``POST|PUT /v1/mobile-money/{provider}/callbacks``: signed provider callbacks.

No bearer token: the Standard Webhooks signature (HMAC-SHA256 over
``{webhook-id}.{webhook-timestamp}.{raw body}``) is checked over the raw bytes
in constant time; timestamps more than the tolerance away are refused, a
``webhook-id`` seen before is a replay and refused. Nothing is credited or
settled before the provider confirms it with a status query
(:mod:`services.payments.handlers.callbacks`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import APIRouter, Request

from services.payments.api.deps import callbacks_in_flight, providers, runtime, settings
from services.payments.api.schemas import CollectionCallbackOut, PayoutCallbackOut
from services.payments.domain.admission import retry_after_s
from services.payments.domain.webhooks import SignatureRejected, verify
from services.payments.handlers import callbacks as handlers
from services.payments.metrics import CALLBACKS
from services.payments.settings import PaymentsSettings
from services.payments.state import InFlight
from shared.db import database_busy, database_unavailable
from shared.errors import NotFound
from shared.http import problem

log = logging.getLogger("noria.payments.callbacks")

router = APIRouter(tags=["mobile-money callbacks"])


@router.put("/v1/mobile-money/{provider}/callbacks",
            response_model=CollectionCallbackOut | PayoutCallbackOut,
            operation_id="provider_callback_put",
            summary="A signed callback from a mobile-money provider (PUT, as GSMA sends)")
@router.post("/v1/mobile-money/{provider}/callbacks",
             response_model=CollectionCallbackOut | PayoutCallbackOut,
             operation_id="provider_callback_post",
             summary="A signed callback from a mobile-money provider")
async def callback(provider: str, request: Request) -> Any:
    s = settings(request)
    in_flight = callbacks_in_flight(request)
    loop = asyncio.get_running_loop()
    limit = s.callback_max_in_flight
    if limit and in_flight.count >= limit:
        # Past the knee: refuse at once, before any work, rather than queue without
        # bound; providers send the callback again after Retry-After.
        CALLBACKS.labels(provider, "shed").inc()
        return _come_back_later(s, in_flight, loop.time(), "Too many callbacks in flight",
                                f"{in_flight.count} callbacks are being handled")
    in_flight.count += 1
    try:
        return await _handle(provider, request)
    except Exception as exc:
        if not (database_unavailable(exc) or database_busy(exc)):
            raise
        # no database connection free in time (or a statement timed out): refused like
        # the admission bound, told to come back when the queue may have drained
        log.warning("%s callback refused, the database is busy: %s: %s", provider,
                    type(exc).__name__, exc)
        CALLBACKS.labels(provider, "database_busy").inc()
        return _come_back_later(s, in_flight, loop.time(), "Service unavailable",
                                "the database is too busy to take the callback now")
    finally:
        in_flight.count -= 1
        in_flight.done(loop.time())


def _come_back_later(s: PaymentsSettings, in_flight: InFlight, now: float, title: str,
                     why: str) -> Any:
    wait = retry_after_s(in_flight.count, in_flight.finished_per_s(now),
                         s.callback_retry_after_s, s.callback_retry_after_max_s)
    return problem(503, title, f"{why}; send it again after {wait} s",
                   type_="https://noria.dev/problems/overloaded",
                   headers={"Retry-After": str(wait)})


async def _handle(provider: str, request: Request) -> Any:
    s = settings(request)
    cfg = s.provider(provider)
    client = providers(request).get(provider)
    if cfg is None or client is None:
        raise NotFound(f"no mobile-money provider named {provider!r}", field="provider")
    raw = await request.body()
    h = request.headers
    try:
        verify([secret.get_secret_value() for secret in cfg.callback_secrets],
               h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature"),
               raw, time.time(), s.webhook_tolerance_s)
    except SignatureRejected as exc:
        CALLBACKS.labels(provider, "bad_signature").inc()
        log.warning("%s callback refused: %s", provider, exc.detail)
        return problem(401, exc.title, exc.detail,
                       type_="https://noria.dev/problems/webhook_rejected",
                       errors=[{"field": exc.field, "message": exc.detail}])
    try:
        outcome = await handlers.handle(runtime(request), s, provider, client,
                                        h["webhook-id"], raw)
    except handlers.ProviderUnavailable as exc:
        return problem(503, exc.title, exc.detail, headers={"Retry-After": "5"})
    CALLBACKS.labels(provider, outcome.status).inc()
    if isinstance(outcome, handlers.CollectionOutcome):
        return CollectionCallbackOut(status=outcome.status, payment_id=outcome.payment_id)
    return PayoutCallbackOut(status=outcome.status, payout_id=outcome.payout_id)
