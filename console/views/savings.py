"""Savings: accounts (search, statement with running balance, available against ledger),
products, withdrawals in flight or in doubt, the day's deposits and withdrawals, and the
requests that a group's compulsory savings cover a member's arrears (a checker approves
or rejects them here)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from console.paging import href, next_href, with_flash
from console.session import CsrfChecked, OperatorSession
from console.upstream import Reply
from console.views.business import today as business_today
from console.web import redirect, render, upstream

router = APIRouter()

ACCOUNT_STATUSES = ("pending_approval", "active", "dormant", "matured", "closed", "rejected")
OPEN_WITHDRAWALS = ("pending", "in_doubt", "review")
ACCOUNTS_PAGE = 200
WITHDRAWALS_PAGE = 200
STATEMENT_LIMIT = 1000
DAY_PAYMENTS_PAGE = 500
COVER_STATUSES = ("pending", "approved", "rejected")
COVERS_PAGE = 200


def month_span(month: str) -> tuple[dt.date, dt.date]:
    """The first and last day of ``YYYY-MM`` (the business day's month when it is not one)."""
    try:
        first = dt.date.fromisoformat(f"{month}-01")
    except ValueError:
        first = business_today().replace(day=1)
    following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return first, following - dt.timedelta(days=1)


def shift(first: dt.date, months: int) -> str:
    index = first.year * 12 + first.month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@router.get("/savings")
async def accounts(request: Request, session: OperatorSession, q: str = "",
                   client_id: str = "", status: str = "") -> Response:
    up = upstream(request)
    q = q.strip()
    if q:
        # an account id or its SAV- payment reference, in any case
        found = await up.get("savings", f"/v1/savings/accounts/{quote(q, safe='')}",
                             session.token)
        if found.ok and found.obj().get("id"):
            return redirect(f"/savings/accounts/{found.obj()['id']}", request)
    status = status if status in ACCOUNT_STATUSES else ""
    reply = await up.get("savings", "/v1/savings/accounts", session.token,
                         {"client_id": client_id.strip(), "status": status,
                          "limit": ACCOUNTS_PAGE})
    return render(request, "savings.html", reply=reply, rows=reply.items(), q=q,
                  not_found=bool(q), client_id=client_id.strip(), status=status,
                  statuses=ACCOUNT_STATUSES, limit=ACCOUNTS_PAGE)


@router.get("/savings/accounts/{account_id}")
async def account(request: Request, account_id: str, session: OperatorSession,
                  month: str = "") -> Response:
    up = upstream(request)
    ref = quote(account_id, safe="")
    first, last = month_span(month.strip())
    acct, statement, withdrawals = await up.gather(
        up.get("savings", f"/v1/savings/accounts/{ref}", session.token),
        up.get("savings", f"/v1/savings/accounts/{ref}/statement", session.token,
               {"from": first.isoformat(), "to": last.isoformat(),
                "limit": STATEMENT_LIMIT}),
        up.get("savings", f"/v1/savings/accounts/{ref}/withdrawals", session.token,
               {"limit": WITHDRAWALS_PAGE}),
    )
    data = acct.obj()
    ledger = await up.get("payments", f"/v1/ledger/savings/{quote(str(data['id']), safe='')}",
                          session.token) if data.get("id") else None
    lines = statement.obj().get("lines")
    return render(request, "savings_account.html", account_id=account_id, acct=acct,
                  data=data, statement=statement, st=statement.obj(),
                  lines=[x for x in lines if isinstance(x, dict)] if isinstance(lines, list)
                  else [], withdrawals=withdrawals, ledger=ledger,
                  month=first.strftime("%Y-%m"), first=first, last=last,
                  prev_month=shift(first, -1), next_month=shift(first, 1),
                  statement_limit=STATEMENT_LIMIT, withdrawals_limit=WITHDRAWALS_PAGE)


@router.get("/savings/products")
async def products(request: Request, session: OperatorSession) -> Response:
    reply = await upstream(request).get("savings", "/v1/savings/products", session.token)
    return render(request, "savings_products.html", reply=reply, rows=reply.items())


@router.get("/savings/withdrawals")
async def withdrawals(request: Request, session: OperatorSession) -> Response:
    """Withdrawals not final: waiting for the payout, in doubt, or held for review."""
    up = upstream(request)
    replies = await up.gather(*(
        up.get("savings", "/v1/savings/withdrawals", session.token,
               {"status": s, "limit": WITHDRAWALS_PAGE}) for s in OPEN_WITHDRAWALS))
    return render(request, "savings_withdrawals.html",
                  by_status=dict(zip(OPEN_WITHDRAWALS, replies, strict=True)),
                  limit=WITHDRAWALS_PAGE)


def is_savings_reference(value: Any) -> bool:
    return str(value or "").lower().startswith("sav-")


@router.get("/savings/day")
async def day(request: Request, session: OperatorSession, date: str = "",
              cursor: str = "") -> Response:
    """The day's deposits (wallet deposits from payments' collections, branch cash from
    savings) and withdrawals requested that day."""
    up = upstream(request)
    day_ = date.strip() or business_today().isoformat()
    wallet, branch, requested = await up.gather(
        up.get("payments", "/v1/payments", session.token,
               {"date": day_, "kind": "collection", "limit": DAY_PAYMENTS_PAGE,
                "cursor": cursor}),
        up.get("savings", "/v1/savings/deposits", session.token, {"date": day_}),
        up.get("savings", "/v1/savings/withdrawals", session.token,
               {"limit": WITHDRAWALS_PAGE}),
    )
    deposits = [p for p in wallet.items() if is_savings_reference(p.get("loan_id"))]
    todays = [w for w in requested.items() if str(w.get("requested_on", "")) == day_]
    return render(request, "savings_day.html", day=day_, wallet=wallet, deposits=deposits,
                  branch=branch, requested=requested, todays=todays, cursor=cursor,
                  limit=WITHDRAWALS_PAGE,
                  next_href=next_href("/savings/day", "cursor",
                                      wallet.obj().get("next_cursor"), date=day_),
                  first_href=href("/savings/day", date=day_))


async def covers_page(request: Request, token: str, status: str, *,
                      failed: Reply | None = None, failed_id: str = "") -> Response:
    status = status if status in COVER_STATUSES else "pending"
    reply = await upstream(request).get("savings", "/v1/savings/arrears-cover-requests",
                                        token, {"status": status, "limit": COVERS_PAGE})
    return render(request, "savings_covers.html", code=(failed.status or 502) if failed
                  else 200, reply=reply, rows=reply.items(), status=status,
                  statuses=COVER_STATUSES, failed=failed, failed_id=failed_id,
                  decide_key=str(uuid.uuid4()), limit=COVERS_PAGE)


@router.get("/savings/arrears-covers")
async def arrears_covers(request: Request, session: OperatorSession,
                         status: str = "pending") -> Response:
    """Requests that a group's compulsory savings pay a member's overdue installments:
    those waiting for a checker first."""
    return await covers_page(request, session.token, status)


@router.post("/savings/arrears-covers/{request_id}/{decision}", dependencies=[CsrfChecked])
async def decide_cover(request: Request, request_id: str, decision: str,
                       session: OperatorSession, reason: Annotated[str, Form()] = "",
                       idempotency_key: Annotated[str, Form()] = "") -> Response:
    """Approve (the savings pay the loan) or reject another operator's request; its maker
    gets 403. The form's key makes a double submit one decision."""
    if decision not in ("approve", "reject"):
        return render(request, "forbidden.html", code=404, reason="unknown_service")
    path = f"/v1/savings/arrears-cover-requests/{quote(request_id, safe='')}/{decision}"
    up = upstream(request)
    if decision == "approve":
        reply = await up.post("savings", path, session.token,
                              idempotency_key=idempotency_key.strip()[:200]
                              or str(uuid.uuid4()))
    else:
        reply = await up.post("savings", path, session.token,
                              json={"reason": reason.strip()[:500]})
    if reply.ok:
        flash = "request_approved" if decision == "approve" else "request_rejected"
        return redirect(with_flash("/savings/arrears-covers", flash), request)
    return await covers_page(request, session.token, "pending", failed=reply,
                             failed_id=request_id)
