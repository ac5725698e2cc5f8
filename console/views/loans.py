"""Loans: the approvals queue (maker-checker), the loan list and the loan file."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from console.session import CsrfChecked, OperatorSession
from console.upstream import Problem, Reply
from console.views.business import client_phones
from console.web import not_found, redirect, render, upstream

router = APIRouter()

IN_FLIGHT = frozenset({"approved", "disbursing"})
LOAN_STATUSES = ("submitted", "approved", "disbursing", "active", "closed", "rejected",
                 "withdrawn", "disbursement_failed", "written_off")
QUEUE_PAGE = 25
"""Applications per approvals page: each one is drawn with its schedule preview."""
PAGE = 100


def schedule_rows(reply: Reply) -> list[dict[str, Any]]:
    data = reply.data
    if isinstance(data, dict):
        for key in ("installments", "schedule"):
            if isinstance(data.get(key), list):
                return [i for i in data[key] if isinstance(i, dict)]
    return reply.items()


def oldest_first(loans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Oldest submission first when loans says when each was submitted; otherwise the
    service's own (keyset) order is kept."""
    def when(loan: dict[str, Any]) -> str:
        return str(loan.get("submitted_at") or loan.get("created_at") or "")
    if all(when(x) for x in loans):
        return sorted(loans, key=when)
    return loans


async def previews_for(request: Request, token: str, loans: list[dict[str, Any]]
                       ) -> dict[str, list[dict[str, Any]]]:
    """A schedule preview for every application on the page, asked of loans at once."""
    up = upstream(request)
    previews = {str(x["id"]): x["schedule"] for x in loans
                if "id" in x and isinstance(x.get("schedule"), list)}
    need = [str(x["id"]) for x in loans if "id" in x and str(x["id"]) not in previews]
    replies = await up.gather(*(up.get("loans", f"/v1/loans/{i}/schedule", token)
                                for i in need))
    for loan_id, reply in zip(need, replies, strict=True):
        if reply.ok:
            previews[loan_id] = schedule_rows(reply)
    return previews


async def approvals_page(request: Request, token: str, problem: Problem | None = None,
                         problem_loan: str | None = None, status: int = 200,
                         after: str = "", client_id: str = "") -> Response:
    up = upstream(request)
    submitted, products = await up.gather(
        up.get("loans", "/v1/loans", token, {"status": "submitted", "limit": QUEUE_PAGE,
                                             "after": after, "client_id": client_id}),
        up.get("loans", "/v1/products", token))
    loans = oldest_first(submitted.items())
    if problem_loan and not any(str(x.get("id")) == problem_loan for x in loans):
        # the refused application stays in view with its explanation, whatever page
        # the operator was on
        refused = await up.get("loans", f"/v1/loans/{problem_loan}", token)
        if refused.ok:
            loans = [refused.obj(), *loans]
    clients, previews = await asyncio.gather(
        client_phones(request, token, [str(x.get("client_id", "")) for x in loans]),
        previews_for(request, token, loans))
    return render(request, "approvals.html", code=status, submitted=submitted, loans=loans,
                  clients=clients, previews=previews, problem=problem,
                  products={str(p.get("id")): p for p in products.items()},
                  problem_loan=problem_loan, after=after, client_id=client_id,
                  next_href=page_href("/approvals", after=submitted.obj().get("next_after"),
                                      client_id=client_id))


def page_href(path: str, **params: Any) -> str | None:
    """The link to the next page, or None on the last one (no cursor given back)."""
    cursor = next((v for k, v in params.items() if k in ("after", "cursor")), None)
    if not cursor:
        return None
    return f"{path}?{urlencode({k: v for k, v in params.items() if v})}"


@router.get("/approvals")
async def approvals(request: Request, session: OperatorSession, after: str = "",
                    client_id: str = "") -> Response:
    return await approvals_page(request, session.token, after=after.strip(),
                                client_id=client_id.strip())


@router.get("/approvals/{loan_id}/preview")
async def approval_preview(request: Request, loan_id: str, session: OperatorSession
                           ) -> Response:
    """One application's schedule preview, on its own (linked from its card)."""
    reply = await upstream(request).get("loans", f"/v1/loans/{loan_id}/schedule",
                                        session.token)
    return render(request, "approval_preview.html", code=reply.status if not reply.ok
                  and reply.status else 200, loan_id=loan_id, reply=reply,
                  preview=schedule_rows(reply) if reply.ok else [])


