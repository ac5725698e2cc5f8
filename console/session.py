"""Who is signed in, and the CSRF guard on every form that changes something.

Operators sign in through the identity provider (``console.oidc``): the browser holds a
random session id, the console the tokens. The access token is checked on every request
against the provider's keys: a missing, invalid or expired session sends the browser to
the login page; a token without operator scopes (a partner's or a wallet's) is refused
with a 403 page. ``dev_token_login`` (development and tests only, off by default) also
accepts a pasted token, kept in an HttpOnly, SameSite=Strict cookie.

CSRF is the double-submit pattern: a random token in a cookie, repeated in a
hidden form field (or the ``X-CSRF-Token`` header for htmx); a POST whose two
copies differ is refused.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request

from console.oidc import REFRESH_MARGIN_S, SESSION_COOKIE, Provider, SessionStore
from shared.auth import AuthError, Principal, TokenVerifier

TOKEN_COOKIE = "noria_console_token"
CSRF_COOKIE = "noria_console_csrf"
LANG_COOKIE = "noria_console_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
OPERATOR_SCOPE = "tenant:all"


class LoginRequired(Exception):
    """No usable session: the browser goes to the login page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotAnOperator(Exception):
    """A valid token that is not an operator's (a partner or a wallet)."""

    def __init__(self, principal: Principal) -> None:
        super().__init__(principal.sub)
        self.principal = principal


class CsrfRejected(Exception):
    """The form's CSRF token does not match the cookie's."""


@dataclass(frozen=True)
class Session:
    principal: Principal
    token: str
    id_token: str | None = None
    """The session's ID token (checked at sign-in), for the operator's name."""

    @property
    def operator(self) -> str:
        """The token's subject: what the services record as maker and checker."""
        return self.principal.sub

    @property
    def name(self) -> str:
        """The operator's login name, for display: ``preferred_username`` of the access
        token, else ``preferred_username`` or ``name`` of the ID token, else the subject."""
        if self.principal.username:
            return self.principal.username
        claims = id_claims(self.id_token)
        for claim in ("preferred_username", "name"):
            value = claims.get(claim)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return self.principal.sub

    def name_of(self, subject: Any) -> Any:
        """A maker's or checker's subject as shown: the operator's name when it is the
        signed-in operator (the services record only the subject), else as recorded."""
        return self.name if subject and subject == self.principal.sub else subject


def id_claims(id_token: str | None) -> dict[str, Any]:
    """The ID token's claims without checking its signature again: the provider's
    signature, audience and nonce were checked at sign-in, and a refreshed one comes
    straight from the token endpoint. For display only."""
    if not id_token:
        return {}
    try:
        claims = jwt.decode(id_token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


async def check_token(verifier: TokenVerifier, token: str) -> Principal:
    """The token's principal if it is a valid operator token; raise otherwise."""
    try:
        principal = await verifier.verify(token.strip())
    except AuthError as exc:
        reason = "expired" if "expired" in exc.detail else "invalid"
        raise LoginRequired(reason) from None
    if OPERATOR_SCOPE not in principal.scopes:
        raise NotAnOperator(principal)
    return principal


async def _signed_in_token(request: Request) -> str | None:
    """The access token of the browser's session (``console.oidc``), refreshed shortly
    before it expires; or, in development only, a pasted token's cookie. The session's ID
    token is left in ``request.state.id_token``."""
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        store: SessionStore = request.app.state.sessions
        tokens = store.get(sid)
        if tokens is None:
            raise LoginRequired("expired")
        settings = request.app.state.settings
        if time.time() - tokens.started > settings.session_max_s:
            store.close(sid)
            raise LoginRequired("expired")
        if tokens.access_expires - time.time() < REFRESH_MARGIN_S:
            provider: Provider = request.app.state.oidc
            refreshed = await provider.refresh(tokens)
            if refreshed is None:
                store.close(sid)
                raise LoginRequired("expired")
            store.put(sid, refreshed)
            tokens = refreshed
        request.state.id_token = tokens.id_token
        return tokens.access
    if request.app.state.settings.dev_token_login:
        return request.cookies.get(TOKEN_COOKIE)
    return None


async def current_session(request: Request) -> Session:
    token = await _signed_in_token(request)
    if not token:
        raise LoginRequired("signed_out")
    principal = await check_token(request.app.state.token_verifier, token)
    session = Session(principal=principal, token=token,
                      id_token=getattr(request.state, "id_token", None))
    request.state.session = session
    return session


OperatorSession = Annotated[Session, Depends(current_session)]


def csrf_token_for(request: Request) -> str:
    """The CSRF token of this browser (made on its first visit)."""
    existing: str | None = getattr(request.state, "csrf", None)
    if existing:
        return existing
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    request.state.csrf = token
    return token


async def verify_csrf(request: Request) -> None:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else ""
    if not cookie or not sent or not hmac.compare_digest(cookie, sent):
        raise CsrfRejected()


CsrfChecked = Depends(verify_csrf)
