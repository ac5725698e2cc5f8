"""Reconciliation alerts: each difference between our books and a provider's statement,
oldest first, resolved with a note; and a reconciliation run on demand."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from console.paging import href, next_href, with_flash
from console.session import CsrfChecked, OperatorSession
from console.web import redirect, render, safe_next, upstream

router = APIRouter()

PAGE = 50
STATUSES = ("open", "resolved")
MISMATCHES = ("ours_only", "theirs_only", "amount_mismatch")


@router.get("/reconciliation/alerts")
async def alerts(request: Request, session: OperatorSession, provider: str = "",
                 date: str = "", status: str = "open", cursor: str = "") -> Response:
    filters = {"provider": provider.strip(), "date": date.strip(), "status": status.strip()}
    reply = await upstream(request).get("payments", "/v1/reconciliation/alerts",
                                        session.token, {**filters, "limit": PAGE,
                                                        "cursor": cursor})
    here = href("/reconciliation/alerts", **filters, cursor=cursor)
    return render(request, "recon_alerts.html", reply=reply, rows=reply.items(),
                  statuses=STATUSES, cursor=cursor, here=here,
                  providers=request.app.state.settings.provider_names(),
                  provider=filters["provider"], day=filters["date"], status=filters["status"],
                  next_href=next_href("/reconciliation/alerts", "cursor",
                                      reply.obj().get("next_cursor"), **filters),
                  first_href=href("/reconciliation/alerts", **filters))


@router.post("/reconciliation/alerts/{alert_id}/resolve", dependencies=[CsrfChecked])
async def resolve(request: Request, alert_id: str, session: OperatorSession,
                  note: Annotated[str, Form()] = "",
                  back: Annotated[str, Form()] = "/reconciliation/alerts") -> Response:
    reply = await upstream(request).post(
        "payments", f"/v1/reconciliation/alerts/{quote(alert_id, safe='')}/resolve",
        session.token, json={"note": note.strip()})
    target = safe_next(back)
    if not reply.ok:
        return render(request, "action_failed.html", code=reply.status or 502, reply=reply,
                      back=target)
    return redirect(with_flash(target, "alert_resolved"), request)


@router.post("/reconciliation/run", dependencies=[CsrfChecked])
async def run_now(request: Request, session: OperatorSession,
                  provider: Annotated[str, Form()] = "",
                  date: Annotated[str, Form()] = "") -> Response:
    """Reconcile a provider's business day now: payments settles what the statement
    proves and raises each difference as an alert (idempotent)."""
    body: dict[str, str] = {"provider": provider.strip()}
    if date.strip():
        body["date"] = date.strip()
    reply = await upstream(request).post("payments", "/v1/reconciliation/runs",
                                         session.token, json=body)
    back = href("/reconciliation/alerts", provider=provider.strip(), date=date.strip())
    if not reply.ok:
        return render(request, "action_failed.html", code=reply.status or 502, reply=reply,
                      back=back)
    return redirect(with_flash(back, "recon_ran"), request)
