"""The business at a glance: portfolio health, today's collections, money movements."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from console import charts, present
from console.i18n import money, to_decimal, translator
from console.paging import href, open_proposals, with_flash
from console.session import CsrfChecked, OperatorSession
from console.upstream import Reply
from console.web import language, redirect, render, safe_next, upstream
from shared import clock

router = APIRouter()

PORTFOLIO = "/v1/portfolio"
PORTFOLIO_HISTORY = "/v1/portfolio/history"
DUE = "/v1/installments/due"
PAYMENTS = "/v1/payments"
HELD_REFUNDS = "/v1/refunds/held"
PAYMENTS_PAGE = 500
HELD_PAGE = 50
MAX_CLIENT_LOOKUPS = 50
ACTIVE_PAGE = 500
FAILED_SAGAS = ("failed", "compensated", "compensating", "credit_rejected")


now: clock.Clock = clock.system_clock
"""What time it is (a test sets the time here instead of waiting for midnight)."""


def today() -> dt.date:
    """The institution's business day, a local day in Africa/Casablanca: from 23:00 UTC
    (midnight in Casablanca, UTC+1 outside Ramadan) it is already the next day, whatever
    the UTC date says."""
    return clock.business_date(now())


@router.get("/")
async def portfolio(request: Request, session: OperatorSession) -> Response:
    up = upstream(request)
    current, history = await up.gather(
        up.get("loans", PORTFOLIO, session.token),
        up.get("loans", PORTFOLIO_HISTORY, session.token, {"limit": 60}),
    )
    data = current.obj()
    lang = language(request)
    t = translator(lang)
    buckets = present.arrears_buckets(data)
    bucket_chart = charts.bar_chart(
        [(str(b["bucket"]), to_decimal(b["principal"]) or 0) for b in buckets],
        title=t("portfolio.buckets"),
        value_text=[money(b["principal"], lang) for b in buckets],
    ) if buckets else None
    trend_chart = None
    if history.ok:
        snapshots = history.items()
        if snapshots:
            labels, series = present.trend(snapshots)
            trend_chart = charts.line_chart(labels, series, title=t("portfolio.trend"), unit="%")
    return render(
        request, "portfolio.html", current=current, history=history, data=data,
        par=present.par_values(data), buckets=buckets, bucket_chart=bucket_chart,
        trend_chart=trend_chart,
        outstanding=present.first(data, "outstanding_principal", "outstanding",
                                  "total_outstanding"),
        active_loans=present.first(data, "loans_active", "active_loans"),
        business_date=present.first(data, "as_of_business_date", "business_date"),
    )


async def client_phones(request: Request, token: str, client_ids: list[str]
                        ) -> dict[str, dict[str, Any]]:
    """Each client's name and phone, asked of the clients service (bounded)."""
    up = upstream(request)
    wanted = list(dict.fromkeys(c for c in client_ids if c))[:MAX_CLIENT_LOOKUPS]
    replies = await up.gather(*(up.get("clients", f"/v1/clients/{c}", token) for c in wanted))
    return {c: r.obj() for c, r in zip(wanted, replies, strict=True) if r.ok}


def due_from_active(loans: list[dict[str, Any]], day: str) -> list[dict[str, Any]]:
    """Installments due on ``day`` or earlier and still unpaid, from the loans' next due."""
    rows = []
    for loan in loans:
        nxt = loan.get("next_due")
        if isinstance(nxt, dict) and str(nxt.get("due_date", "")) <= day:
            rows.append({"loan_id": loan.get("id"), "client_id": loan.get("client_id"),
                         "installment": nxt.get("installment"), "due_date": nxt.get("due_date"),
                         "amount_due": nxt.get("amount"), "paid": None,
                         "days_in_arrears": loan.get("days_in_arrears"),
                         "status": "overdue" if str(nxt.get("due_date")) < day else "due"})
    return rows


