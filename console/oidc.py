"""Operators sign in through the identity provider: authorization code + PKCE (S256).

- ``/login/oidc`` makes a state, a nonce and a PKCE verifier, keeps them in a short-lived
  cookie encrypted with Fernet (``NORIA_CONSOLE_SESSION_KEY``), and sends the browser to
  Keycloak's login page;
- ``/login/callback`` checks the state, exchanges the code (with the verifier) for
  tokens from the console's server, checks the ID token's nonce and that the access
  token is an operator's, and opens a server-side session;
- the session (:class:`SessionStore`) is in the console process's memory: the browser
  holds only a random id (HttpOnly cookie). Its access token is refreshed shortly
  before it expires; a refused refresh ends the session. Limits: at most
  ``MAX_SESSIONS`` sessions (the oldest go first), one console replica (or sticky
  sessions), and a restart signs every operator out;
- sign-out forgets the session, clears the cookie and redirects the browser itself to
  Keycloak's end-session endpoint with ``id_token_hint`` (so Keycloak asks no
  confirmation), ``client_id`` and ``post_logout_redirect_uri``: Keycloak removes its SSO
  session and its cookies (``KEYCLOAK_IDENTITY``, ``KEYCLOAK_SESSION``) and sends the
  browser back to ``/login?reason=signed_out``; the next sign-in asks for the password
  again. It has to be the browser's navigation (a server-side call could not clear the
  browser's Keycloak cookies), and the pages' CSP ``form-action`` names the provider's
  origin because browsers apply it to the sign-out form's redirect. Pages are
  ``Cache-Control: no-store``, so Back shows nothing of a signed-out session;
- a session ended in Keycloak (the operator signed out elsewhere, an administrator's
  "sign out", a disabled user) ends here at the next refresh, when Keycloak refuses the
  refresh token: within the access token's lifetime (5 minutes in the realm).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import jwt
from cryptography.fernet import Fernet, InvalidToken

from shared.auth import TokenVerifier

SESSION_COOKIE = "noria_console_session"
LOGIN_COOKIE = "noria_console_login"
LOGIN_TTL_S = 600
MAX_SESSIONS = 5000
REFRESH_MARGIN_S = 30.0


@dataclass
class Tokens:
    access: str
    refresh: str | None
    id_token: str | None
    access_expires: float
    """Wall-clock time the access token expires."""
    started: float


def _expiry(body: dict[str, Any], now: float) -> float:
    return now + float(body.get("expires_in", 60))


class SessionStore:
    """Sessions by random id, in memory, at most ``limit`` (least recently used first out)."""

    def __init__(self, limit: int = MAX_SESSIONS) -> None:
        self.limit = limit
        self._sessions: OrderedDict[str, Tokens] = OrderedDict()

    def open(self, tokens: Tokens) -> str:
        sid = secrets.token_urlsafe(32)
        self._sessions[sid] = tokens
        while len(self._sessions) > self.limit:
            self._sessions.popitem(last=False)
        return sid

    def get(self, sid: str) -> Tokens | None:
        tokens = self._sessions.get(sid)
        if tokens is not None:
            self._sessions.move_to_end(sid)
        return tokens

    def put(self, sid: str, tokens: Tokens) -> None:
        if sid in self._sessions:
            self._sessions[sid] = tokens

    def close(self, sid: str) -> Tokens | None:
        return self._sessions.pop(sid, None)

    def __len__(self) -> int:
        return len(self._sessions)


class Provider:
    """The OpenID provider as the console uses it (endpoints under the issuer, Keycloak's
    layout)."""

    def __init__(self, issuer: str, client_id: str, client_secret: str | None,
                 public_url: str, session_key: bytes | None, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = public_url.rstrip("/") + "/login/callback"
        self.after_logout = public_url.rstrip("/") + "/login?reason=signed_out"
        self._fernet = Fernet(session_key or Fernet.generate_key())
        self._transport = transport

    @property
    def origin(self) -> str:
        """Scheme, host and port of the provider (where sign-out sends the browser)."""
        parts = urlsplit(self.issuer)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def authorize_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/auth"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    @property
    def end_session_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/logout"

    # ------------------------------------------------------------ the login round trip

    def begin(self, next_: str) -> tuple[str, str]:
        """(the authorization URL to send the browser to, the sealed login cookie)."""
        state = secrets.token_urlsafe(24)
        nonce = secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        sealed = self._fernet.encrypt(json.dumps({
            "state": state, "nonce": nonce, "verifier": verifier, "next": next_,
        }).encode()).decode()
        query = urlencode({
            "response_type": "code", "client_id": self.client_id,
            "redirect_uri": self.redirect_uri, "scope": "openid", "state": state,
            "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256",
        })
        return f"{self.authorize_url}?{query}", sealed

    def unseal(self, sealed: str | None) -> dict[str, str] | None:
        if not sealed:
            return None
        try:
            data: dict[str, str] = json.loads(self._fernet.decrypt(sealed.encode(),
                                                                   ttl=LOGIN_TTL_S))
            return data
        except (InvalidToken, ValueError):
            return None

    async def _token_request(self, form: dict[str, str]) -> dict[str, Any] | None:
        form = {**form, "client_id": self.client_id}
        if self.client_secret:
            form["client_secret"] = self.client_secret
        try:
            async with httpx.AsyncClient(timeout=10, transport=self._transport) as http:
                resp = await http.post(self.token_url, data=form)
        except httpx.HTTPError:
            return None
        if resp.status_code != 200:
            return None
        body: dict[str, Any] = resp.json()
        return body

    async def exchange(self, code: str, verifier: str) -> Tokens | None:
        body = await self._token_request({
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": self.redirect_uri})
        if body is None:
            return None
        now = time.time()
        return Tokens(access=body["access_token"], refresh=body.get("refresh_token"),
                      id_token=body.get("id_token"), access_expires=_expiry(body, now),
                      started=now)

    async def check_id_token(self, verifier: TokenVerifier, id_token: str | None,
                             nonce: str) -> bool:
        """The ID token is the issuer's, for this client, and carries our nonce."""
        if not id_token:
            return False
        try:
            header = jwt.get_unverified_header(id_token)
            cache = verifier.caches.get(self.issuer)
            if cache is None:
                return False
            key = await cache.key(str(header.get("kid")))
            claims = jwt.decode(id_token, key.key, algorithms=[key.algorithm_name],
                                audience=self.client_id, issuer=self.issuer, leeway=5)
        except Exception:
            return False
        return bool(claims.get("nonce") == nonce)

    async def refresh(self, tokens: Tokens) -> Tokens | None:
        if not tokens.refresh:
            return None
        body = await self._token_request({"grant_type": "refresh_token",
                                          "refresh_token": tokens.refresh})
        if body is None:
            return None
        return Tokens(access=body["access_token"],
                      refresh=body.get("refresh_token", tokens.refresh),
                      id_token=body.get("id_token", tokens.id_token),
                      access_expires=_expiry(body, time.time()), started=tokens.started)

    def logout_url(self, tokens: Tokens | None) -> str:
        """Keycloak's end-session endpoint, back to the login page afterwards."""
        params = {"post_logout_redirect_uri": self.after_logout, "client_id": self.client_id}
        if tokens is not None and tokens.id_token:
            params["id_token_hint"] = tokens.id_token
        return f"{self.end_session_url}?{urlencode(params)}"
