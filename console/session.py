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
from typing import Annotated

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

    @property
    def operator(self) -> str:
        return self.principal.sub


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
    before it expires; or, in development only, a pasted token's cookie."""
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
        return tokens.access
    if request.app.state.settings.dev_token_login:
        return request.cookies.get(TOKEN_COOKIE)
    return None


async def current_session(request: Request) -> Session:
    token = await _signed_in_token(request)
    if not token:
        raise LoginRequired("signed_out")
    principal = await check_token(request.app.state.token_verifier, token)
    session = Session(principal=principal, token=token)
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