@router.post("/approvals/{loan_id}/approve", dependencies=[CsrfChecked])
async def approve(request: Request, loan_id: str, session: OperatorSession,
                  after: Annotated[str, Form()] = "",
                  client_id: Annotated[str, Form()] = "") -> Response:
    reply = await upstream(request).post("loans", f"/v1/loans/{loan_id}/approve",
                                         session.token, json={},
                                         idempotency_key=str(uuid.uuid4()))
    if reply.ok:
        return redirect(f"/loans/{loan_id}?flash=approved", request)
    return await approvals_page(request, session.token, problem=reply.problem or Problem(
        reply.status, "loans", reply.error or ""), problem_loan=loan_id,
        status=reply.status or 502, after=after, client_id=client_id)


@router.post("/approvals/{loan_id}/reject", dependencies=[CsrfChecked])
async def reject(request: Request, loan_id: str, session: OperatorSession,
                 reason: Annotated[str, Form()] = "", after: Annotated[str, Form()] = "",
                 client_id: Annotated[str, Form()] = "") -> Response:
    reply = await upstream(request).post("loans", f"/v1/loans/{loan_id}/reject",
                                         session.token, json={"reason": reason.strip()})
    if reply.ok:
        query = urlencode({k: v for k, v in (("flash", "rejected"), ("after", after),
                                              ("client_id", client_id)) if v})
        return redirect(f"/approvals?{query}", request)
    return await approvals_page(request, session.token, problem=reply.problem or Problem(
        reply.status, "loans", reply.error or ""), problem_loan=loan_id,
        status=reply.status or 502, after=after, client_id=client_id)


@router.get("/loans")
async def loan_list(request: Request, session: OperatorSession, status: str | None = None,
                    client_id: str | None = None, after: str | None = None) -> Response:
    reply = await upstream(request).get("loans", "/v1/loans", session.token,
                                        {"status": status, "client_id": client_id,
                                         "after": after, "limit": PAGE})
    return render(request, "loans.html", reply=reply, loans=reply.items(), status=status or "",
                  client_id=client_id or "", statuses=LOAN_STATUSES,
                  next_after=reply.obj().get("next_after"))


@router.get("/loans/{loan_id}")
async def loan_detail(request: Request, loan_id: str, session: OperatorSession) -> Response:
    up = upstream(request)
    tok = session.token
    loan, schedule, ledger, messages, sagas = await up.gather(
        up.get("loans", f"/v1/loans/{loan_id}", tok),
        up.get("loans", f"/v1/loans/{loan_id}/schedule", tok),
        up.get("payments", f"/v1/accounts/portfolio:{loan_id}/statement", tok),
        up.get("notifications", "/v1/messages", tok, {"loan_id": loan_id}),
        up.get("loans", "/v1/sagas", tok, {"loan_id": loan_id}),
    )
    data = loan.obj()
    client, product = await up.gather(
        up.get("clients", f"/v1/clients/{data.get('client_id')}", tok),
        up.get("loans", f"/v1/products/{data.get('product_id')}", tok),
    ) if data else (None, None)
    saga_rows = [s for s in sagas.items() if str(s.get("loan_id", loan_id)) == loan_id]
    saga = await up.get("loans", f"/v1/sagas/{saga_rows[0]['id']}", tok) \
        if saga_rows and saga_rows[0].get("id") else None
    repayments = schedule.obj().get("repayments")
    return render(request, "loan.html", code=not_found(loan), loan_id=loan_id, loan=loan,
                  data=data,
                  schedule=schedule, installments=schedule_rows(schedule),
                  repayments=repayments if isinstance(repayments, list) else [],
                  ledger=ledger, ledger_lines=ledger_lines(ledger),
                  ledger_missing=ledger.status == 404 and not ledger.unavailable,
                  messages=messages,
                  sagas=sagas, saga=saga, client=client,
                  product=product.obj() if product else {},
                  in_flight=str(data.get("status")) in IN_FLIGHT)


def ledger_lines(reply: Reply) -> list[dict[str, Any]]:
    """The loan's portfolio-account lines (a statement), newest first."""
    lines = reply.obj().get("lines")
    return [x for x in lines if isinstance(x, dict)] if isinstance(lines, list) else []


@router.get("/loans/{loan_id}/status")
async def loan_status(request: Request, loan_id: str, session: OperatorSession,
                      seen: str = "") -> Response:
    """The status badge, polled while the disbursement saga runs."""
    loan = await upstream(request).get("loans", f"/v1/loans/{loan_id}", session.token)
    status = str(loan.obj().get("status", ""))
    response = render(request, "loan_status.html", loan_id=loan_id, status=status,
                      in_flight=status in IN_FLIGHT)
    if seen and status and status != seen:
        response.headers["HX-Refresh"] = "true"
    return response
