"""A provider that gives no answer leaves the outcome in doubt — never failed.

Real sockets on this machine stand in for a provider: one that takes the request and
never answers, one that resets the connection, one that closes it without a word, a
port nobody listens on, and one that answers (to see what our requests look like on
the wire). Payments' own provider client talks to them as it talks to a wallet.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import socket
import struct
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from services.payments.domain.payouts import Action, PayoutStatus, ProviderView, Seen, decide
from services.payments.handlers.collections import check_with_provider
from services.payments.providers.gsma import (
    ProviderClient,
    Providers,
    ProviderUnanswered,
)
from services.payments.settings import ProviderConfig

TIMEOUT_S = 0.5


@dataclass
class Request:
    head: bytes
    body: bytes

    @property
    def request_line(self) -> str:
        return self.head.split(b"\r\n", 1)[0].decode()

    @property
    def headers(self) -> dict[str, str]:
        lines = self.head.decode("latin-1").split("\r\n")[1:]
        pairs = (line.split(":", 1) for line in lines if ":" in line)
        return {k.strip().lower(): v.strip() for k, v in pairs}


@dataclass
class Provider:
    """A provider on a local port, behaving as ``mode`` says."""

    mode: str  # silent | reset | close | answer
    answer: bytes = b""
    got: list[Request] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    connections: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = int(Request(head, b"").headers.get("content-length", "0"))
                request = Request(head, await reader.readexactly(length))
                self.got.append(request)
                self.arrived.set()
                if self.mode == "silent":  # taken, never answered: wait for the caller to go
                    await reader.read()
                    return
                if self.mode == "reset":
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()  # RST: "connection reset by peer"
                    return
                if self.mode == "close":
                    return
                writer.write(self.answer)
                await writer.drain()
        finally:
            writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def provider(mode: str, answer: bytes = b"") -> AsyncIterator[Provider]:
    p = Provider(mode, answer)
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        await p.handle(reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    p.port = server.sockets[0].getsockname()[1]
    try:
        yield p
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


@contextlib.asynccontextmanager
async def client_of(url: str) -> AsyncIterator[ProviderClient]:
    providers = Providers({"p": ProviderConfig(base_url=url, request_timeout_s=TIMEOUT_S)})
    client = providers.get("p")
    assert client is not None
    try:
        yield client
    finally:
        await providers.close()


def a_closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed when the block ends: nobody listens


async def payout(client: ProviderClient, correlation_id: str | None = None) -> Seen:
    view = await client.disburse(
        correlation_id=correlation_id or str(uuid.uuid4()), msisdn="+212612345678",
        amount=Decimal("1250.50"), currency="MAD",
        callback_url="http://127.0.0.1:8103/v1/mobile-money/p/callbacks",
        expiry=dt.datetime(2026, 1, 2, 10, 0, tzinfo=dt.UTC), reference="saga-1",
        purpose="loan disbursement",
        request_date=dt.datetime(2026, 1, 2, 9, 58, tzinfo=dt.UTC))
    assert view.reason.startswith("no answer"), view
    deadline = dt.datetime(2026, 1, 2, 10, 0, tzinfo=dt.UTC)
    grace = dt.timedelta(seconds=1)
    # before the deadline we wait; after it, the payout is in doubt — never failed
    before = decide(PayoutStatus.PENDING, view, deadline - dt.timedelta(seconds=5), deadline,
                    grace)
    after = decide(PayoutStatus.PENDING, view, deadline + dt.timedelta(minutes=5), deadline,
                   grace)
    assert (before, after) == (Action.WAIT, Action.DOUBT)
    return view.seen


async def nothing_known(client: ProviderClient) -> None:
    """Every status query and lookup comes back "no answer", none "failed" or "unknown
    transaction"."""
    state = await client.request_state(str(uuid.uuid4()))
    assert state.seen is Seen.UNREACHABLE and state.reason.startswith("no answer")
    recovered = await client.recover(str(uuid.uuid4()))
    assert recovered.seen is Seen.UNREACHABLE
    assert (await client.account_status("+212612345678")).seen == "unanswered"
    with pytest.raises(ProviderUnanswered):
        await client.transaction("MP260102.0958.A00001")
    verdict = await check_with_provider(client, "MP260102.0958.A00001", loan_id="L-1",
                                        amount=Decimal("10.00"), currency="MAD",
                                        payer_msisdn=None)
    assert verdict.outcome == "unknown" and "could not be asked: no answer" in verdict.reason


