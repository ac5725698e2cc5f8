"""Sign in through the identity provider (authorization code + PKCE, ``console.oidc``);
sign out, which also ends the provider's session. Pasting a token is accepted only with
``dev_token_login`` (development and tests)."""

from __future__ import annotations

import logging
import time
from typing import Annotated

import jwt
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from console.oidc import LOGIN_COOKIE, LOGIN_TTL_S, SESSION_COOKIE, Provider, SessionStore
from console.session import (
    TOKEN_COOKIE,
    CsrfChecked,
    LoginRequired,
    NotAnOperator,
    check_token,
)
from console.web import redirect, render, safe_next

router = APIRouter()
log = logging.getLogger("noria.console")

LOGIN_REASONS = frozenset({"expired", "invalid", "signed_out", "failed"})


def _cookie_args(request: Request) -> dict[str, object]:
    return {"httponly": True, "secure": request.app.state.settings.cookie_secure, "path": "/"}


@router.get("/login")
async def login_page(request: Request, reason: str | None = None, next: str = "/") -> Response:
    return render(request, "login.html", reason=reason if reason in LOGIN_REASONS else None,
                  next=safe_next(next), paste=request.app.state.settings.dev_token_login)


@router.get("/login/oidc")
async def login_start(request: Request, next: str = "/") -> Response:
    """To the identity provider's login page."""
    provider: Provider = request.app.state.oidc
    url, sealed = provider.begin(safe_next(next))
    response = RedirectResponse(url, status_code=303)
    # Lax: the provider's redirect back is a cross-site top-level navigation
    response.set_cookie(LOGIN_COOKIE, sealed, max_age=LOGIN_TTL_S, samesite="lax",
                        **_cookie_args(request))  # type: ignore[arg-type]
    return response


@router.get("/login/callback")
async def login_callback(request: Request, code: str = "", state: str = "",
                         error: str = "") -> Response:
    provider: Provider = request.app.state.oidc
    pending = provider.unseal(request.cookies.get(LOGIN_COOKIE))
    if error or not code or pending is None or state != pending.get("state"):
        log.info("console sign-in refused: %s", error or "state or code missing or wrong")
        return render(request, "login.html", code=400, reason="failed", next="/",
                      paste=request.app.state.settings.dev_token_login)
    tokens = await provider.exchange(code, pending["verifier"])
    verifier = request.app.state.token_verifier
    if tokens is None or not await provider.check_id_token(verifier, tokens.id_token,
                                                           pending["nonce"]):
        return render(request, "login.html", code=400, reason="failed", next="/",
                      paste=request.app.state.settings.dev_token_login)
    principal = await check_token(verifier, tokens.access)  # NotAnOperator: the 403 page
    store: SessionStore = request.app.state.sessions
    sid = store.open(tokens)
    response = redirect(safe_next(pending.get("next")))
    response.delete_cookie(LOGIN_COOKIE, path="/")
    response.set_cookie(SESSION_COOKIE, sid, samesite="lax",
                        max_age=request.app.state.settings.session_max_s,
                        **_cookie_args(request))  # type: ignore[arg-type]
    log.info("operator %s (%s) signed in to the console", principal.sub,
             principal.username or "?")
    return response


@router.post("/login", dependencies=[CsrfChecked])
async def login(request: Request, token: Annotated[str, Form()] = "",
                next: Annotated[str, Form()] = "/") -> Response:
    """A pasted token: development and tests only."""
    if not request.app.state.settings.dev_token_login:
        return render(request, "login.html", code=404, reason=None, next=safe_next(next),
                      paste=False)
    try:
        principal = await check_token(request.app.state.token_verifier, token)
    except LoginRequired as exc:
        return render(request, "login.html", code=401, reason=exc.reason, next=safe_next(next),
                      paste=True)
    claims = jwt.decode(token.strip(), options={"verify_signature": False})
    max_age = max(1, int(claims["exp"]) - int(time.time()))
    response = redirect(safe_next(next))
    response.set_cookie(TOKEN_COOKIE, token.strip(), max_age=max_age, samesite="strict",
                        **_cookie_args(request))  # type: ignore[arg-type]
    log.info("operator %s signed in to the console with a pasted token", principal.sub)
    return response


@router.post("/logout", dependencies=[CsrfChecked])
async def logout(request: Request) -> Response:
    """Forget the session, clear the cookies and end the provider's session."""
    store: SessionStore = request.app.state.sessions
    sid = request.cookies.get(SESSION_COOKIE)
    tokens = store.close(sid) if sid else None
    if tokens is not None:
        provider: Provider = request.app.state.oidc
        response: Response = redirect(provider.logout_url(tokens))
    else:
        response = redirect("/login?reason=signed_out")
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(TOKEN_COOKIE, path="/")
    return response


__all__ = ["NotAnOperator", "router"]
