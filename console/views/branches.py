"""The branch network at work: PAR and collections by region, branch and loan officer,
the due and overdue list, the officer's collection sheet with cash entry, and the
branch's day-end cash count."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from console import present
from console.paging import href, next_href, with_flash
from console.session import CsrfChecked, OperatorSession
from console.upstream import Reply
from console.views.business import client_phones
from console.views.business import today as business_today
from console.web import not_found, redirect, render, upstream

router = APIRouter()

CHILDREN_PAGE = 50
"""Offices (or officers) drawn per dashboard page, each with its own portfolio call."""
DUE_PAGE = 100
HISTORY = 30


def q(value: str) -> str:
    return quote(value, safe="")


def today() -> str:
    """The business day (Africa/Casablanca) the officer's sheet and cash count default to."""
    return business_today().isoformat()


def part(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def par_list(data: dict[str, Any]) -> list[dict[str, Any]]:
    values = present.par_values(data)
    return [{"label": f"par{d}", "ratio": values.get(f"par{d}"),
             "principal": values.get(f"par{d}_principal")} for d in ("1", "30", "90")]


def figures(reply: Reply) -> dict[str, Any]:
    """A portfolio answer as one dashboard row: outstanding, loans, PAR, collections."""
    data = reply.obj()
    snap = part(data, "last_snapshot")
    collected = part(snap, "collected")
    return {"ok": reply.ok, "outstanding": data.get("outstanding_principal"),
            "loans": data.get("loans_active"), "par": par_list(data),
            "collected": collected.get("amount"), "payments": collected.get("payments"),
            "as_of": data.get("as_of_business_date")}


@router.get("/branches")
async def dashboard(request: Request, session: OperatorSession, office_id: str = "",
                    officer_id: str = "", cursor: str = "", staff_cursor: str = ""
                    ) -> Response:
    """Region → branch → officer: the office's (or institution's) figures, then one row per
    child office and per loan officer of the office, each drilling down."""
    up = upstream(request)
    tok = session.token
    office_id, officer_id = office_id.strip(), officer_id.strip()
    scope = {"office_id": office_id, "officer_id": officer_id}
    current, history = await up.gather(
        up.get("loans", "/v1/portfolio", tok, scope),
        up.get("loans", "/v1/portfolio/history", tok, {**scope, "limit": HISTORY}))
    children = officers = None
    child_rows: list[dict[str, Any]] = []
    officer_rows: list[dict[str, Any]] = []
    if not officer_id:
        children = await up.get("clients", "/v1/offices", tok, {
            "parent_id": office_id, "kind": "" if office_id else "region",
            "limit": CHILDREN_PAGE, "cursor": cursor})
        kids = children.items()
        replies = await up.gather(*(up.get("loans", "/v1/portfolio", tok,
                                           {"office_id": o.get("id")}) for o in kids))
        child_rows = [{**o, **figures(r), "reply": r}
                      for o, r in zip(kids, replies, strict=True)]
        if office_id:
            officers = await up.get("clients", "/v1/staff", tok, {
                "office_id": office_id, "role": "loan_officer", "limit": CHILDREN_PAGE,
                "cursor": staff_cursor})
            people = officers.items()
            replies = await up.gather(*(up.get("loans", "/v1/portfolio", tok,
                                               {"officer_id": s.get("id")}) for s in people))
            officer_rows = [{**s, **figures(r), "reply": r}
                            for s, r in zip(people, replies, strict=True)]
    return render(
        request, "branches.html", code=not_found(current) if office_id or officer_id else 200,
        current=current,
        here_figures=figures(current),
        history=history, snapshots=history.items(),
        scope=current.obj().get("scope") or {}, office_id=office_id,
        officer_id=officer_id, children=children, child_rows=child_rows,
        officers=officers, officer_rows=officer_rows, cursor=cursor,
        staff_cursor=staff_cursor,
        next_children=next_href("/branches", "cursor", children.obj().get("next_cursor"),
                                office_id=office_id) if children else None,
        next_officers=next_href("/branches", "staff_cursor",
                                officers.obj().get("next_cursor"), office_id=office_id)
        if officers else None,
        first_href=href("/branches", office_id=office_id), today=today())


@router.get("/due")
async def due(request: Request, session: OperatorSession, date: str = "",
              cursor: str = "") -> Response:
    """Everything unpaid due on or before the date, with days late, every page."""
    day = date.strip() or today()
    reply = await upstream(request).get("loans", "/v1/installments/due", session.token,
                                        {"date": day, "limit": DUE_PAGE, "cursor": cursor})
    rows = sorted(reply.items(), key=lambda r: (str(r.get("due_date") or ""),
                                               str(r.get("loan_id") or "")))
    clients = await client_phones(request, session.token,
                                  [str(r.get("client_id", "")) for r in rows])
    totals = reply.obj().get("totals") if isinstance(reply.obj().get("totals"), dict) else {}
    return render(request, "due.html", reply=reply, rows=rows, clients=clients, day=day,
                  totals=totals, cursor=cursor,
                  next_href=next_href("/due", "cursor", reply.obj().get("next_cursor"),
                                      date=day),
                  first_href=href("/due", date=day))


@router.get("/collection-sheet")
async def collection_sheet(request: Request, session: OperatorSession,
                           officer_id: str = "", date: str = "") -> Response:
    """The officer's sheet for a day, with one cash form for every line: its
    Idempotency-Key is made once per render, so a double submit records once."""
    officer_id, day = officer_id.strip(), date.strip() or today()
    reply = None
    if officer_id:
        reply = await upstream(request).get("loans", "/v1/collection-sheets", session.token,
                                            {"officer_id": officer_id, "date": day})
    sheet = reply.obj() if reply else {}
    return render(request, "collection_sheet.html", code=not_found(reply), reply=reply,
                  sheet=sheet,
                  groups=sheet.get("groups") or [], officer_id=officer_id, day=day,
                  idempotency_key=str(uuid.uuid4()))


@router.get("/collection-sheet/{sheet_id}/csv")
async def sheet_csv(request: Request, sheet_id: str, session: OperatorSession) -> Response:
    reply = await upstream(request).call("loans", "GET", f"/v1/collection-sheets/{q(sheet_id)}",
                                         session.token, params={"format": "csv"},
                                         accept="text/csv")
    if not reply.ok:
        return render(request, "action_failed.html", code=reply.status or 502, reply=reply,
                      back="/collection-sheet")
    name = "".join(c for c in sheet_id if c.isalnum() or c in "-_") or "sheet"
    return Response(reply.text, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}.csv"'})


@router.get("/collection-sheet/{sheet_id}/print")
async def sheet_print(request: Request, sheet_id: str, session: OperatorSession) -> Response:
    reply = await upstream(request).get("loans", f"/v1/collection-sheets/{q(sheet_id)}",
                                        session.token)
    sheet = reply.obj()
    return render(request, "collection_sheet_print.html",
                  code=200 if reply.ok or not reply.status else reply.status,
                  reply=reply, sheet=sheet, groups=sheet.get("groups") or [])


def amount_of(value: str) -> Decimal | None:
    text = value.strip().replace("\u202f", "").replace(" ", "").replace(",", ".")
    if not text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None
    return amount.quantize(Decimal("0.01")) if amount > 0 else None


@router.post("/collection-sheet/{sheet_id}/collections", dependencies=[CsrfChecked])
async def record_cash(request: Request, sheet_id: str, session: OperatorSession,
                      loan_id: Annotated[list[str] | None, Form()] = None,
                      amount: Annotated[list[str] | None, Form()] = None,
                      idempotency_key: Annotated[str, Form()] = "",
                      officer_id: Annotated[str, Form()] = "",
                      day: Annotated[str, Form()] = "") -> Response:
    """Every line with an amount in one request, under the form's Idempotency-Key."""
    back = href("/collection-sheet", officer_id=officer_id, date=day)
    pairs = zip(loan_id or [], amount or [], strict=False)
    lines = [{"loan_id": lid, "amount": str(a)} for lid, raw in pairs
             if (a := amount_of(raw)) is not None]
    if not lines:
        return redirect(with_flash(back, "nothing_collected"), request)
    reply = await upstream(request).post(
        "loans", f"/v1/collection-sheets/{q(sheet_id)}/collections", session.token,
        json={"lines": lines}, idempotency_key=idempotency_key or str(uuid.uuid4()))
    return render(request, "collection_result.html", code=(reply.status or 502)
                  if not reply.ok else 200, reply=reply, result=reply.obj(), back=back)


@router.get("/branch-cash")
async def branch_cash(request: Request, session: OperatorSession, office_id: str = "",
                      date: str = "") -> Response:
    office_id, day = office_id.strip(), date.strip() or today()
    reply = None
    if office_id:
        reply = await upstream(request).get("loans", "/v1/cash-reconciliations",
                                            session.token,
                                            {"office_id": office_id, "business_date": day})
    return render(request, "branch_cash.html", code=not_found(reply), reply=reply,
                  count=reply.obj() if reply else {}, office_id=office_id, day=day,
                  idempotency_key=str(uuid.uuid4()))


@router.post("/branch-cash", dependencies=[CsrfChecked])
async def count_cash(request: Request, session: OperatorSession,
                     office_id: Annotated[str, Form()] = "", day: Annotated[str, Form()] = "",
                     declared: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "",
                     idempotency_key: Annotated[str, Form()] = "") -> Response:
    back = href("/branch-cash", office_id=office_id.strip(), date=day.strip())
    text = declared.strip().replace("\u202f", "").replace(" ", "").replace(",", ".")
    reply = await upstream(request).post(
        "loans", "/v1/cash-reconciliations", session.token,
        json={"office_id": office_id.strip(), "business_date": day.strip(),
              "declared": text, "note": note.strip()[:500]},
        idempotency_key=idempotency_key or str(uuid.uuid4()))
    if not reply.ok:
        return render(request, "action_failed.html", code=reply.status or 502, reply=reply,
                      back=back)
    return redirect(with_flash(back, "cash_counted"), request)


GROUP_MEMBERS_MAX = 10
"""loans takes at most ten members in a group loan: one schedule call each."""


@router.get("/group-loans")
async def find_group_loan(request: Request, session: OperatorSession, id: str = ""
                          ) -> Response:
    """Open a group loan by its id (loans lists none by group)."""
    if id.strip():
        return redirect(f"/group-loans/{q(id.strip())}", request)
    return render(request, "group_loan.html", reply=None, data={}, group_loan_id="",
                  members=[], saga=None, clients={})


@router.get("/group-loans/{group_loan_id}")
async def group_loan(request: Request, group_loan_id: str, session: OperatorSession
                     ) -> Response:
    """A solidarity group's loan: its members (each with their own loan, arrears and
    schedule), the one disbursement saga of the group, and whether the group is in
    arrears (joint liability: then no member gets new credit)."""
    up = upstream(request)
    tok = session.token
    reply = await up.get("loans", f"/v1/group-loans/{q(group_loan_id)}", tok)
    data = reply.obj()
    listed = data.get("members")
    members = [m for m in listed if isinstance(m, dict)][:GROUP_MEMBERS_MAX] \
        if isinstance(listed, list) else []
    saga_part = part(data, "saga")
    saga_id = str(saga_part.get("id") or data.get("saga_id") or "")
    schedules = await up.gather(*(
        up.get("loans", f"/v1/loans/{q(str(m.get('loan_id', '')))}/schedule", tok)
        for m in members))
    saga = await up.get("loans", f"/v1/sagas/{q(saga_id)}", tok) if saga_id else None
    clients = await client_phones(request, tok, [str(m.get("client_id", "")) for m in members])
    rows = []
    for member, schedule in zip(members, schedules, strict=True):
        installments = schedule.obj().get("installments")
        rows.append({**member, "schedule": schedule,
                     "installments": [i for i in installments if isinstance(i, dict)]
                     if isinstance(installments, list) else []})
    return render(request, "group_loan.html",
                  code=200 if reply.ok or not reply.status else reply.status,
                  reply=reply, data=data, group_loan_id=group_loan_id, members=rows,
                  saga=saga, saga_summary=saga_part, clients=clients)