async def test_a_provider_that_takes_the_request_and_never_answers_leaves_it_in_doubt() -> None:
    async with provider("silent") as p, client_of(p.url) as client:
        assert await payout(client) is Seen.UNREACHABLE
        assert len(p.got) == 1 and p.got[0].request_line.startswith("POST ")
        await nothing_known(client)


async def test_a_reset_connection_leaves_the_payout_in_doubt_and_it_is_not_resent() -> None:
    async with provider("reset") as p, client_of(p.url) as client:
        assert await payout(client) is Seen.UNREACHABLE
        # the payout request reached the provider once: nothing sent it again on its own
        assert [r.request_line.split()[0] for r in p.got] == ["POST"]
        await nothing_known(client)


async def test_a_connection_closed_without_an_answer_leaves_the_payout_in_doubt() -> None:
    async with provider("close") as p, client_of(p.url) as client:
        assert await payout(client) is Seen.UNREACHABLE
        assert len(p.got) == 1
        await nothing_known(client)


async def test_a_provider_nobody_listens_for_leaves_the_payout_in_doubt() -> None:
    async with client_of(f"http://127.0.0.1:{a_closed_port()}") as client:
        assert await payout(client) is Seen.UNREACHABLE
        await nothing_known(client)


def http_answer(status: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def small_payout(client: ProviderClient) -> ProviderView:
    return await client.disburse(
        correlation_id=str(uuid.uuid4()), msisdn="+212612345678", amount=Decimal("5"),
        currency="MAD", callback_url="http://127.0.0.1:8103/cb",
        expiry=dt.datetime(2026, 1, 2, tzinfo=dt.UTC), reference="s", purpose="p")


async def test_a_server_error_is_no_answer_and_a_refusal_is_a_failure() -> None:
    error = http_answer("503 Service Unavailable", b'{"errorCategory":"internal"}')
    async with provider("answer", error) as p, client_of(p.url) as client:
        view = await small_payout(client)
        assert view.seen is Seen.UNREACHABLE
        with pytest.raises(ProviderUnanswered):
            await client.transaction("MP1")
    refusal = http_answer("400 Bad Request", b'{"errorCategory":"validation"}')
    async with provider("answer", refusal) as p, client_of(p.url) as client:
        view = await small_payout(client)
        assert view.seen is Seen.FAILED and "400" in view.reason


async def test_a_payout_request_on_the_wire(monkeypatch: pytest.MonkeyPatch) -> None:
    """The amount travels as a decimal string, the resend is the same bytes, the
    correlation and callback headers are there, and no proxy from the environment is
    used; the two requests share one kept-alive connection."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    state = json.dumps({"serverCorrelationId": "s-1", "status": "pending",
                        "notificationMethod": "callback", "objectReference": "r-1"}).encode()
    async with provider("answer", http_answer("202 Accepted", state)) as p, \
            client_of(p.url + "/") as client:
        cid = str(uuid.uuid4())
        for _ in range(2):
            view = await client.disburse(
                correlation_id=cid, msisdn="+212612345678", amount=Decimal("1250.50"),
                currency="MAD", callback_url="http://127.0.0.1:8103/v1/mobile-money/p/cb",
                expiry=dt.datetime(2026, 1, 2, 10, 0, tzinfo=dt.UTC), reference="saga-1",
                purpose="loan disbursement",
                request_date=dt.datetime(2026, 1, 2, 9, 58, tzinfo=dt.UTC))
            assert (view.seen, view.server_correlation_id) == (Seen.PENDING, "s-1")
    first, again = p.got
    assert p.connections == 1
    assert first.request_line == "POST /transactions/type/disbursement HTTP/1.1"
    assert first.body == again.body
    body = json.loads(first.body)
    assert body["amount"] == "1250.50" and body["creditParty"] == [
        {"key": "msisdn", "value": "+212612345678"}]
    headers = first.headers
    assert headers["content-type"] == "application/json"
    assert headers["x-correlationid"] == cid
    assert headers["x-callback-url"] == "http://127.0.0.1:8103/v1/mobile-money/p/cb"
    assert headers["accept"] == "application/json" and "date" in headers