def due_rows(reply: Reply) -> list[dict[str, Any]]:
    """loans' ``GET /v1/installments/due`` items, whatever it calls the installment number."""
    rows = []
    for item in reply.items():
        number = present.first(item, "installment", "installment_number", "number")
        rows.append({**item, "installment": number})
    return rows


@router.get("/collections")
async def collections(request: Request, session: OperatorSession,
                      date: str | None = None, cursor: str = "") -> Response:
    day = date or today().isoformat()
    up = upstream(request)
    due, collected = await up.gather(
        up.get("loans", DUE, session.token, {"date": day, "limit": ACTIVE_PAGE,
                                             "cursor": cursor}),
        up.get("payments", PAYMENTS, session.token,
               {"date": day, "kind": "collection", "limit": 1}),
    )
    derived: Reply | None = None
    if due.ok:
        rows = due_rows(due)
    else:
        # loans has no "due on a date" view: derive the unpaid ones from the active
        # loans' next installment (one bounded page, said so on the page).
        derived = await up.get("loans", "/v1/loans", session.token,
                               {"status": "active", "limit": ACTIVE_PAGE})
        rows = due_from_active(derived.items(), day)
    clients = await client_phones(request, session.token,
                                  [str(r.get("client_id", "")) for r in rows])
    unpaid = [r for r in rows if str(r.get("status", "")) not in ("paid", "closed")]
    due_totals = due.obj().get("totals") if due.ok else None
    total_due = present.total(rows, "total", "amount_due", "amount")
    if isinstance(due_totals, dict) and due_totals.get("amount_due") is not None:
        total_due = due_totals["amount_due"]
    collected_day = (collected.obj().get("totals") or {}).get("collection") or {}
    return render(
        request, "collections.html", day=day, due=due, derived=derived, rows=rows,
        clients=clients, unpaid=unpaid, active_page=ACTIVE_PAGE, total_due=total_due,
        total_paid=present.total(rows, "paid", "amount_paid"), collected=collected,
        collected_day=collected_day, more_due=bool(due.obj().get("next_cursor")),
        next_due=(f"/collections?{urlencode({'date': day, 'cursor': due.obj()['next_cursor']})}"
                  if due.obj().get("next_cursor") else None), cursor=cursor,
    )


def is_on(row: dict[str, Any], day: str) -> bool:
    return str(present.first(row, "updated_at", "created_at") or "")[:10] == day


@router.get("/payments")
async def payments(request: Request, session: OperatorSession,
                   date: str | None = None, cursor: str = "",
                   held_cursor: str = "") -> Response:
    day = date or today().isoformat()
    up = upstream(request)
    sagas, collected, trial, held = await up.gather(
        up.get("loans", "/v1/sagas", session.token, {"limit": 500}),
        up.get("payments", PAYMENTS, session.token,
               {"date": day, "kind": "collection", "limit": PAYMENTS_PAGE,
                "cursor": cursor}),
        up.get("payments", "/v1/ledger/trial-balance", session.token),
        up.get("payments", HELD_REFUNDS, session.token,
               {"limit": HELD_PAGE, "cursor": held_cursor}),
    )
    proposals = await retry_proposals(request, session.token, held.items())
    todays = [s for s in sagas.items() if is_on(s, day)]
    payouts = [s for s in todays if s.get("state") == "completed"]
    failed = [s for s in todays if s.get("state") in FAILED_SAGAS]
    return render(
        request, "payments.html", day=day, sagas=sagas, todays=todays, payouts=payouts,
        failed=failed, collected=collected, trial=trial,
        payout_total=present.total([s.get("data") or {} for s in payouts], "amount"),
        collected_total=((collected.obj().get("totals") or {}).get("collection") or {}).get(
            "amount", present.total(collected.items(), "amount")),
        collected_more=bool(collected.obj().get("next_cursor")), held=held,
        next_collected=(
            f"/payments?{urlencode({'date': day, 'cursor': collected.obj()['next_cursor']})}"
            if collected.obj().get("next_cursor") else None), cursor=cursor,
        proposals=proposals, retry_key=str(uuid.uuid4()), held_cursor=held_cursor,
        # held refunds: oldest first, keyset pages (the collections' page is kept)
        next_held=href("/payments", date=day, cursor=cursor,
                       held_cursor=held.obj()["next_cursor"])
        if held.obj().get("next_cursor") else None,
        first_held=href("/payments", date=day, cursor=cursor),
    )


