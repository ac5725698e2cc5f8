"""Trial balance, income statement and balance sheet, per office or consolidated, as JSON
or CSV (``Accept: text/csv`` or ``?format=csv``), dated by the institution's business
date; and the lines behind a GL account (drill-down)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from services.payments import state
from services.payments.api.accounting import READ
from services.payments.api.deps import runtime
from services.payments.api.schemas import money_strings
from services.payments.domain import statements
from services.payments.repository import gl as gl_repo
from services.payments.repository import statements as repo
from shared.auth import Principal, require
from shared.clock import today
from shared.errors import InvalidInput

Reader = Annotated[Principal, require(*READ)]
Office = Annotated[str | None, Query(max_length=100, description="one office; none: all")]
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


@router.get("/v1/statements/trial-balance", summary="Trial balance as of a business date")
async def trial_balance(request: Request, principal: Reader,
                        as_of: dt.date | None = None, office_id: Office = None,
                        fmt: Format = None) -> Response:
    day = as_of or _today(request)
    async with runtime(request).pool.acquire() as conn:
        chart = await gl_repo.chart(conn)
        totals = await repo.gl_totals(conn, to=day, office_id=office_id)
    head = {"statement": "trial_balance", "as_of": day, "office_id": office_id,
            "currency": "MAD"}
    return _render(request, fmt, "trial_balance", head,
                   statements.trial_balance(chart, totals))


@router.get("/v1/statements/income", summary="Income statement for a span of business dates")
async def income(request: Request, principal: Reader,
                 since: Annotated[dt.date | None, Query(alias="from")] = None,
                 to: dt.date | None = None, office_id: Office = None,
                 fmt: Format = None) -> Response:
    end = to or _today(request)
    start = since or end.replace(day=1)
    if start > end:
        raise InvalidInput("from is after to", field="from")
    async with runtime(request).pool.acquire() as conn:
        chart = await gl_repo.chart(conn)
        totals = await repo.gl_totals(conn, to=end, since=start, office_id=office_id,
                                      include_closing=False)
    head = {"statement": "income_statement", "from": start, "to": end,
            "office_id": office_id, "currency": "MAD"}
    return _render(request, fmt, "income_statement", head,
                   statements.income_statement(chart, totals))


@router.get("/v1/statements/balance-sheet", summary="Balance sheet as of a business date")
async def balance_sheet(request: Request, principal: Reader,
                        as_of: dt.date | None = None, office_id: Office = None,
                        fmt: Format = None) -> Response:
    day = as_of or _today(request)
    async with runtime(request).pool.acquire() as conn:
        chart = await gl_repo.chart(conn)
        totals = await repo.gl_totals(conn, to=day, office_id=office_id)
    head = {"statement": "balance_sheet", "as_of": day, "office_id": office_id,
            "currency": "MAD"}
    return _render(request, fmt, "balance_sheet", head,
                   statements.balance_sheet(chart, totals))


@router.get("/v1/gl-accounts/{code}/lines", summary="The lines behind a GL account")
async def gl_lines(code: str, request: Request, principal: Reader,
                   since: Annotated[dt.date | None, Query(alias="from")] = None,
                   to: dt.date | None = None, office_id: Office = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 100,
                   before: Annotated[int | None, Query(ge=1)] = None) -> JSONResponse:
    end = to or _today(request)
    async with runtime(request).pool.acquire() as conn:
        lines = await repo.gl_lines(conn, code, to=end, since=since, office_id=office_id,
                                    limit=limit, before=before)
    return JSONResponse(money_strings({
        "code": code, "lines": lines,
        "next_before": lines[-1]["line_id"] if len(lines) == limit else None}))
