"""The mobile-money provider adapter: GSMA Mobile Money API v1.2 conventions.

- ``POST /transactions/type/disbursement`` with ``X-CorrelationID`` (our
  idempotency key) and ``X-Callback-URL``; ``202`` answers a request-state
  object ``{serverCorrelationId, status, notificationMethod, objectReference}``.
- ``GET /requeststates/{serverCorrelationId}``: polling when no callback came.
- ``GET /responses/{clientCorrelationId}``: recover the response we lost.
- ``GET /transactions/{transactionReference}``: the status query that confirms
  a collection callback before anything is credited.
- ``GET /accounts/msisdn/{msisdn}/status``: the account-holder status lookup (payee
  validation before a group's payouts): ``accountStatus`` ``available`` or
  ``unavailable``; a GSMA ``identification`` error (404) means no such account.

No call here happens inside a database transaction. The HTTP client is aiohttp (one
session per provider): httpx cost 4 to 13 times its client CPU per call
(``python -m bench.provider_http``). A call that gets no usable answer — a timeout, a refused,
reset or closed connection, a broken answer — raises :class:`ProviderUnanswered`
(what the provider did is in doubt), never an HTTP library's own error.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp

from services.payments.domain.payouts import ProviderView, Seen
from services.payments.settings import ProviderConfig
from shared.money import format_amount

log = logging.getLogger("noria.payments.provider")


@dataclass(frozen=True)
class ProviderTransaction:
    reference: str
    status: str
    type: str
    amount: Decimal
    currency: str
    debit_msisdn: str | None
    credit_account: str | None


def party(parties: Any, key: str) -> str | None:
    if not isinstance(parties, list):
        return None
    for p in parties:
        if isinstance(p, dict) and p.get("key") == key:
            value = p.get("value")
            return str(value) if value is not None else None
    return None


def view_of_state(state: dict[str, Any]) -> ProviderView:
    """A request-state object → what it tells us about the payout."""
    status = str(state.get("status", "")).lower()
    scid = state.get("serverCorrelationId")
    ref = state.get("objectReference")
    if status == "completed":
        return ProviderView(Seen.COMPLETED, reference=ref, server_correlation_id=scid)
    if status == "failed":
        err = state.get("errorReference") or {}
        reason = err.get("errorDescription") if isinstance(err, dict) else None
        return ProviderView(Seen.FAILED, server_correlation_id=scid,
                            reason=str(reason or "the provider failed the request"))
    return ProviderView(Seen.PENDING, server_correlation_id=scid)


@dataclass(frozen=True)
class PayeeView:
    """What the provider said about a payee: ``available``, ``unavailable`` (refused on
    its word) or ``unanswered`` (no word at all — in doubt, ask again)."""

    seen: str
    account_status: str | None = None
    reason: str = ""


def payee_view(status_code: int, body: Any) -> PayeeView:
    """An account-status answer → what it tells us (a 404 counts as a refusal only with
    the GSMA error object saying the account is unknown)."""
    if status_code == 200 and isinstance(body, dict):
        status = str(body.get("accountStatus", "")).lower()
        sub = body.get("subStatus")
        detail = f"accountStatus {status}" + (f" ({sub})" if sub else "")
        if status == "available":
            return PayeeView("available", status, detail)
        if status == "unavailable":
            return PayeeView("unavailable", status,
                             f"the provider reports the wallet unavailable: {detail}")
        return PayeeView("unanswered", None, f"unreadable account status {status!r}")
    if status_code == 404 and isinstance(body, dict) and str(
            body.get("errorCategory", "")).lower() == "identification":
        return PayeeView("unavailable", "unknown", "the provider knows no such wallet: "
                         f"{body.get('errorCode', '')} {body.get('errorDescription', '')}"
                         .strip())
    return PayeeView("unanswered", None, f"provider answered {status_code}")


class ProviderUnanswered(Exception):
    """No usable answer from the provider: no connection, a reset or closed one, no
    answer within ``request_timeout_s``, a broken answer — or, from
    :meth:`Answer.raise_for_status`, an answer that is not a success. Whatever was asked
    may or may not have been done: in doubt, never failed."""


class Answer:
    """A provider's answer, read whole."""

    __slots__ = ("content", "status_code")

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON (``ValueError`` if it is not)."""
        return json.loads(self.content)

    def raise_for_status(self) -> None:
        if not 200 <= self.status_code < 300:
            raise ProviderUnanswered(f"provider answered {self.status_code}")


class ProviderHttp:
    """One keep-alive HTTP session with one provider, for the process' life.

    ``request_timeout_s`` bounds getting a connection (from the pool or a new one) and
    each wait for the answer's bytes. Up to 128 connections; an idle one is dropped
    after 60 s (servers keep theirs 75 s: ``shared.app.server_options``, so we never
    send on one the server is closing). No proxy from the environment, no redirect
    followed. A status query (GET) whose connection is reset or closed before the answer
    is sent once more (aiohttp's retry of idempotent requests; asking again changes
    nothing); a payout request (POST) never is: its outcome is in doubt.
    """

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout_s,
                                              sock_connect=timeout_s, sock_read=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Created on first use, inside the event loop that uses it.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=128, limit_per_host=0,
                                             keepalive_timeout=60.0)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout,
                                                  trust_env=False)
        return self._session

    async def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                      json_body: Any = None, params: dict[str, str] | None = None) -> Answer:
        url = f"{self.base_url}/{path.lstrip('/')}"
        headers = headers or {}
        data: bytes | None = None
        if json_body is not None:
            # Compact UTF-8 JSON, no NaN (amounts are decimal strings): every resend of a
            # request is the same bytes.
            data = json.dumps(json_body, ensure_ascii=False, separators=(",", ":"),
                              allow_nan=False).encode("utf-8")
            headers = {**headers, "Content-Type": "application/json"}
        try:
            async with self._open().request(method, url, headers=headers, data=data,
                                            params=params, allow_redirects=False) as resp:
                return Answer(resp.status, await resp.read())
        except TimeoutError as exc:  # aiohttp's own timeouts are TimeoutErrors too
            raise ProviderUnanswered(f"no answer: timed out ({type(exc).__name__})") from exc
        except aiohttp.ClientError as exc:
            raise ProviderUnanswered(f"no answer: {type(exc).__name__}") from exc

    async def get(self, path: str, *, headers: dict[str, str] | None = None,
                  params: dict[str, str] | None = None) -> Answer:
        return await self.request("GET", path, headers=headers, params=params)

    async def post(self, path: str, *, json: Any,
                   headers: dict[str, str] | None = None) -> Answer:
        return await self.request("POST", path, headers=headers, json_body=json)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class ProviderClient:
    def __init__(self, name: str, config: ProviderConfig,
                 http: ProviderHttp | None = None) -> None:
        self.name = name
        self.config = config
        self.http = http or ProviderHttp(config.base_url, config.request_timeout_s)

    def _headers(self, correlation_id: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json",
                   "Date": dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")}
        if self.config.api_key is not None:
            headers["X-API-Key"] = self.config.api_key.get_secret_value()
        if correlation_id is not None:
            headers["X-CorrelationID"] = correlation_id
        return headers

    async def disburse(self, *, correlation_id: str, msisdn: str, amount: Decimal,
                       currency: str, callback_url: str, expiry: dt.datetime,
                       reference: str, purpose: str,
                       request_date: dt.datetime | None = None) -> ProviderView:
        """Send a payout request. Give the ``request_date`` fixed at the first send: with
        the same correlation id, every resend is then the same body byte for byte (a
        provider answers it with the first request's state, not a 409)."""
        body = {
            "amount": format_amount(amount), "currency": currency,
            "creditParty": [{"key": "msisdn", "value": msisdn}],
            "debitParty": [{"key": "accountid", "value": "noria"}],
            "requestingOrganisationTransactionReference": reference,
            "descriptionText": purpose,
            "requestDate": (request_date or dt.datetime.now(dt.UTC)).isoformat(),
            "metadata": [{"key": "expiry", "value": expiry.isoformat()},
                         {"key": "purpose", "value": purpose}],
        }
        headers = {**self._headers(correlation_id), "X-Callback-URL": callback_url}
        try:
            resp = await self.http.post("/transactions/type/disbursement", json=body,
                                        headers=headers)
        except ProviderUnanswered as exc:
            log.warning("%s: disbursement %s not answered: %r", self.name, correlation_id,
                        exc.__cause__ or exc)
            return ProviderView(Seen.UNREACHABLE, reason=str(exc))
        if resp.status_code in (200, 201, 202):
            data = resp.json()
            if "transactionReference" in data:  # 201: final resource
                status = str(data.get("transactionStatus", "completed")).lower()
                seen = Seen.COMPLETED if status == "completed" else Seen.FAILED
                return ProviderView(seen, reference=data["transactionReference"],
                                    reason=str(data.get("errorDescription", "")))
            return view_of_state(data)
        if resp.status_code == 409:  # correlation id already used: recover the response
            return await self.recover(correlation_id)
        if 400 <= resp.status_code < 500:
            return ProviderView(Seen.FAILED, reason=f"refused by the provider: "
                                f"{resp.status_code} {resp.text[:200]}")
        return ProviderView(Seen.UNREACHABLE, reason=f"provider error {resp.status_code}")

    async def account_status(self, msisdn: str) -> PayeeView:
        """``GET /accounts/msisdn/{msisdn}/status``: can this wallet receive money?"""
        try:
            resp = await self.http.get(f"/accounts/msisdn/{msisdn}/status",
                                       headers=self._headers())
        except ProviderUnanswered as exc:
            return PayeeView("unanswered", reason=str(exc))
        try:
            body: Any = resp.json()
        except ValueError:
            body = None
        return payee_view(resp.status_code, body)

    async def request_state(self, server_correlation_id: str) -> ProviderView:
        try:
            resp = await self.http.get(f"/requeststates/{server_correlation_id}",
                                       headers=self._headers())
        except ProviderUnanswered as exc:
            return ProviderView(Seen.UNREACHABLE, reason=str(exc))
        if resp.status_code == 404:
            return ProviderView(Seen.NOT_FOUND)
        if resp.status_code != 200:
            return ProviderView(Seen.UNREACHABLE, reason=f"provider error {resp.status_code}")
        return view_of_state(resp.json())

    async def recover(self, correlation_id: str) -> ProviderView:
        """``GET /responses/{clientCorrelationId}``, then follow its link."""
        try:
            resp = await self.http.get(f"/responses/{correlation_id}", headers=self._headers())
        except ProviderUnanswered as exc:
            return ProviderView(Seen.UNREACHABLE, reason=str(exc))
        if resp.status_code == 404:
            return ProviderView(Seen.NOT_FOUND)
        if resp.status_code != 200:
            return ProviderView(Seen.UNREACHABLE, reason=f"provider error {resp.status_code}")
        link = str(resp.json().get("link", ""))
        if link.startswith("/requeststates/"):
            return await self.request_state(link.removeprefix("/requeststates/"))
        if link.startswith("/transactions/"):
            try:
                txn = await self.transaction(link.removeprefix("/transactions/"))
            except ProviderUnanswered as exc:
                return ProviderView(Seen.UNREACHABLE, reason=str(exc))
            except (ValueError, KeyError) as exc:
                return ProviderView(Seen.UNREACHABLE, reason=f"no answer: {type(exc).__name__}")
            if txn is None:
                return ProviderView(Seen.UNREACHABLE, reason="linked transaction unreadable")
            seen = Seen.COMPLETED if txn.status == "completed" else (
                Seen.FAILED if txn.status == "failed" else Seen.PENDING)
            return ProviderView(seen, reference=txn.reference)
        return ProviderView(Seen.UNREACHABLE, reason=f"unexpected response link {link!r}")

    async def transaction(self, reference: str) -> ProviderTransaction | None:
        """The status query; None if the provider does not know the reference."""
        resp = await self.http.get(f"/transactions/{reference}", headers=self._headers())
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        data = resp.json()
        return ProviderTransaction(
            reference=str(data["transactionReference"]),
            status=str(data.get("transactionStatus", "")).lower(),
            type=str(data.get("type", "")),
            amount=Decimal(str(data["amount"])),
            currency=str(data.get("currency", "")),
            debit_msisdn=party(data.get("debitParty"), "msisdn"),
            credit_account=party(data.get("creditParty"), "accountid"),
        )

    async def statement(self, day: dt.date) -> list[dict[str, Any]]:
        resp = await self.http.get(f"/sim/statements/{day.isoformat()}",
                                   headers=self._headers())
        resp.raise_for_status()
        entries = resp.json().get("entries", [])
        return list(entries) if isinstance(entries, list) else []


class Providers:
    """One client per configured provider, created on first use, each with its one
    keep-alive session (:class:`ProviderHttp`) for the process' life."""

    def __init__(self, configs: dict[str, ProviderConfig]) -> None:
        self.configs = configs
        self._clients: dict[str, ProviderClient] = {}

    def get(self, name: str) -> ProviderClient | None:
        if name not in self.configs:
            return None
        if name not in self._clients:
            self._clients[name] = ProviderClient(name, self.configs[name])
        return self._clients[name]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.http.aclose()
        self._clients.clear()
