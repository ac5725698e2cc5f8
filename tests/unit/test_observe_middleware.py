"""The platform's HTTP middleware: the correlation id a caller sees and a handler uses."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, HTTPException

from shared import context
from shared.app import ObserveMiddleware
from shared.telemetry import HTTP_LATENCY


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str | None]:
        if thing_id == "missing":
            raise HTTPException(404, "no such thing")
        return {"seen": context.correlation_id.get()}

    app.add_middleware(ObserveMiddleware, service="observe-test")
    return app


async def _get(path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path, headers=headers or {})


async def test_the_callers_correlation_id_reaches_the_handler_and_comes_back() -> None:
    resp = await _get("/things/1", {"X-Correlation-ID": "corr-amina-42"})
    assert resp.json() == {"seen": "corr-amina-42"}
    assert resp.headers.get_list("x-correlation-id") == ["corr-amina-42"]


async def test_a_request_without_one_gets_a_fresh_id_used_by_the_handler() -> None:
    first, second = await _get("/things/1"), await _get("/things/1")
    assert first.json()["seen"] == first.headers["x-correlation-id"]
    assert first.headers["x-correlation-id"] != second.headers["x-correlation-id"]


async def test_errors_carry_the_id_and_are_counted_under_the_route_template() -> None:
    def count() -> float:
        return HTTP_LATENCY.labels("observe-test", "GET", "/things/{thing_id}",
                                   "404")._sum.get()  # type: ignore[attr-defined]

    before = count()
    resp = await _get("/things/missing", {"X-Correlation-ID": "corr-404"})
    assert resp.status_code == 404
    assert resp.headers["x-correlation-id"] == "corr-404"
    assert count() > before
