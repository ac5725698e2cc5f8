"""A client that comes back to an idle keep-alive connection finds it still open.

When the server dropped idle connections at 5 s (uvicorn's default, the same as httpx's own
idle limit), a wallet or a proxy reusing a connection at that moment sent its request on a
closing socket and got no answer at all — for a payment, an answer lost."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI, Request

from shared.app import KEEP_ALIVE_S
from tests.rigs import free_port, serve

IDLE_S = 6.0  # longer than uvicorn's default keep-alive, well within ours


async def test_an_idle_connection_outlives_the_clients_own_idle_limit() -> None:
    assert KEEP_ALIVE_S > 60, "an ingress keeps its upstream connections idle for 60 s"
    app = FastAPI()

    @app.get("/who")
    async def who(request: Request) -> dict[str, int]:
        assert request.client is not None
        return {"port": request.client.port}

    port = free_port()
    async with serve(app, port):
        limits = httpx.Limits(keepalive_expiry=KEEP_ALIVE_S - 10)
        async with httpx.AsyncClient(limits=limits, timeout=5) as http:
            first = (await http.get(f"http://127.0.0.1:{port}/who")).json()["port"]
            await asyncio.sleep(IDLE_S)
            second = (await http.get(f"http://127.0.0.1:{port}/who")).json()["port"]
    assert second == first, "the server closed the idle connection; the client had to reconnect"
