"""Sign in by pasting an operator token; sign out."""

from __future__ import annotations

import logging
import time
from typing import Annotated

import jwt
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from console.session import TOKEN_COOKIE, CsrfChecked, LoginRequired, check_token
from console.web import redirect, render, safe_next

router = APIRouter()
log = logging.getLogger("noria.console")

LOGIN_REASONS = frozenset({"expired", "invalid", "signed_out"})


@router.get("/login")
async def login_page(request: Request, reason: str | None = None, next: str = "/") -> Response:
    return render(request, "login.html", reason=reason if reason in LOGIN_REASONS else None,
                  next=safe_next(next))


@router.post("/login", dependencies=[CsrfChecked])
async def login(request: Request, token: Annotated[str, Form()] = "",
                next: Annotated[str, Form()] = "/") -> Response:
    try:
        principal = await check_token(request.app.state.token_verifier, token)
    except LoginRequired as exc:
        return render(request, "login.html", code=401, reason=exc.reason, next=safe_next(next))
    claims = jwt.decode(token.strip(), options={"verify_signature": False})
    max_age = max(1, int(claims["exp"]) - int(time.time()))
    response = redirect(safe_next(next))
    response.set_cookie(TOKEN_COOKIE, token.strip(), max_age=max_age, httponly=True,
                        samesite="strict", secure=request.app.state.settings.cookie_secure,
                        path="/")
    log.info("operator %s signed in to the console", principal.sub)
    return response


@router.post("/logout", dependencies=[CsrfChecked])
async def logout(request: Request) -> Response:
    response = redirect("/login?reason=signed_out")
    response.delete_cookie(TOKEN_COOKIE, path="/")
    return response
