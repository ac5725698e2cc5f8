"""Rate limits per partner and who reads /metrics, on a small app with the platform's
auth (tokens of an in-memory issuer)."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from shared.auth import ROLE_SCOPES, TokenVerifier, require
from shared.http import install_error_handlers
from shared.metrics_access import check_metrics_access
from shared.ratelimit import Rate, RateLimiter, install_rate_limit
from tests.identity import LocalIssuer

ISSUER = LocalIssuer(realm="access", base_url="http://issuer.test")


def verifier() -> TokenVerifier:
    async def fetch(url: str) -> dict[str, Any]:
        return ISSUER.jwks()

    return TokenVerifier({ISSUER.issuer: ISSUER.jwks_url}, fetch=fetch)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def bearer(**claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {ISSUER.mint(**claims)}"}


def test_a_partner_above_its_rate_gets_429_and_another_partner_does_not() -> None:
    clock = Clock()
    app = FastAPI()
    app.state.token_verifier = verifier()
    install_error_handlers(app)
    install_rate_limit(app, RateLimiter(Rate(100, 100), {"partner-busy": Rate(1, 3)},
                                        clock=clock))

    @app.get("/v1/things", dependencies=[require("clients:read")])
    async def things() -> dict[str, str]:
        return {"ok": "yes"}

    client = TestClient(app)
    busy = bearer(sub="b", scopes=ROLE_SCOPES["partner"], partner_id="busy",
                  client_id="partner-busy")
    calm = bearer(sub="c", scopes=ROLE_SCOPES["partner"], partner_id="calm",
                  client_id="partner-calm")
    operator = bearer(sub="op", scopes=ROLE_SCOPES["operator"])
    assert [client.get("/v1/things", headers=busy).status_code for _ in range(3)] == [200] * 3
    limited = client.get("/v1/things", headers=busy)
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.headers["retry-after"] == "1"
    assert client.get("/v1/things", headers=calm).status_code == 200
    assert all(client.get("/v1/things", headers=operator).status_code == 200 for _ in range(5))
    clock.now += 1.0
    assert client.get("/v1/things", headers=busy).status_code == 200


def test_metrics_answer_only_to_the_scraper() -> None:
    class Settings:
        metrics_public = False
        metrics_basic_auth = SecretStr("prometheus:s3cret")

    app = FastAPI()
    app.state.token_verifier = verifier()
    app.state.metrics_access = Settings()
    install_error_handlers(app)

    @app.get("/metrics", dependencies=[Depends(check_metrics_access)])
    async def metrics() -> str:
        return "noria_requests_total 1"

    client = TestClient(app)
    assert client.get("/metrics").status_code == 401
    basic = base64.b64encode(b"prometheus:s3cret").decode()
    assert client.get("/metrics", headers={"Authorization": f"Basic {basic}"}
                      ).status_code == 200
    wrong = base64.b64encode(b"prometheus:guess").decode()
    assert client.get("/metrics", headers={"Authorization": f"Basic {wrong}"}
                      ).status_code == 401
    assert client.get("/metrics", headers=bearer(sub="s", scopes=["metrics:read"])
                      ).status_code == 200
    assert client.get("/metrics", headers=bearer(sub="p", scopes=ROLE_SCOPES["operator"])
                      ).status_code == 403
