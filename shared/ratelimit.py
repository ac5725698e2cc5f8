"""Rate limits per partner: a token bucket per OAuth2 client on partner and wallet routes.

Every route that checks scopes (``shared.auth.require``) takes one token from the
bucket of the caller's client (``azp``; the ``partner_id`` if a token has none) when the
caller is a partner or a wallet, i.e. a token without ``tenant:all``. Operators are not
limited here. An empty bucket answers ``429`` problem+json with ``Retry-After`` (whole
seconds until a token is back); another partner's bucket is untouched.

The rate and burst are per client: ``rate_limits`` (JSON, ``{"<client id or partner id>":
{"rate_per_s": 5, "burst": 10}}``) overrides the default ``rate_limit_per_s`` /
``rate_limit_burst`` of the settings. Buckets live in the process: with N replicas a
partner gets up to N times its rate, which the gateway in front caps if it matters.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shared.http import problem


@dataclass(frozen=True)
class Rate:
    rate_per_s: float
    burst: float


class RateLimited(Exception):
    def __init__(self, client: str, retry_after_s: float) -> None:
        super().__init__(client)
        self.client = client
        self.retry_after_s = retry_after_s


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets by client id; thread-safe, O(1) per request."""

    MAX_BUCKETS = 100_000

    def __init__(self, default: Rate, per_client: dict[str, Rate] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.default = default
        self.per_client = dict(per_client or {})
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def rate_for(self, client: str, partner_id: str | None = None) -> Rate:
        return (self.per_client.get(client)
                or (self.per_client.get(partner_id) if partner_id else None)
                or self.default)

    def set_rate(self, client: str, rate: Rate) -> None:
        with self._lock:
            self.per_client[client] = rate
            self._buckets.pop(client, None)

    def take(self, client: str, partner_id: str | None = None) -> None:
        """Take one token or raise :class:`RateLimited`."""
        rate = self.rate_for(client, partner_id)
        if rate.rate_per_s <= 0:
            return  # unlimited
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                if len(self._buckets) >= self.MAX_BUCKETS:
                    self._buckets.clear()
                bucket = self._buckets[client] = _Bucket(rate.burst, now)
            refill = (now - bucket.updated) * rate.rate_per_s
            bucket.tokens = min(rate.burst, bucket.tokens + refill)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = (1.0 - bucket.tokens) / rate.rate_per_s
        raise RateLimited(client, wait)


def limiter_from(settings: object) -> RateLimiter:
    """The limiter of a settings object with ``rate_limit_per_s``, ``rate_limit_burst`` and
    ``rate_limits``."""
    per = {client: Rate(float(v.get("rate_per_s", 0)), float(v.get("burst", 1)))
           for client, v in getattr(settings, "rate_limits", {}).items()}
    return RateLimiter(Rate(float(getattr(settings, "rate_limit_per_s", 0.0)),
                            float(getattr(settings, "rate_limit_burst", 1.0))), per)


def install_rate_limit(app: FastAPI, limiter: RateLimiter) -> None:
    app.state.rate_limiter = limiter

    async def on_limited(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RateLimited)
        retry = max(1, math.ceil(exc.retry_after_s))
        return problem(429, "Too Many Requests",
                       f"client {exc.client} is above its rate; retry in {retry}s",
                       headers={"Retry-After": str(retry)})

    app.add_exception_handler(RateLimited, on_limited)
