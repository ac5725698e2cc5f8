"""Who may read ``/metrics`` and the API documents.

``/metrics`` (request counts, payouts settled, callback outcomes) answers only to the
scraper: a bearer token of the trusted issuer with ``metrics:read`` (the
``metrics-scraper`` role), or HTTP basic credentials from the settings
(``metrics_basic_auth``, ``user:password``), which is what a Prometheus scrape config
holds. ``metrics_public`` opens it (a scrape over a private network only).

``/docs``, ``/redoc`` and ``/openapi.json`` are public unless ``api_docs`` is off
(production may turn them off; they describe routes, never data).
"""

from __future__ import annotations

import base64
import hmac

from fastapi import Request

from shared.auth import AuthError, TokenVerifier

METRICS_SCOPE = "metrics:read"


async def check_metrics_access(request: Request) -> None:
    settings = request.app.state.metrics_access
    if settings.metrics_public:
        return
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    basic = settings.metrics_basic_auth.get_secret_value() if settings.metrics_basic_auth else ""
    if scheme.lower() == "basic" and basic:
        try:
            given = base64.b64decode(value.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            given = ""
        if hmac.compare_digest(given.encode(), basic.encode()):
            return
        raise AuthError("the metrics credentials are wrong")
    if scheme.lower() == "bearer" and value.strip():
        verifier: TokenVerifier = request.app.state.token_verifier
        principal = await verifier.verify(value.strip())
        if METRICS_SCOPE in principal.scopes:
            return
        raise AuthError(f"the token lacks the scope(s): {METRICS_SCOPE}", status=403)
    raise AuthError("the metrics scraper's credentials are required")
