"""The console application: pages, static assets, sessions, language and CSRF."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from console import i18n
from console.oidc import SESSION_COOKIE, Provider, SessionStore
from console.session import (
    CSRF_COOKIE,
    LANG_COOKIE,
    TOKEN_COOKIE,
    CsrfRejected,
    LoginRequired,
    NotAnOperator,
)
from console.settings import ConsoleSettings
from console.upstream import Upstream, UpstreamUnauthorized
from console.views import (
    accounting,
    auth,
    branches,
    business,
    calendar,
    clients,
    loans,
    ops,
    organisation,
    payouts,
    recon_alerts,
    savings,
    servicing,
)
from console.web import HERE, redirect, render
from shared.auth import verifier_for

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'")


def content_security_policy(provider_origin: str) -> str:
    """The pages' policy. Sign-out is a form whose answer redirects to the identity
    provider's end-session endpoint, and browsers (Chromium) apply ``form-action`` to a
    form's redirects too: without the provider's origin there the browser stops at the
    redirect and the provider's session survives."""
    return CSP.replace("form-action 'self'", f"form-action 'self' {provider_origin}")


def create_app(settings: ConsoleSettings | None = None,
               transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    settings = settings or ConsoleSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.upstream = Upstream(settings.service_urls(), settings.upstream_timeout_s,
                                      transport=transport)
        try:
            yield
        finally:
            await app.state.upstream.aclose()

    app = FastAPI(title="Noria operations console", version="0.1.0", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.token_verifier = verifier_for(settings)
    app.state.sessions = SessionStore()
    app.state.oidc = Provider(
        settings.oidc_issuer, settings.oidc_client_id,
        settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None,
        settings.public_url,
        settings.session_key.get_secret_value().encode() if settings.session_key else None)
    csp = content_security_policy(app.state.oidc.origin)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for module in (auth, business, loans, ops, clients):
        app.include_router(module.router)
    for page in (payouts, recon_alerts, accounting, savings, organisation):
        app.include_router(page.router)
    for view in (servicing, calendar, branches):
        app.include_router(view.router)

    def to_login(request: Request, reason: str) -> Response:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        if request.method != "GET" or request.headers.get("hx-request"):
            target = "/"
        response = redirect("/login?" + urlencode({"reason": reason, "next": target}),
                            request)
        response.delete_cookie(TOKEN_COOKIE, path="/")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def on_login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return to_login(request, exc.reason)

    async def on_upstream_unauthorized(request: Request, exc: Exception) -> Response:
        return to_login(request, "expired")

    async def on_not_operator(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NotAnOperator)
        response = render(request, "forbidden.html", code=403, reason="not_operator",
                          who=exc.principal.sub, partner=exc.principal.partner_id)
        response.delete_cookie(TOKEN_COOKIE, path="/")
        return response

    async def on_csrf(request: Request, exc: Exception) -> Response:
        return render(request, "forbidden.html", code=403, reason="csrf")

    app.add_exception_handler(LoginRequired, on_login_required)
    app.add_exception_handler(UpstreamUnauthorized, on_upstream_unauthorized)
    app.add_exception_handler(NotAnOperator, on_not_operator)
    app.add_exception_handler(CsrfRejected, on_csrf)

    @app.middleware("http")
    async def language_csrf_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        chosen = request.query_params.get("lang")
        request.state.lang = i18n.negotiate(chosen, request.cookies.get(LANG_COOKIE),
                                            request.headers.get("accept-language"))
        had_csrf = request.cookies.get(CSRF_COOKIE)
        request.state.csrf = had_csrf or secrets.token_urlsafe(32)
        response = await call_next(request)
        secure = settings.cookie_secure
        if not had_csrf:
            response.set_cookie(CSRF_COOKIE, request.state.csrf, httponly=True,
                                samesite="strict", secure=secure, path="/")
        if chosen and chosen.lower()[:2] in i18n.LANGUAGES:
            response.set_cookie(LANG_COOKIE, request.state.lang, max_age=365 * 86400,
                                httponly=True, samesite="strict", secure=secure, path="/")
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if request.url.path != "/health/live" and not request.url.path.startswith("/static"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.get("/health/live", include_in_schema=False)
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/health/ready", include_in_schema=False)
    async def ready() -> dict[str, object]:
        return {"ready": True, "checks": {}}

    return app
