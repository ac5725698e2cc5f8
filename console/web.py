"""Rendering: the Jinja2 environment, the per-request context and small helpers."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from console import i18n, present
from console.session import Session, csrf_token_for
from console.upstream import Reply, Upstream

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["urlencode"] = urlencode
templates.env.globals["timeline"] = present.timeline
templates.env.globals["first"] = present.first

NAV = (
    ("portfolio", "/", "nav.portfolio"),
    ("collections", "/collections", "nav.collections"),
    ("approvals", "/approvals", "nav.approvals"),
    ("loans", "/loans", "nav.loans"),
    ("payments", "/payments", "nav.payments"),
    ("sagas", "/sagas", "nav.sagas"),
    ("dead_letters", "/dead-letters", "nav.dead_letters"),
    ("payouts", "/payouts/in-doubt", "nav.payouts"),
    ("reconciliation", "/reconciliation", "nav.reconciliation"),
    ("accounting", "/accounting", "nav.accounting"),
    ("sms", "/sms", "nav.sms"),
    ("clients", "/clients", "nav.clients"),
    ("savings", "/savings", "nav.savings"),
    ("organisation", "/organisation", "nav.organisation"),
    ("branches", "/branches", "nav.branches"),
    ("due", "/due", "nav.due"),
    ("sheet", "/collection-sheet", "nav.sheet"),
    ("branch_cash", "/branch-cash", "nav.branch_cash"),
    ("loan_requests", "/loan-requests", "nav.loan_requests"),
    ("calendar", "/calendar", "nav.calendar"),
)

FLASH_KEYS = frozenset({
    "approved", "rejected", "replayed", "replayed_all", "kyc_done", "resent", "signed_out",
    "refund_retried", "refund_retry_proposed", "refund_retry_approved",
    "settlement_proposed", "settlement_approved", "alert_resolved", "recon_ran",
    "journal_approved", "journal_rejected", "period_closed", "request_approved",
    "request_rejected", "reschedule_proposed", "request_proposed", "calendar_saved",
    "cash_counted", "nothing_collected",
})


def upstream(request: Request) -> Upstream:
    client: Upstream = request.app.state.upstream
    return client


def language(request: Request) -> str:
    lang: str = getattr(request.state, "lang", i18n.DEFAULT_LANGUAGE)
    return lang


def status_label(lang: str) -> Any:
    """A status in the page's language; an unknown one is shown as the service sent it."""
    t = i18n.translator(lang)

    def label(status: Any) -> str:
        key = f"status.{status}"
        text = t(key)
        return str(status) if text == key else text

    return label


def context(request: Request, **extra: Any) -> dict[str, Any]:
    lang = language(request)
    session: Session | None = getattr(request.state, "session", None)
    flash = request.query_params.get("flash")
    return {
        "request": request,
        "lang": lang,
        "t": i18n.translator(lang),
        "money": partial(i18n.money, lang=lang),
        "number": partial(i18n.number, lang=lang),
        "percent": partial(i18n.percent, lang=lang),
        "date": partial(i18n.date, lang=lang),
        "status_label": status_label(lang),
        "csrf": csrf_token_for(request),
        "session": session,
        # a maker's or checker's subject as shown (the signed-in operator by name)
        "who": session.name_of if session is not None else (lambda subject: subject),
        "nav": NAV,
        "flash": flash if flash in FLASH_KEYS else None,
        "path": request.url.path,
        **extra,
    }


def render(request: Request, name: str, code: int = 200, **extra: Any) -> HTMLResponse:
    """Render a page; ``code`` is the HTTP status."""
    return templates.TemplateResponse(request, name, context(request, **extra),
                                      status_code=code)


def redirect(url: str, request: Request | None = None) -> Response:
    """303 to ``url``; an htmx request gets ``HX-Redirect`` so the whole page moves."""
    if request is not None and request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def safe_next(value: str | None) -> str:
    """Only a local path: never an open redirect to another site."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def not_found(reply: Reply | None) -> int:
    """404 when the service says what the page shows is not there, or outside the
    operator's office or partner (a service answers 404 then, never 403): the page answers
    not found with its panel, not 200. A service without the endpoint is not a 404."""
    return 404 if reply is not None and reply.status == 404 and not reply.unavailable else 200
