"""Trial balance, income statement and balance sheet, per office or consolidated, as JSON
or CSV (``Accept: text/csv`` or ``?format=csv``), dated by the institution's business
date; and the lines behind a GL account (drill-down)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from services.payments import state
from services.payments.api.accounting import READ
from services.payments.api.accounting_out import (
    CSV,
    BalanceSheet,
    GLLines,
    IncomeStatement,
    TrialBalanceStatement,
)
from services.payments.api.deps import runtime
from services.payments.api.office_scope import offices_for
from services.payments.api.schemas import money_strings
from services.payments.domain import statements
from services.payments.repository import accrual_batches as accrual_batches_repo
from services.payments.repository import gl as gl_repo
from services.payments.repository import statements as repo
from shared.auth import Principal, require
from shared.clock import today
from shared.errors import InvalidInput

Reader = Annotated[Principal, require(*READ)]
Office = Annotated[str | None, Query(max_length=100, description=(
    "an office: its figures and its whole subtree's; none: every office (an office-scoped "
    "token: its own subtree)"))]
Format = Annotated[Literal["json", "csv"] | None, Query(alias="format")]

router = APIRouter(tags=["accounting"])


def _today(request: Request) -> dt.date:
    return today(state.clock(runtime(request).state))


def _render(request: Request, fmt: str | None, kind: str, head: dict[str, Any],
            data: dict[str, Any]) -> Response:
    wants_csv = fmt == "csv" or (fmt is None and "text/csv" in request.headers.get(
        "accept", ""))
    if wants_csv:
        name = f"{kind}-{head.get('as_of') or head.get('to')}.csv"
        return Response(statements.to_csv(kind, data), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return JSONResponse(money_strings({**head, **data}))


@router.get("/v1/statements/trial-balance", response_model=TrialBalanceStatement,
            responses=CSV, summary="Trial balance as of a business date")
async def trial_balance(request: Request, principal: Reader,
                        as_of: dt.date | None = None, office_id: Office = None,
                        fmt: Format = None) -> Response:
    day = as_of or _today(request)
    async with runtime(request).pool.acquire() as conn:
        offices = await offices_for(conn, principal, office_id)
        chart = await gl_repo.chart(conn)
        totals = await repo.gl_totals(conn, to=day, offices=offices)
        pending = await accrual_batches_repo.pending_dates(conn, day)
    head = {"statement": "trial_balance", "as_of": day, "office_id": office_id,
            "currency": "MAD", "accruals_pending": pending}
    return _render(request, fmt, "trial_balance", head,
                   statements.trial_balance(chart, totals))


@router.get("/v1/statements/income", response_model=IncomeStatement, responses=CSV,
            summary="Income statement for a span of business dates")
async def income(request: Request, principal: Reader,
                 since: Annotated[dt.date | None, Query(alias="from")] = None,
                 to: dt.date | None = None, office_id: Office = None,
                 fmt: Format = None) -> Response:
    end = to or _today(request)
    start = since or end.replace(day=1)
    if start > end:
        raise InvalidInput("from is after to", field="from")
    async with runtime(request).pool.acquire() as conn:
        offices = await offices_for(conn, principal, office_id)
        chart = await gl_repo.chart(conn)
        totals = await repo.gl_totals(conn, to=end, since=start, offices=offices,
                                      include_closing=False)
        pending = await accrual_batches_repo.pending_dates(conn, end)
    head = {"statement": "income_statement", "from": start, "to": end,
            "office_id": office_id, "currency": "MAD", "accruals_pending": pending}
    return _render(request, fmt, "income_statement", head,
                   statements.income_statement(chart, totals))


@router.get("/v1/statements/balance-sheet", response_model=BalanceSheet, responses=CSV,
            summary="Balance sheet as of a business date")
async def balance_sheet(request: Request, principal: Reader,
                        as_of: dt.date | None = None, office_id: Office = None,
                        fmt: Format = None) -> Response:
    day = as_of or _today(request)
    async with runtime(request).pool.acquire() as conn:
        offices = await offices_for(conn, principal, office_id)
        chart = await gl_repo.chart(conn)
        totals = await repo.gl_totals(conn, to=day, offices=offices)
        pending = await accrual_batches_repo.pending_dates(conn, day)
    head = {"statement": "balance_sheet", "as_of": day, "office_id": office_id,
            "currency": "MAD", "accruals_pending": pending}
    return _render(request, fmt, "balance_sheet", head,
                   statements.balance_sheet(chart, totals))


def _line_cursor(value: str | None) -> int | None:
    if not value:
        return None
    try:
        line_id = int(base64.urlsafe_b64decode(value.encode()).decode().removeprefix("l:"))
        if line_id < 1:
            raise ValueError(value)
        return line_id
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidInput("cursor is not one this service gave out; start again without it",
                           field="cursor") from None


@router.get("/v1/gl-accounts/{code}/lines", response_model=GLLines,
            summary="The lines behind a GL account, newest first, keyset-paged")
async def gl_lines(code: str, request: Request, principal: Reader,
                   since: Annotated[dt.date | None, Query(alias="from")] = None,
                   to: dt.date | None = None, office_id: Office = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 100,
                   cursor: Annotated[str | None, Query(max_length=100)] = None,
                   before: Annotated[int | None, Query(ge=1, description=(
                       "deprecated: use cursor"))] = None) -> GLLines:
    end = to or _today(request)
    below = _line_cursor(cursor) or before
    async with runtime(request).pool.acquire() as conn:
        offices = await offices_for(conn, principal, office_id)
        lines = await repo.gl_lines(conn, code, to=end, since=since, offices=offices,
                                    limit=limit + 1, before=below)
    page = lines[:limit]
    more = len(lines) > limit
    last = page[-1]["line_id"] if more and page else None
    return GLLines.model_validate(money_strings({
        "code": code, "lines": page, "next_before": last,
        "next_cursor": base64.urlsafe_b64encode(f"l:{last}".encode()).decode()
        if last else None}))
