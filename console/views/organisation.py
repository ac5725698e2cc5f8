"""The organisation: the office tree, staff, and client transfers and loan-officer
reassignments waiting for a second operator (oldest first)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from console.paging import href, next_href, with_flash
from console.session import CsrfChecked, OperatorSession
from console.web import redirect, render, safe_next, upstream

router = APIRouter()

OFFICES_PAGE = 200
STAFF_PAGE = 100
REQUESTS_PAGE = 50
REQUEST_KINDS = {"transfers": "/v1/transfers",
                 "reassignments": "/v1/officer-reassignments"}
REQUEST_STATUSES = ("pending", "approved", "rejected")
ROLES = ("loan_officer", "branch_manager")


@router.get("/organisation")
async def offices(request: Request, session: OperatorSession, cursor: str = "") -> Response:
    """Offices parents before children (the service orders them by path), indented."""
    reply = await upstream(request).get("clients", "/v1/offices", session.token,
                                        {"limit": OFFICES_PAGE, "cursor": cursor})
    rows = [{**o, "depth": str(o.get("path") or "").count("/")}
            for o in reply.items()]
    return render(request, "organisation.html", reply=reply, rows=rows, cursor=cursor,
                  next_href=next_href("/organisation", "cursor",
                                      reply.obj().get("next_cursor")),
                  first_href="/organisation")


@router.get("/organisation/staff")
async def staff(request: Request, session: OperatorSession, office_id: str = "",
                role: str = "", cursor: str = "") -> Response:
    filters = {"office_id": office_id.strip(), "role": role if role in ROLES else ""}
    reply = await upstream(request).get("clients", "/v1/staff", session.token,
                                        {**filters, "limit": STAFF_PAGE, "cursor": cursor})
    return render(request, "staff.html", reply=reply, rows=reply.items(), cursor=cursor,
                  roles=ROLES, office_id=filters["office_id"], role=filters["role"],
                  next_href=next_href("/organisation/staff", "cursor",
                                      reply.obj().get("next_cursor"), **filters),
                  first_href=href("/organisation/staff", **filters))


@router.get("/organisation/requests")
async def requests(request: Request, session: OperatorSession, kind: str = "transfers",
                   status: str = "pending", cursor: str = "") -> Response:
    kind = kind if kind in REQUEST_KINDS else "transfers"
    status = status if status in REQUEST_STATUSES else "pending"
    reply = await upstream(request).get("clients", REQUEST_KINDS[kind], session.token,
                                        {"status": status, "limit": REQUESTS_PAGE,
                                         "cursor": cursor})
    here = href("/organisation/requests", kind=kind, status=status, cursor=cursor)
    return render(request, "org_requests.html", reply=reply, rows=reply.items(), kind=kind,
                  kinds=tuple(REQUEST_KINDS), status=status, statuses=REQUEST_STATUSES,
                  cursor=cursor, here=here,
                  next_href=next_href("/organisation/requests", "cursor",
                                      reply.obj().get("next_cursor"), kind=kind,
                                      status=status),
                  first_href=href("/organisation/requests", kind=kind, status=status))


@router.post("/organisation/requests/{kind}/{request_id}/{decision}",
             dependencies=[CsrfChecked])
async def decide(request: Request, kind: str, request_id: str, decision: str,
                 session: OperatorSession, reason: Annotated[str, Form()] = "",
                 back: Annotated[str, Form()] = "/organisation/requests") -> Response:
    """Approve or reject another operator's request (its proposer is refused by clients)."""
    if kind not in REQUEST_KINDS or decision not in ("approve", "reject"):
        return render(request, "forbidden.html", code=404, reason="unknown_service")
    body = {"reason": reason.strip()} if decision == "reject" else None
    reply = await upstream(request).post("clients",
                                         f"{REQUEST_KINDS[kind]}/{request_id}/{decision}",
                                         session.token, json=body)
    target = safe_next(back)
    if not reply.ok:
        return render(request, "action_failed.html", code=reply.status or 502, reply=reply,
                      back=target)
    flash = "request_approved" if decision == "approve" else "request_rejected"
    return redirect(with_flash(target, flash), request)
