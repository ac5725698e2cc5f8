"""Servicing a disbursed loan: the payoff quote, schedule versions, rescheduling and the
loan requests (write-off, waiver of late charges) a second operator approves."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from console.paging import href, with_flash
from console.session import CsrfChecked, OperatorSession
from console.upstream import Reply
from console.web import redirect, render, safe_next, upstream

router = APIRouter()

REQUESTS_LIMIT = 500
"""loans' ``GET /v1/loan-requests`` has no cursor: its first 500, said so on the page."""
REQUEST_STATUSES = ("pending", "approved", "rejected")
REQUEST_KINDS = ("write_off", "waiver")


def q(value: str) -> str:
    return quote(value, safe="")


def failed(request: Request, reply: Reply, back: str) -> Response:
    return render(request, "action_failed.html", code=reply.status or 502, reply=reply,
                  back=safe_next(back))


def as_int(value: str, default: int | None) -> int | None:
    try:
        return int(value.strip()) if value.strip() else default
    except ValueError:
        return default


@router.get("/loans/{loan_id}/servicing")
async def servicing(request: Request, loan_id: str, session: OperatorSession,
                    date: str = "") -> Response:
    up = upstream(request)
    tok = session.token
    loan, payoff, versions, pending = await up.gather(
        up.get("loans", f"/v1/loans/{q(loan_id)}", tok),
        up.get("loans", f"/v1/loans/{q(loan_id)}/payoff", tok, {"date": date.strip()}),
        up.get("loans", f"/v1/loans/{q(loan_id)}/schedule/versions", tok),
        up.get("loans", "/v1/loan-requests", tok, {"loan_id": loan_id, "status": "pending",
                                                   "limit": REQUESTS_LIMIT}))
    return render(request, "loan_servicing.html", loan_id=loan_id, loan=loan,
                  data=loan.obj(), payoff=payoff, versions=versions,
                  version_rows=versions.items(), pending=pending, day=date.strip(),
                  here=f"/loans/{q(loan_id)}/servicing")


@router.post("/loans/{loan_id}/reschedule", dependencies=[CsrfChecked])
async def reschedule(request: Request, loan_id: str, session: OperatorSession,
                     term: Annotated[str, Form()] = "", grace: Annotated[str, Form()] = "0",
                     moratorium: Annotated[str, Form()] = "0",
                     capitalise_interest: Annotated[str, Form()] = "",
                     cure_installments: Annotated[str, Form()] = "3",
                     reason: Annotated[str, Form()] = "") -> Response:
    """Ask loans for a rescheduling: its answer is the preview a second operator approves."""
    body = {"term": as_int(term, None), "grace": as_int(grace, 0) or 0,
            "moratorium": as_int(moratorium, 0) or 0,
            "capitalise_interest": capitalise_interest in ("on", "true", "1"),
            "cure_installments": as_int(cure_installments, 3),
            "reason": reason.strip()[:500]}
    reply = await upstream(request).post("loans", f"/v1/loans/{q(loan_id)}/reschedule",
                                         session.token, json=body)
    if not reply.ok:
        return failed(request, reply, f"/loans/{q(loan_id)}/servicing")
    request_id = str(reply.obj().get("id", ""))
    return redirect(f"/reschedule-requests/{q(request_id)}?flash=reschedule_proposed",
                    request)


@router.get("/reschedule-requests/{request_id}")
async def reschedule_request(request: Request, request_id: str, session: OperatorSession
                             ) -> Response:
    reply = await upstream(request).get("loans", f"/v1/reschedule-requests/{q(request_id)}",
                                        session.token)
    data = reply.obj()
    found = data.get("preview")
    preview: dict[str, Any] = found if isinstance(found, dict) else {}
    listed = preview.get("installments")
    rows = listed if isinstance(listed, list) else []
    return render(request, "reschedule_request.html",
                  code=200 if reply.ok or not reply.status else reply.status,
                  request_id=request_id, reply=reply, data=data, preview=preview, rows=rows)


