"""One mobile-money simulator and one callback receiver, over real HTTP, for these tests.

Both run under uvicorn on free ports in the test's event loop: the simulator calls
the receiver back the way it calls payments. Each test uses its own msisdn and sets
the simulator's behaviour for that msisdn only (``POST /sim/config``), so the tests
share one simulator without seeing each other.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from standardwebhooks.webhooks import Webhook

from simulators.mobile_money.__main__ import DEV_CALLBACK_SECRET
from simulators.mobile_money.app import create_app
from simulators.mobile_money.state import World
from tests.rigs import free_port, serve
from tests.rigs import new_msisdn as new_msisdn  # the tests take it from here

T = TypeVar("T")



async def until(probe: Callable[[], Awaitable[T | None]], *, timeout_s: float = 10.0,
                what: str = "the fact") -> T:
    """Ask ``probe`` until it returns something (not None): waiting on a fact."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = await probe()
        if got is not None:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not observed within {timeout_s}s")
        await asyncio.sleep(0.05)


@dataclass
class Callback:
    method: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float  # time.monotonic() when it arrived


@dataclass
class Receiver:
    """Payments' place: records every callback, checks its signature, answers 200."""

    secret: str
    got: list[Callback] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def app(self) -> FastAPI:
        app = FastAPI()
        verifier = Webhook(self.secret)

        @app.api_route("/callbacks", methods=["PUT", "POST"])
        async def callback(request: Request) -> JSONResponse:
            raw = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            verifier.verify(raw, headers)  # a bad signature fails the test (500)
            async with self.changed:
                self.got.append(Callback(request.method, headers, orjson.loads(raw),
                                         time.monotonic()))
                self.changed.notify_all()
            return JSONResponse({"status": "accepted"})

        return app

    def of(self, reference: str) -> list[Callback]:
        return [c for c in self.got if c.body.get("transactionReference") == reference]

    async def wait(self, reference: str, count: int = 1,
                   timeout_s: float = 10.0) -> list[Callback]:
        async with self.changed:
            await asyncio.wait_for(
                self.changed.wait_for(lambda: len(self.of(reference)) >= count), timeout_s)
        return self.of(reference)


@dataclass
class Sim:
    http: httpx.AsyncClient
    world: World
    receiver: Receiver
    callback_url: str

    async def configure(self, msisdn: str, **behaviour: Any) -> None:
        resp = await self.http.post("/sim/config", json={"msisdn": msisdn, **behaviour})
        assert resp.status_code == 200, resp.text

    async def pay_out(self, msisdn: str, amount: str, *, correlation_id: str | None = None,
                      reference: str | None = None, expiry: dt.datetime | None = None,
                      timeout_s: float = 5.0) -> tuple[str, str, httpx.Response | None]:
        """POST a disbursement as payments does; (correlation id, request reference, the
        answer or None when none came within ``timeout_s``)."""
        cid = correlation_id or str(uuid.uuid4())
        ref = reference or f"saga-{uuid.uuid4().hex[:12]}"
        expiry = expiry or dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
        body = {"amount": amount, "currency": "MAD",
                "creditParty": [{"key": "msisdn", "value": msisdn}],
                "debitParty": [{"key": "accountid", "value": "noria"}],
                "requestingOrganisationTransactionReference": ref,
                "descriptionText": "loan disbursement",
                "metadata": [{"key": "expiry", "value": expiry.isoformat()},
                             {"key": "purpose", "value": "loan disbursement"}]}
        try:
            resp = await self.http.post(
                "/transactions/type/disbursement", content=orjson.dumps(body),
                headers={"X-CorrelationID": cid, "X-Callback-URL": self.callback_url,
                         "content-type": "application/json"},
                timeout=timeout_s)
        except httpx.TimeoutException:
            return cid, ref, None
        return cid, ref, resp

    async def status(self, cid: str) -> tuple[int, dict[str, Any] | None]:
        """The status query by our correlation id: (HTTP status, the transaction once
        the provider has one)."""
        resp = await self.http.get(f"/responses/{cid}")
        if resp.status_code != 200:
            return resp.status_code, None
        link = resp.json()["link"]
        if not link.startswith("/transactions/"):
            return 200, None
        txn = await self.http.get(link)
        return txn.status_code, txn.json() if txn.status_code == 200 else None

    async def completed(self, cid: str, timeout_s: float = 10.0) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            _, txn = await self.status(cid)
            return txn if txn and txn["transactionStatus"] == "completed" else None
        return await until(probe, timeout_s=timeout_s, what=f"{cid} completed")

    async def wallet(self, msisdn: str) -> dict[str, Any]:
        resp = await self.http.get(f"/sim/wallets/{msisdn}")
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    async def statement(self, day: dt.date, **params: str) -> dict[str, Any]:
        resp = await self.http.get(f"/sim/statements/{day.isoformat()}", params=params)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    async def listed(self, cid: str, day: dt.date | None = None) -> list[dict[str, Any]]:
        day = day or dt.datetime.now(dt.UTC).date()
        return [e for e in (await self.statement(day))["entries"]
                if e["clientCorrelationId"] == cid]


@pytest.fixture(scope="module")
async def sim() -> AsyncIterator[Sim]:
    receiver = Receiver(DEV_CALLBACK_SECRET)
    receiver_port, sim_port = free_port(), free_port()
    callback_url = f"http://127.0.0.1:{receiver_port}/callbacks"
    world = World(provider="sim", callback_secret=DEV_CALLBACK_SECRET,
                  collection_callback_url=callback_url, hang_s=30.0)
    async with serve(receiver.app(), receiver_port), serve(create_app(world), sim_port), \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim_port}", timeout=10) as http:
        yield Sim(http, world, receiver, callback_url)
