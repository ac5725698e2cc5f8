"""Calls to the services' HTTP APIs with the operator's own bearer token.

Every call returns a :class:`Reply` — never raises for an HTTP error — so a page
can show what it has and say plainly what a service could not give:
``unavailable`` (the service has no such endpoint), ``unreachable`` (no answer)
or a ``problem`` (the service refused, with its problem+json explanation).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

SERVICES = ("clients", "loans", "payments", "notifications", "savings")


class UpstreamUnauthorized(Exception):
    """A service refused the operator's token (expired or revoked): sign in again."""


@dataclass(frozen=True)
class Problem:
    status: int
    title: str
    detail: str
    type: str = "about:blank"
    errors: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_response(cls, resp: httpx.Response) -> Problem:
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            text = resp.text[:300] if resp.text else resp.reason_phrase
            return cls(status=resp.status_code, title=resp.reason_phrase, detail=text)
        errors = body.get("errors")
        detail = body.get("detail")
        if not isinstance(detail, str):
            detail = str(detail) if detail is not None else ""
        return cls(
            status=resp.status_code,
            title=str(body.get("title") or resp.reason_phrase),
            detail=detail,
            type=str(body.get("type") or "about:blank"),
            errors=[e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else [],
        )


@dataclass(frozen=True)
class Reply:
    service: str
    method: str
    path: str
    status: int
    data: Any = None
    problem: Problem | None = None
    error: str | None = None
    text: str = ""
    """The body when the service answered with text (a CSV statement), not JSON."""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def unreachable(self) -> bool:
        return self.status == 0

    @property
    def unavailable(self) -> bool:
        """The service does not offer this endpoint (no route, or not this method)."""
        if self.status == 405:
            return True
        return (self.status == 404 and self.problem is not None
                and self.problem.type == "about:blank" and self.problem.title == "Not Found")

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"

    def items(self) -> list[dict[str, Any]]:
        """The list a collection endpoint returned (bare list or ``{"items": [...]}``)."""
        data = self.data
        if isinstance(data, dict):
            for key in ("items", "data", "results"):
                if isinstance(data.get(key), list):
                    data = data[key]
                    break
        if isinstance(data, list):
            return [d for d in data if isinstance(d, dict)]
        return []

    def obj(self) -> dict[str, Any]:
        return self.data if self.ok and isinstance(self.data, dict) else {}


class Upstream:
    """One pooled HTTP client for the console; a call names the service and path."""

    def __init__(self, urls: dict[str, str], timeout_s: float,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.urls = urls
        self._client = httpx.AsyncClient(timeout=timeout_s, transport=transport)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(
        self, service: str, method: str, path: str, token: str | None, *,
        params: dict[str, Any] | None = None, json: Any = None,
        idempotency_key: str | None = None, allow_unauthorized: bool = False,
        accept: str = "application/json",
    ) -> Reply:
        headers = {"Accept": accept, "X-Correlation-ID": str(uuid.uuid4())}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        url = self.urls[service] + path
        try:
            resp = await self._client.request(method, url, params=clean or None, json=json,
                                              headers=headers)
        except httpx.HTTPError as exc:
            return Reply(service, method, path, 0, error=f"{type(exc).__name__}: {exc}")
        if resp.status_code == 401 and not allow_unauthorized:
            raise UpstreamUnauthorized(f"{service} refused the token")
        data: Any = None
        try:
            data = resp.json() if resp.content else None
        except ValueError:
            data = None
        problem = None if resp.is_success else Problem.from_response(resp)
        text = resp.text if resp.headers.get("content-type", "").startswith("text/") else ""
        return Reply(service, method, path, resp.status_code, data=data, problem=problem,
                     text=text)

    async def get(self, service: str, path: str, token: str | None,
                  params: dict[str, Any] | None = None) -> Reply:
        return await self.call(service, "GET", path, token, params=params)

    async def post(self, service: str, path: str, token: str | None, json: Any = None,
                   idempotency_key: str | None = None) -> Reply:
        return await self.call(service, "POST", path, token, json=json,
                               idempotency_key=idempotency_key)

    async def gather(self, *calls: Any) -> list[Reply]:
        results: list[Reply] = list(await asyncio.gather(*calls))
        return results

    async def readiness(self) -> dict[str, Reply]:
        names = list(SERVICES)
        replies = await asyncio.gather(*(
            self.call(n, "GET", "/health/ready", None, allow_unauthorized=True) for n in names))
        return dict(zip(names, replies, strict=True))