@router.get("/reschedule-requests")
async def find_reschedule_request(request: Request, session: OperatorSession,
                                  id: str = "") -> Response:
    """loans lists no reschedule requests: the second operator opens one by its id."""
    if id.strip():
        return redirect(f"/reschedule-requests/{q(id.strip())}", request)
    return redirect("/loan-requests", request)


@router.post("/reschedule-requests/{request_id}/{decision}", dependencies=[CsrfChecked])
async def decide_reschedule(request: Request, request_id: str, decision: str,
                            session: OperatorSession) -> Response:
    back = f"/reschedule-requests/{q(request_id)}"
    if decision not in ("approve", "reject"):
        return render(request, "forbidden.html", code=404, reason="unknown_service")
    reply = await upstream(request).post(
        "loans", f"/v1/reschedule-requests/{q(request_id)}/{decision}", session.token)
    if not reply.ok:
        return failed(request, reply, back)
    return redirect(with_flash(back, "request_approved" if decision == "approve"
                               else "request_rejected"), request)


@router.post("/loans/{loan_id}/write-off", dependencies=[CsrfChecked])
async def propose_write_off(request: Request, loan_id: str, session: OperatorSession,
                            reason: Annotated[str, Form()] = "") -> Response:
    reply = await upstream(request).post("loans", f"/v1/loans/{q(loan_id)}/write-off",
                                         session.token, json={"reason": reason.strip()[:500]})
    back = f"/loans/{q(loan_id)}/servicing"
    if not reply.ok:
        return failed(request, reply, back)
    return redirect(with_flash(back, "request_proposed"), request)


@router.post("/loans/{loan_id}/waivers", dependencies=[CsrfChecked])
async def propose_waiver(request: Request, loan_id: str, session: OperatorSession,
                         amount: Annotated[str, Form()] = "",
                         reason: Annotated[str, Form()] = "") -> Response:
    body: dict[str, Any] = {"reason": reason.strip()[:500]}
    if amount.strip():
        body["amount"] = amount.strip().replace(",", ".")
    reply = await upstream(request).post("loans", f"/v1/loans/{q(loan_id)}/waivers",
                                         session.token, json=body)
    back = f"/loans/{q(loan_id)}/servicing"
    if not reply.ok:
        return failed(request, reply, back)
    return redirect(with_flash(back, "request_proposed"), request)


@router.get("/loan-requests")
async def loan_requests(request: Request, session: OperatorSession,
                        status: str = "pending", kind: str = "") -> Response:
    """Write-offs and waivers waiting for a second operator, oldest proposal first."""
    status = status if status in REQUEST_STATUSES else "pending"
    kind = kind if kind in REQUEST_KINDS else ""
    reply = await upstream(request).get("loans", "/v1/loan-requests", session.token,
                                        {"status": status, "kind": kind,
                                         "limit": REQUESTS_LIMIT})
    rows = sorted(reply.items(), key=lambda r: str(r.get("proposed_at") or ""))
    return render(request, "loan_requests.html", reply=reply, rows=rows, status=status,
                  kind=kind, statuses=REQUEST_STATUSES, kinds=REQUEST_KINDS,
                  limit=REQUESTS_LIMIT, here=href("/loan-requests", status=status, kind=kind))


@router.post("/loan-requests/{request_id}/{decision}", dependencies=[CsrfChecked])
async def decide_request(request: Request, request_id: str, decision: str,
                         session: OperatorSession, reason: Annotated[str, Form()] = "",
                         back: Annotated[str, Form()] = "/loan-requests") -> Response:
    """Approve or reject another operator's proposal (its proposer gets loans' 403)."""
    if decision not in ("approve", "reject"):
        return render(request, "forbidden.html", code=404, reason="unknown_service")
    body = {"reason": reason.strip()[:500]} if decision == "reject" else None
    reply = await upstream(request).post(
        "loans", f"/v1/loan-requests/{q(request_id)}/{decision}", session.token, json=body)
    if not reply.ok:
        return failed(request, reply, back)
    return redirect(with_flash(safe_next(back), "request_approved" if decision == "approve"
                               else "request_rejected"), request)