async def retry_proposals(request: Request, token: str, held: list[dict[str, Any]]
                          ) -> dict[str, dict[str, Any] | None]:
    """Each held refund's retry waiting for a second operator: ``{}`` when payments' held
    list says none is proposed (``retry_proposed``), else read from its last payout's audit
    (for the note), or from the list's ``retry_proposed_by``/``_at``; ``None``: not known
    (no payout to ask, or past the bounded lookups) — the page then offers both halves."""
    up = upstream(request)
    said = {str(r.get("payment_id")): r for r in held if "retry_proposed" in r}
    asked = [r for r in held if r.get("last_payout_id") and r.get("retry_proposed") is not False
             ][:MAX_CLIENT_LOOKUPS]
    replies = await up.gather(*(
        up.get("payments", f"/v1/payouts/{quote(str(r['last_payout_id']), safe='')}/audit",
               token) for r in asked))
    known: dict[str, dict[str, Any] | None] = {}
    for row, reply in zip(asked, replies, strict=True):
        if reply.ok:
            waiting = open_proposals(reply.items(), "refund_retry")
            known[str(row["payment_id"])] = waiting[-1] if waiting else {}
    for payment_id, row in said.items():
        if not row.get("retry_proposed"):
            known[payment_id] = {}
        elif not known.get(payment_id) and row.get("retry_proposed_by"):
            known[payment_id] = {"proposed_by": row["retry_proposed_by"],
                                 "proposed_at": row.get("retry_proposed_at"), "body": {}}
    return {str(r.get("payment_id")): known.get(str(r.get("payment_id"))) for r in held}


@router.post("/refunds/{refund_id}/retry", dependencies=[CsrfChecked])
async def retry_refund(request: Request, refund_id: str, session: OperatorSession,
                       idempotency_key: Annotated[str, Form()] = "",
                       note: Annotated[str, Form()] = "",
                       back: Annotated[str, Form()] = "/payments") -> Response:
    """Propose paying a held refund again (another operator approves); the form's key
    makes a double submit one proposal."""
    key = idempotency_key or str(uuid.uuid4())
    reply = await upstream(request).call(
        "payments", "POST", f"/v1/refunds/{quote(refund_id, safe='')}/retry", session.token,
        json={"note": note.strip()[:500]}, idempotency_key=key)
    target = safe_next(back)
    if not reply.ok:
        return render(request, "action_failed.html", code=reply.status or 502, reply=reply,
                      back=target)
    return redirect(with_flash(target, "refund_retry_proposed"), request)


@router.post("/refunds/{refund_id}/retry/approve", dependencies=[CsrfChecked])
async def approve_refund_retry(request: Request, refund_id: str, session: OperatorSession,
                               idempotency_key: Annotated[str, Form()] = "",
                               note: Annotated[str, Form()] = "",
                               back: Annotated[str, Form()] = "/payments") -> Response:
    """The second operator's half: payments pays the refund again (its proposer gets 403)."""
    reply = await upstream(request).call(
        "payments", "POST", f"/v1/refunds/{quote(refund_id, safe='')}/retry/approve",
        session.token, json={"note": note.strip()[:500]},
        idempotency_key=idempotency_key or str(uuid.uuid4()))
    target = safe_next(back)
    if not reply.ok:
        return render(request, "action_failed.html", code=reply.status or 502, reply=reply,
                      back=target)
    return redirect(with_flash(target, "refund_retry_approved"), request)
