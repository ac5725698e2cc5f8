"""Accounting: trial balance, income statement and balance sheet (per office or
consolidated, with CSV), the lines behind a GL account, manual journals waiting for a
second operator, and which periods are closed.

payments' lists are keyset-paged (``next_cursor``: journals oldest first, a GL account's
lines newest first): every row is reached page by page, never a first page only. Its
accounting writes take an ``Idempotency-Key``: each rendered form carries one, so a
double submit is one write."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from console.paging import href, next_href, with_flash
from console.session import CsrfChecked, OperatorSession
from console.upstream import Reply
from console.views.business import today as business_today
from console.web import redirect, render, upstream

router = APIRouter()

STATEMENTS = {"trial-balance": "/v1/statements/trial-balance",
              "income": "/v1/statements/income",
              "balance-sheet": "/v1/statements/balance-sheet"}
SECTIONS = {"trial-balance": ("accounts",), "income": ("income", "expenses"),
            "balance-sheet": ("assets", "liabilities", "equity")}
TOTALS = {"trial-balance": ("total_debits", "total_credits"),
          "income": ("total_income", "total_expenses", "net_income"),
          "balance-sheet": ("total_assets", "total_liabilities", "total_equity",
                            "unclosed_result")}
LINES_PAGE = 100
JOURNALS_PAGE = 50
JOURNAL_STATUSES = ("proposed", "approved", "rejected")
OFFICES_SHOWN = 200


def statement_params(statement: str, as_of: str, since: str, to: str,
                     office_id: str) -> dict[str, str]:
    if statement == "income":
        return {"from": since, "to": to, "office_id": office_id}
    return {"as_of": as_of, "office_id": office_id}


async def offices(request: Request, token: str) -> list[dict[str, Any]]:
    """Offices for the office picker (the clients service's first page)."""
    reply = await upstream(request).get("clients", "/v1/offices", token,
                                        {"limit": OFFICES_SHOWN})
    return reply.items()


@router.get("/accounting")
async def statements(request: Request, session: OperatorSession,
                     statement: str = "trial-balance", as_of: str = "", to: str = "",
                     office_id: str = "") -> Response:
    since = request.query_params.get("from", "")  # ``from`` is a Python keyword
    statement = statement if statement in STATEMENTS else "trial-balance"
    params = statement_params(statement, as_of.strip(), since.strip(), to.strip(),
                              office_id.strip())
    reply = await upstream(request).get("payments", STATEMENTS[statement], session.token,
                                        params)
    data = reply.obj()
    sections = {name: [r for r in data.get(name) or [] if isinstance(r, dict)]
                for name in SECTIONS[statement]}
    # drill-down: the lines behind an account over the statement's span
    span = {"from": data.get("from") or "", "to": data.get("to") or data.get("as_of") or "",
            "office_id": office_id.strip()}
    drill = urlencode({k: v for k, v in span.items() if v})
    return render(request, "accounting.html", statement=statement, statements=STATEMENTS,
                  reply=reply, data=data, sections=sections, totals=TOTALS[statement],
                  as_of=as_of, since=since, to=to, office_id=office_id.strip(),
                  offices=await offices(request, session.token), drill=drill,
                  csv_href=href("/accounting/download", statement=statement, **params))


@router.get("/accounting/download")
async def download(request: Request, session: OperatorSession,
                   statement: str = "trial-balance", as_of: str = "", to: str = "",
                   office_id: str = "") -> Response:
    """The statement as payments' CSV, downloaded under the operator's own token."""
    statement = statement if statement in STATEMENTS else "trial-balance"
    params = statement_params(statement, as_of.strip(),
                              request.query_params.get("from", "").strip(), to.strip(),
                              office_id.strip())
    reply = await upstream(request).call("payments", "GET", STATEMENTS[statement],
                                         session.token, params={**params, "format": "csv"},
                                         accept="text/csv")
    if not reply.ok or not reply.text:
        return render(request, "action_failed.html", code=reply.status or 502, reply=reply,
                      back=href("/accounting", statement=statement, **params))
    name = "-".join(x for x in (statement, params.get("as_of") or params.get("to") or "",
                                office_id.strip() or "consolidated") if x)
    safe = "".join(c for c in name if c.isalnum() or c in "-_.")
    return Response(reply.text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{safe}.csv"'})


@router.get("/accounting/gl/{code}")
async def gl_lines(request: Request, code: str, session: OperatorSession, to: str = "",
                   office_id: str = "", cursor: str = "") -> Response:
    since = request.query_params.get("from", "").strip()
    filters = {"from": since, "to": to.strip(), "office_id": office_id.strip()}
    reply = await upstream(request).get(
        "payments", f"/v1/gl-accounts/{quote(code, safe='')}/lines", session.token,
        {**filters, "limit": LINES_PAGE, "cursor": cursor})
    lines = reply.obj().get("lines")
    base = f"/accounting/gl/{quote(code, safe='')}"
    return render(request, "gl_lines.html", gl_code=code, reply=reply,
                  lines=[x for x in lines if isinstance(x, dict)] if isinstance(lines, list)
                  else [], since=since, to=to.strip(), office_id=office_id.strip(),
                  cursor=cursor,
                  next_href=next_href(base, "cursor", reply.obj().get("next_cursor"),
                                      **filters),
                  first_href=href(base, **filters))


def journal_lines(journal: dict[str, Any]) -> list[dict[str, Any]]:
    lines = journal.get("lines")
    return [x for x in lines if isinstance(x, dict)] if isinstance(lines, list) else []


async def journals_page(request: Request, token: str, status: str, cursor: str = "", *,
                        failed: Reply | None = None, failed_id: str = "") -> Response:
    """One page of the journals, oldest first (a queue), as payments orders them."""
    status = status if status in JOURNAL_STATUSES else "proposed"
    reply = await upstream(request).get("payments", "/v1/journals", token,
                                        {"status": status, "order": "asc",
                                         "limit": JOURNALS_PAGE, "cursor": cursor})
    base = "/accounting/journals"
    return render(request, "journals.html", code=(failed.status or 502) if failed else 200,
                  reply=reply, rows=reply.items(), status=status, statuses=JOURNAL_STATUSES,
                  journal_lines=journal_lines, failed=failed, failed_id=failed_id,
                  cursor=cursor, decide_key=str(uuid.uuid4()),
                  next_href=next_href(base, "cursor", reply.obj().get("next_cursor"),
                                      status=status),
                  first_href=href(base, status=status))


@router.get("/accounting/journals")
async def journals(request: Request, session: OperatorSession,
                   status: str = "proposed", cursor: str = "") -> Response:
    return await journals_page(request, session.token, status, cursor)


@router.post("/accounting/journals/{journal_id}/{decision}", dependencies=[CsrfChecked])
async def decide(request: Request, journal_id: str, decision: str,
                 session: OperatorSession, note: Annotated[str, Form()] = "",
                 idempotency_key: Annotated[str, Form()] = "") -> Response:
    """Approve (posts it) or reject another operator's journal; its maker gets 403. The
    form's key makes a double submit one decision."""
    if decision not in ("approve", "reject"):
        return render(request, "forbidden.html", code=404, reason="unknown_service")
    body = {"note": note.strip()[:500]} if note.strip() else None
    reply = await upstream(request).post(
        "payments", f"/v1/journals/{quote(journal_id, safe='')}/{decision}", session.token,
        json=body, idempotency_key=idempotency_key.strip()[:200] or str(uuid.uuid4()))
    if reply.ok:
        flash = "journal_approved" if decision == "approve" else "journal_rejected"
        return redirect(with_flash("/accounting/journals", flash), request)
    return await journals_page(request, session.token, "proposed", failed=reply,
                               failed_id=journal_id)


@router.get("/accounting/periods")
async def periods(request: Request, session: OperatorSession) -> Response:
    reply = await upstream(request).get("payments", "/v1/periods", session.token)
    closed = reply.obj().get("closed")
    rows = [p for p in closed if isinstance(p, dict)] if isinstance(closed, list) else []
    today = business_today()
    last_month = (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
    closed_ids = {str(p.get("period")) for p in rows}
    return render(request, "periods.html", reply=reply, rows=rows,
                  current=today.strftime("%Y-%m"), suggested=last_month,
                  suggested_open=last_month not in closed_ids,
                  idempotency_key=str(uuid.uuid4()))


@router.post("/accounting/periods/close", dependencies=[CsrfChecked])
async def close_period(request: Request, session: OperatorSession,
                       period: Annotated[str, Form()] = "",
                       idempotency_key: Annotated[str, Form()] = "") -> Response:
    """Close a month; the form's key makes a double submit one close."""
    reply = await upstream(request).post(
        "payments", f"/v1/periods/{quote(period.strip(), safe='')}/close", session.token,
        idempotency_key=idempotency_key.strip()[:200] or str(uuid.uuid4()))
    if not reply.ok:
        return render(request, "action_failed.html", code=reply.status or 502, reply=reply,
                      back="/accounting/periods")
    return redirect(with_flash("/accounting/periods", "period_closed"), request)
