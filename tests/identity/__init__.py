"""A test-only token issuer: RSA signing keys served as a JWKS over HTTP on loopback.

The services fetch its keys exactly as they fetch Keycloak's (``NORIA_OIDC_ISSUER`` and
``NORIA_OIDC_JWKS_URL`` are exported by ``tests/conftest.py``), so every test exercises
the real verification path: issuer, audience, expiry, ``kid`` lookup, refresh on rotation.

``mint_token`` is what the HS256 helper used to be, without a secret.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from jwt.algorithms import RSAAlgorithm

REALM = "noria-test"
AUDIENCE = "noria"


@dataclass
class SigningKey:
    kid: str
    private: RSAPrivateKey

    def jwk(self) -> dict[str, Any]:
        public: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}


def new_key() -> SigningKey:
    return SigningKey(f"test-{uuid.uuid4().hex[:12]}",
                      rsa.generate_private_key(public_exponent=65537, key_size=2048))


@dataclass
class LocalIssuer:
    """An issuer on ``http://127.0.0.1:<port>/realms/<realm>``; its JWKS at the
    Keycloak path. ``rotate`` puts a new signing key in front (the old one stays
    published unless ``retire_old``)."""

    realm: str = REALM
    base_url: str = ""
    """Without a server (unit tests): the issuer's URL; its keys come from ``jwks()``."""
    keys: list[SigningKey] = field(default_factory=lambda: [new_key()])
    _server: ThreadingHTTPServer | None = None
    jwks_requests: int = 0

    def start(self) -> LocalIssuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != issuer.jwks_path:
                    self.send_error(404)
                    return
                issuer.jwks_requests += 1
                body = json.dumps(issuer.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name=f"issuer-{self.realm}",
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the issuer first"
        return int(self._server.server_address[1])

    @property
    def jwks_path(self) -> str:
        return f"/realms/{self.realm}/protocol/openid-connect/certs"

    @property
    def issuer(self) -> str:
        base = self.base_url or f"http://127.0.0.1:{self.port}"
        return f"{base}/realms/{self.realm}"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk() for k in self.keys]}

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    def rotate(self, *, retire_old: bool = False) -> SigningKey:
        key = new_key()
        self.keys = [key] if retire_old else [key, *self.keys]
        return key

    def mint(self, *, sub: str, scopes: Sequence[str] = (), partner_id: str | None = None,
             office_id: str | None = None, office_path: str | None = None,
             client_id: str | None = None, ttl_s: int = 12 * 3600, now: float | None = None,
             audience: str | list[str] = AUDIENCE, key: SigningKey | None = None,
             extra: dict[str, Any] | None = None) -> str:
        issued = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": sub, "aud": audience, "scopes": list(scopes),
            "iat": issued, "exp": issued + ttl_s, "typ": "Bearer",
            "azp": client_id or (f"partner-{partner_id}" if partner_id else "noria-console"),
        }
        if partner_id is not None:
            claims["partner_id"] = partner_id
        if office_id is not None:
            claims["office_id"] = office_id
            claims["office_path"] = office_path or office_id
        claims.update(extra or {})
        signer = key or self.keys[0]
        return jwt.encode(claims, signer.private, algorithm="RS256",
                          headers={"kid": signer.kid})


_ISSUER: LocalIssuer | None = None
_LOCK = threading.Lock()


def issuer() -> LocalIssuer:
    """The process's test issuer, started on first use and exported through
    ``NORIA_OIDC_ISSUER`` / ``NORIA_OIDC_JWKS_URL`` (services started later, in-process
    or as child processes, trust it)."""
    global _ISSUER
    with _LOCK:
        if _ISSUER is None:
            _ISSUER = LocalIssuer().start()
            os.environ["NORIA_OIDC_ISSUER"] = _ISSUER.issuer
            os.environ["NORIA_OIDC_JWKS_URL"] = _ISSUER.jwks_url
            os.environ.setdefault("NORIA_OIDC_JWKS_MIN_REFRESH_S", "1")
            # No per-partner rate limit unless a test sets one (load tests push hard).
            os.environ.setdefault("NORIA_RATE_LIMIT_PER_S", "0")
        return _ISSUER


def mint_token(*, sub: str, scopes: Sequence[str] = (), partner_id: str | None = None,
               office_id: str | None = None, office_path: str | None = None,
               client_id: str | None = None, ttl_s: int = 12 * 3600,
               now: float | None = None) -> str:
    """A token of the session's test issuer (what the services trust under test)."""
    return issuer().mint(sub=sub, scopes=scopes, partner_id=partner_id, office_id=office_id,
                         office_path=office_path, client_id=client_id, ttl_s=ttl_s, now=now)


def scraper() -> dict[str, str]:
    """The headers of the metrics scraper (a token with ``metrics:read``)."""
    return {"Authorization": f"Bearer {mint_token(sub='prometheus', scopes=['metrics:read'])}"}
