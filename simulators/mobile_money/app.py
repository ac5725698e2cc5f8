"""A mobile-money provider for development and tests (GSMA Mobile Money API v1.2 style).

API (what a real provider offers):
- ``POST /transactions/type/{disbursement}`` — ``X-CorrelationID`` (UUID,
  idempotency key), ``X-Callback-URL``; ``202`` request state; the final
  transaction is PUT to the callback URL, signed (Standard Webhooks).
- ``GET /requeststates/{serverCorrelationId}``, ``GET /responses/{clientCorrelationId}``,
  ``GET /transactions/{transactionReference}``; ``GET /transactions?clientCorrelationId=…``
  or ``?requestingOrganisationTransactionReference=…`` (a list).

Simulation controls (``/sim``): wallets, cash-in, client-initiated collections,
the daily statement, callback delivery log, and the behaviour (latency, failure
rate, timeouts, lost and duplicated callbacks, and real providers' bad habits:
executing without answering, answering late, ignoring expiry, calling back before
answering, a status API that denies what the statement lists), globally or per
msisdn. See ``simulators/mobile_money/README.md``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import datetime as dt
import hashlib
import hmac
import io
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from simulators.mobile_money.callbacks import CallbackClient, CallbackError
from simulators.mobile_money.state import Behaviour, RequestState, Transaction, World

log = logging.getLogger("noria.sim.mobile_money")
_AMOUNT = re.compile(r"^\d{1,13}(\.\d{1,2})?$")
_MSISDN = re.compile(r"^\+[1-9]\d{7,14}$")


def _amount(value: Any) -> Decimal:
    if not isinstance(value, str) or not _AMOUNT.match(value.strip()):
        raise ValueError('amount must be a decimal string such as "500.00"')
    amount = Decimal(value.strip()).quantize(Decimal("0.01"))
    if amount <= 0:
        raise ValueError("amount must be greater than zero")
    return amount


def _msisdn(value: Any) -> str:
    if not isinstance(value, str) or not _MSISDN.match(value):
        raise ValueError("msisdn must be in E.164 form, e.g. +212612345678")
    return value


SimAmount = Annotated[Decimal, BeforeValidator(_amount)]
SimMsisdn = Annotated[str, BeforeValidator(_msisdn)]


class CollectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    msisdn: SimMsisdn
    amount: SimAmount
    reference: str = Field(min_length=1, max_length=100)
    currency: str = "MAD"


class CashIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    msisdn: SimMsisdn
    amount: SimAmount


class ConfigChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    msisdn: SimMsisdn | None = None
    latency_s: float | None = Field(default=None, ge=0)
    processing_delay_s: float | None = Field(default=None, ge=0)
    failure_rate: float | None = Field(default=None, ge=0, le=1)
    timeout: bool | None = None
    lose_callbacks: bool | None = None
    duplicate_callbacks: bool | None = None
    callback_attempts: int | None = Field(default=None, ge=1, le=20)
    execute_without_answer: bool | None = None
    answer_delay_s: float | None = Field(default=None, ge=0)
    honours_expiry: bool | None = None
    callback_before_answer: bool | None = None
    duplicate_delay_s: float | None = Field(default=None, ge=0)
    status_unknown_s: float | None = Field(default=None, ge=0)
    account_status: Literal["auto", "available", "unavailable", "unknown"] | None = None
    lookup_unanswered: bool | None = None
    collection_callback_url: str | None = None
    statement_tz: str | None = None
    hang_s: float | None = Field(default=None, gt=0)
    reset: bool = False


def _error(status: int, category: str, code: str, description: str) -> JSONResponse:
    return JSONResponse({"errorCategory": category, "errorCode": code,
                         "errorDescription": description}, status_code=status)


def _secret_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(_secret_key(secret), f"{msg_id}.{timestamp}.".encode() + body,
                   hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def _retry_delay(retry_after: str | None, attempt: int, jitter: float) -> float:
    """Seconds before attempt number ``attempt`` (2, 3, …): at least the receiver's
    Retry-After (seconds, at most a minute), else 0.5 s doubling per attempt up to
    30 s; stretched by up to ``jitter`` (0…1) of itself, so that callbacks refused
    together do not all come back in the same instant."""
    base = min(0.5 * 2.0 ** (attempt - 2), 30.0)
    if retry_after is not None:
        try:
            base = min(max(float(retry_after), 0.0), 60.0)
        except ValueError:
            pass
    return base * (1.0 + jitter)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _zone(name: str) -> str | None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


_CSV_COLUMNS = ("transactionReference", "type", "purpose", "status", "amount", "currency",
                "msisdn", "requestReference", "clientCorrelationId", "serverCorrelationId",
                "createdAt", "completedAt")


def _csv(entries: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(entries)
    return out.getvalue()


def create_app(world: World) -> FastAPI:
    tasks: set[asyncio.Task[Any]] = set()
    http = CallbackClient(timeout_s=10.0)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            for task in list(tasks):
                task.cancel()
            await http.aclose()

    app = FastAPI(title="Noria mobile-money simulator", version="0.1.0",
                  description=__doc__ or "", lifespan=lifespan)
    app.state.world = world

    def spawn(coro: Any) -> None:
        task = asyncio.create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def attempt(url: str, body: bytes, method: str, reference: str, msg_id: str,
                      number: int) -> dict[str, Any]:
        ts = int(time.time())  # each attempt signed afresh, under the same webhook-id
        headers = {"content-type": "application/json", "webhook-id": msg_id,
                   "webhook-timestamp": str(ts),
                   "webhook-signature": sign(world.callback_secret, msg_id, ts, body)}
        record: dict[str, Any] = {"reference": reference, "url": url, "method": method,
                                  "headers": headers, "body": body.decode(), "lost": False,
                                  "attempt": number}
        retry_after: str | None = None
        try:
            answer = await http.request(method, url, body, headers)
            record.update(status=answer.status, response=answer.text[:500])
            retry_after = answer.headers.get("retry-after")
        except CallbackError as exc:
            record.update(status=None, response=str(exc))
        world.deliveries.append(record)
        record["retry_after"] = retry_after
        return record

    def must_retry(status: int | None) -> bool:
        return status is None or status >= 500

    async def retry(url: str, body: bytes, method: str, reference: str, msg_id: str,
                    retry_after: str | None, attempts: int) -> None:
        """As providers do: a callback refused with 5xx (or unanswered) is sent again later,
        after the receiver's ``Retry-After`` if it gave one, else with a growing backoff."""
        for number in range(2, attempts + 1):
            await asyncio.sleep(_retry_delay(retry_after, number, world.rng.random()))
            record = await attempt(url, body, method, reference, msg_id, number)
            if not must_retry(record["status"]):
                return
            retry_after = record["retry_after"]
        log.warning("callback %s for %s: gave up after %d attempts", msg_id, reference,
                    attempts)

    async def report(url: str, body: bytes, method: str, reference: str,
                     behaviour: Behaviour) -> dict[str, Any]:
        """One report of a transaction: a fresh webhook-id, retried on 5xx/no answer."""
        msg_id = f"msg_{uuid.uuid4().hex}"
        record = await attempt(url, body, method, reference, msg_id, 1)
        if must_retry(record["status"]) and behaviour.callback_attempts > 1:
            spawn(retry(url, body, method, reference, msg_id, record["retry_after"],
                        behaviour.callback_attempts))
        return {"webhook_id": msg_id, "status": record["status"],
                "response": record["response"]}

    async def report_later(url: str, body: bytes, method: str, reference: str,
                           behaviour: Behaviour) -> None:
        await asyncio.sleep(behaviour.duplicate_delay_s)
        await report(url, body, method, reference, behaviour)

    async def deliver(url: str, resource: dict[str, Any], method: str, reference: str,
                      behaviour: Behaviour) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        if behaviour.lose_callbacks or behaviour.execute_without_answer:
            world.deliveries.append({"reference": reference, "url": url, "lost": True})
            return results
        body = orjson.dumps(resource)
        results.append(await report(url, body, method, reference, behaviour))
        if behaviour.duplicate_callbacks:  # the same transaction again, another webhook-id
            if behaviour.duplicate_delay_s > 0:
                spawn(report_later(url, body, method, reference, behaviour))
            else:
                results.append(await report(url, body, method, reference, behaviour))
        return results

    async def process(state: RequestState, txn: Transaction, behaviour: Behaviour) -> None:
        await asyncio.sleep(behaviour.processing_delay_s)
        if behaviour.honours_expiry and state.expiry is not None and _now() > state.expiry:
            state.status, state.error = "failed", "request expired before execution"
        elif world.rng.random() < behaviour.failure_rate:
            state.status, state.error = "failed", "the recipient's wallet refused the transfer"
        else:
            state.status = "completed"
            wallet = world.wallet(txn.msisdn)
            wallet.balance += txn.amount
            if txn.purpose == "refund":
                wallet.refunds += txn.amount
            else:
                wallet.payouts += txn.amount
        txn.status = state.status
        txn.error = state.error
        txn.completed_at = _now()
        state.object_reference = txn.reference
        world.transactions[txn.reference] = txn
        if state.callback_url:
            if behaviour.answer_delay_s > 0 and not behaviour.execute_without_answer:
                await asyncio.sleep(behaviour.answer_delay_s)  # executed; told much later
            await deliver(state.callback_url, txn.resource(), "PUT", txn.reference, behaviour)

    async def hang(request: Request) -> JSONResponse:
        """No answer: hold the request open (``hang_s``) or until the caller gives up."""
        deadline = time.monotonic() + world.hang_s
        while time.monotonic() < deadline:
            if await request.is_disconnected():
                break
            await asyncio.sleep(min(0.5, max(deadline - time.monotonic(), 0.0)))
        return _error(504, "internal", "noAnswer", "the provider never answered")

    # -- the GSMA-style API -------------------------------------------------------
    @app.post("/transactions/type/{txn_type}", status_code=202)
    async def create_transaction(
        txn_type: str, request: Request,
        x_correlation_id: Annotated[str | None, Header(alias="X-CorrelationID")] = None,
        x_callback_url: Annotated[str | None, Header(alias="X-Callback-URL")] = None,
    ) -> JSONResponse:
        if txn_type != "disbursement":
            return _error(400, "validation", "formatError", f"unsupported type {txn_type}")
        try:
            cid = str(uuid.UUID(x_correlation_id or ""))
        except ValueError:
            return _error(400, "validation", "formatError", "X-CorrelationID must be a UUID")
        raw = await request.body()
        try:
            body = orjson.loads(raw)
            amount = _amount(body.get("amount"))
            msisdn = _msisdn(next(p["value"] for p in body["creditParty"]
                                  if p.get("key") == "msisdn"))
            meta = {m.get("key"): m.get("value") for m in body.get("metadata", []) or []}
            expiry = dt.datetime.fromisoformat(meta["expiry"]) if meta.get("expiry") else None
        except (ValueError, KeyError, StopIteration, TypeError, AttributeError) as exc:
            return _error(400, "validation", "formatError", f"invalid request: {exc}")
        behaviour = world.behaviour(msisdn)
        if behaviour.timeout:
            await asyncio.sleep(3600)  # never answers; nothing is recorded
        await asyncio.sleep(behaviour.latency_s)
        digest = hashlib.sha256(raw).hexdigest()
        existing = world.by_client_id.get(cid)
        if existing is not None:
            state = world.requests[existing]
            if state.hidden(_now()):  # the API does not know it yet: no answer at all
                return await hang(request)
            if state.body_hash != digest:
                return _error(409, "identification", "duplicateRequest",
                              "X-CorrelationID was already used for another request")
            return JSONResponse(state.view(), status_code=202)
        if behaviour.honours_expiry and expiry is not None and _now() > expiry:
            return _error(400, "businessRule", "requestExpired",
                          f"the request expired at {expiry.isoformat()}")
        purpose = "refund" if meta.get("purpose") == "refund" else "disbursement"
        now = _now()
        hidden_until = (now + dt.timedelta(seconds=behaviour.status_unknown_s)
                        if behaviour.status_unknown_s > 0 else None)
        state = RequestState(str(uuid.uuid4()), cid, digest, "pending", x_callback_url, expiry,
                             hidden_until=hidden_until)
        txn = Transaction(world.new_reference(), "disbursement", purpose, amount,
                          str(body.get("currency", "MAD")), msisdn,
                          str(body.get("requestingOrganisationTransactionReference", "")),
                          "pending", now, client_correlation_id=cid,
                          server_correlation_id=state.server_correlation_id,
                          hidden_until=hidden_until)
        world.requests[state.server_correlation_id] = state
        world.by_client_id[cid] = state.server_correlation_id
        accepted = JSONResponse(state.view(), status_code=202)  # the answer as of now
        if behaviour.callback_before_answer:
            await process(state, txn, behaviour)  # executed and called back, then answered
            return accepted
        spawn(process(state, txn, behaviour))
        if behaviour.execute_without_answer:
            return await hang(request)
        if behaviour.answer_delay_s > 0:
            await asyncio.sleep(behaviour.answer_delay_s)
        return accepted

    @app.get("/accounts/{identifier_type}/{identifier}/status")
    async def account_status(identifier_type: str, identifier: str,
                             request: Request) -> JSONResponse:
        """Can this account receive money? (GSMA account status: ``available`` or
        ``unavailable``; 404 with an identification error when there is no such account.)
        A wallet whose payouts all fail (``failure_rate`` 1, as a refusing wallet is set up)
        is ``unavailable`` unless ``account_status`` says otherwise."""
        if identifier_type != "msisdn":
            return _error(400, "validation", "formatError",
                          f"unsupported identifier type {identifier_type}")
        try:
            msisdn = _msisdn(identifier)
        except ValueError as exc:
            return _error(400, "validation", "formatError", str(exc))
        behaviour = world.behaviour(msisdn)
        await asyncio.sleep(behaviour.latency_s)
        world.lookups.append(msisdn)
        if behaviour.lookup_unanswered:
            return await hang(request)
        status = behaviour.account_status
        if status == "auto":
            status = "unavailable" if behaviour.failure_rate >= 1.0 else "available"
        if status == "unknown":
            return _error(404, "identification", "accountNotFound", "no such account")
        return JSONResponse({"accountStatus": status,
                             "subStatus": "active" if status == "available" else "blocked"})

    @app.get("/requeststates/{server_correlation_id}")
    async def request_state(server_correlation_id: str) -> JSONResponse:
        await asyncio.sleep(world.default.latency_s)
        state = world.requests.get(server_correlation_id)
        if state is None or state.hidden(_now()):
            return _error(404, "identification", "requestStateNotFound", "no such request")
        return JSONResponse(state.view())

    @app.get("/responses/{client_correlation_id}")
    async def response(client_correlation_id: str) -> JSONResponse:
        await asyncio.sleep(world.default.latency_s)
        scid = world.by_client_id.get(client_correlation_id)
        if scid is None or world.requests[scid].hidden(_now()):
            return _error(404, "identification", "correlationIdNotFound",
                          "no request with this X-CorrelationID")
        state = world.requests[scid]
        if state.status == "completed" and state.object_reference:
            return JSONResponse({"link": f"/transactions/{state.object_reference}"})
        return JSONResponse({"link": f"/requeststates/{scid}"})

    @app.get("/transactions/{reference}")
    async def transaction(reference: str) -> JSONResponse:
        await asyncio.sleep(world.default.latency_s)
        txn = world.transactions.get(reference)
        if txn is None or txn.hidden(_now()):
            return _error(404, "identification", "transactionNotFound", "no such transaction")
        return JSONResponse(txn.resource())

    @app.get("/transactions")
    async def find_transactions(
        client_correlation_id: Annotated[
            str | None, Query(alias="clientCorrelationId", max_length=100)] = None,
        request_reference: Annotated[
            str | None, Query(alias="requestingOrganisationTransactionReference",
                              max_length=200)] = None,
    ) -> JSONResponse:
        """Executed transactions by our correlation id or by our request reference
        (what a status query by our own identifiers finds); ``[]`` when none."""
        await asyncio.sleep(world.default.latency_s)
        if client_correlation_id is None and request_reference is None:
            return _error(400, "validation", "formatError", "give clientCorrelationId or "
                          "requestingOrganisationTransactionReference")
        now = _now()
        found = [t.resource() for t in world.transactions.values()
                 if not t.hidden(now) and t.type != "cashin"
                 and (client_correlation_id is None
                      or t.client_correlation_id == client_correlation_id)
                 and (request_reference is None or (
                     t.type == "disbursement" and t.account == request_reference))]
        return JSONResponse(found)

    # -- simulation controls --------------------------------------------------------
    @app.post("/sim/cash-in", status_code=201)
    async def cash_in(body: CashIn) -> dict[str, Any]:
        wallet = world.wallet(body.msisdn)
        wallet.balance += body.amount
        wallet.deposits += body.amount
        txn = Transaction(world.new_reference(), "cashin", "cashin", body.amount, "MAD",
                          body.msisdn, None, "completed", _now(), _now())
        world.transactions[txn.reference] = txn
        return {"transactionReference": txn.reference, "wallet": wallet.view()}

    @app.post("/sim/collections", status_code=201)
    async def collection(body: CollectionRequest) -> JSONResponse:
        behaviour = world.behaviour(body.msisdn)
        await asyncio.sleep(behaviour.latency_s)
        wallet = world.wallet(body.msisdn)
        if wallet.balance < body.amount:
            return _error(422, "businessRule", "insufficientFunds",
                          f"wallet {body.msisdn} holds {wallet.balance}, not {body.amount}")
        wallet.balance -= body.amount
        wallet.collections += body.amount
        now = _now()
        txn = Transaction(world.new_reference(), "merchantpay", "collection", body.amount,
                          body.currency, body.msisdn, body.reference, "completed", now, now)
        world.transactions[txn.reference] = txn
        callbacks = await deliver(world.collection_callback_url, txn.resource(), "POST",
                                  txn.reference, behaviour)
        return JSONResponse({"transactionReference": txn.reference, "status": "completed",
                             "wallet": wallet.view(), "callbacks": callbacks},
                            status_code=201)

    @app.get("/sim/wallets/{msisdn}")
    async def wallet(msisdn: str) -> dict[str, Any]:
        return world.wallet(msisdn).view()

    @app.get("/sim/statements/{day}", response_model=None)
    async def statement(day: dt.date, tz: str | None = None,
                        format: Literal["json", "csv"] = "json") -> Response:
        zone = _zone(tz or world.statement_tz)
        if zone is None:
            return _error(400, "validation", "formatError", f"unknown time zone {tz!r}")
        entries = world.statement(day, zone)
        if format == "csv":
            return PlainTextResponse(_csv(entries), media_type="text/csv", headers={
                "Content-Disposition":
                    f'attachment; filename="{world.provider}-{day.isoformat()}.csv"'})
        return JSONResponse({"provider": world.provider, "date": day.isoformat(),
                             "timezone": zone, "generatedAt": _now().isoformat(),
                             "count": len(entries), "entries": entries})

    @app.get("/sim/callbacks")
    async def callbacks(reference: str | None = None) -> list[dict[str, Any]]:
        return [d for d in world.deliveries if reference is None or d["reference"] == reference]

    @app.get("/sim/config")
    async def get_config() -> dict[str, Any]:
        return {"default": world.default.__dict__,
                "per_msisdn": {k: v.__dict__ for k, v in world.per_msisdn.items()},
                "collection_callback_url": world.collection_callback_url,
                "statement_tz": world.statement_tz, "hang_s": world.hang_s}

    @app.post("/sim/config", response_model=None)
    async def set_config(change: ConfigChange) -> dict[str, Any] | JSONResponse:
        if change.statement_tz is not None and _zone(change.statement_tz) is None:
            return _error(400, "validation", "formatError",
                          f"unknown time zone {change.statement_tz!r}")
        values = change.model_dump(exclude={"msisdn", "collection_callback_url", "reset",
                                            "statement_tz", "hang_s"})
        if change.msisdn is not None:
            # a reset msisdn starts again from the world's defaults (env included)
            base = world.startup if change.reset else world.behaviour(change.msisdn)
            world.per_msisdn[change.msisdn] = base.merged(values)
        else:
            world.default = (world.startup if change.reset else world.default).merged(values)
        if change.collection_callback_url:
            world.collection_callback_url = change.collection_callback_url
        if change.statement_tz is not None:
            world.statement_tz = change.statement_tz
        if change.hang_s is not None:
            world.hang_s = change.hang_s
        return await get_config()

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/health/ready")
    async def ready() -> dict[str, Any]:
        return {"ready": True, "checks": {}}

    return app
