"""Collection sheets (JSON, CSV, a printable page), the cash recorded against them, and a
branch's day-end cash count."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import Field

from services.loans.api.deps import operator_only, runtime
from services.loans.api.schemas import Body, Money, Out
from services.loans.handlers import collection_sheets as sheets
from shared import idempotency
from shared.auth import Principal, require
from shared.clock import business_date
from shared.errors import InvalidInput
from shared.money import Amount, PositiveAmount

router = APIRouter(tags=["collection sheets"])
Id = Annotated[str | None, Query(min_length=1, max_length=100)]


# -- shapes ------------------------------------------------------------------------------
class LastPaymentOut(Out):
    at: dt.datetime
    amount: Money


class SheetLineOut(Out):
    loan_id: str
    reference: str | None
    client_id: str
    full_name: str | None
    phone: str | None
    leader: bool
    office_id: str
    officer_id: str | None
    due_today: Money
    arrears: Money
    expected: Money = Field(description="due today + arrears")
    days_in_arrears: int
    last_payment: LastPaymentOut | None
    collected: Money | None = Field(description="cash already recorded on this sheet")


class SheetGroupOut(Out):
    group_id: str | None = Field(description="null: members of no group")
    name: str | None
    members: list[SheetLineOut]
    due_today: Money
    arrears: Money
    expected: Money
    group_loan_id: str | None = Field(default=None, description=(
        "the group's active group loan: a collection line naming it is the group's one "
        "collection, split over the members by what each owed that day"))
    collected: Money | None = Field(default=None, description=(
        "the group's one collection already recorded on this sheet"))


class SheetTotalsOut(Out):
    members: int
    due_today: Money
    arrears: Money
    expected: Money
    collected: Money


class SheetOut(Out):
    sheet_id: str
    date: dt.date
    kind: Literal["officer", "group"]
    officer_id: str | None = None
    officer_name: str | None = None
    group_id: str | None = None
    group_name: str | None = None
    currency: str
    groups: list[SheetGroupOut]
    totals: SheetTotalsOut
    links: dict[str, str]


class CollectionLineIn(Body):
    loan_id: str = Field(min_length=1, max_length=100)
    amount: PositiveAmount


class CollectionsIn(Body):
    lines: list[CollectionLineIn] = Field(min_length=1, max_length=500)
    collected_at: dt.datetime | None = Field(default=None, description=(
        "when the cash was collected (on the sheet's date); default now, or noon of the "
        "sheet's date"))


class CollectionLineOut(Out):
    loan_id: str
    amount: Money
    collection_id: str = Field(description="the repayment's payment id")
    status: Literal["recorded", "already_recorded"]


class CollectionsOut(Out):
    sheet_id: str
    date: dt.date
    collected_at: dt.datetime
    lines: list[CollectionLineOut]
    recorded: int
    already_recorded: int
    amount_recorded: Money


class CashCountIn(Body):
    office_id: str = Field(min_length=1, max_length=100)
    business_date: dt.date
    declared: Amount = Field(description="the cash counted in the branch, ≥ 0")
    note: str = Field(default="", max_length=500)


class OfficerCashOut(Out):
    officer_id: str | None
    collections: int
    amount: Money


class CashCountOut(Out):
    office_id: str
    business_date: dt.date
    currency: str
    cash_account: str
    suspense_account: str
    expected: Money
    collections: int
    by_officer: list[OfficerCashOut]
    declared: Money | None
    difference: str | None = Field(description="declared - expected (booked to suspense)")
    reconciliation_id: str | None
    declared_by: str | None
    note: str | None
    status: Literal["open", "reconciled"]


# -- helpers -----------------------------------------------------------------------------
def _date(value: str | None, field: str = "date") -> date:
    if value is None:
        return business_date(datetime.now(UTC))
    try:
        return date.fromisoformat(value) if len(value) == 10 else _bad(field)
    except ValueError:
        return _bad(field)


def _bad(field: str) -> date:
    raise InvalidInput(f"{field} must be a calendar date YYYY-MM-DD", field=field)


CSV_COLUMNS = ("sheet_id", "date", "group_id", "group_name", "client_id", "full_name", "phone",
               "loan_id", "reference", "due_today", "arrears", "expected", "days_in_arrears",
               "last_payment_at", "last_payment_amount", "collected")


def _rows(sheet: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"sheet_id": sheet["sheet_id"], "date": sheet["date"], "group_id": g["group_id"],
             "group_name": g["name"], **{k: m[k] for k in (
                 "client_id", "full_name", "phone", "loan_id", "reference", "due_today",
                 "arrears", "expected", "days_in_arrears", "collected")},
             "last_payment_at": m["last_payment"]["at"] if m["last_payment"] else None,
             "last_payment_amount": m["last_payment"]["amount"] if m["last_payment"] else None}
            for g in sheet["groups"] for m in g["members"]]


def as_csv(sheet: dict[str, Any]) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in _rows(sheet):
        # a cell a spreadsheet would run as a formula is quoted as text
        writer.writerow({k: ("'" + v if isinstance(v, str) and v[:1] in "=+-@" else
                             "" if v is None else v) for k, v in row.items()})
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{sheet["sheet_id"]}.csv"'})


def as_html(sheet: dict[str, Any]) -> HTMLResponse:
    e = html.escape
    who = sheet.get("officer_name") or sheet.get("officer_id") or sheet.get("group_name") or ""
    parts = [
        "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\">",
        f"<title>Collection sheet {e(sheet['sheet_id'])}</title><style>",
        "body{font-family:sans-serif;font-size:12px}table{border-collapse:collapse;width:100%}",
        "td,th{border:1px solid #444;padding:3px 5px}td.n{text-align:right}",
        "h2{margin:14px 0 4px}@media print{a{display:none}}</style></head><body>",
        f"<h1>Collection sheet — {e(str(who))} — {e(sheet['date'])}</h1>",
        f"<p>Sheet <code>{e(sheet['sheet_id'])}</code>; expected total "
        f"<b>{e(sheet['totals']['expected'])} {e(sheet['currency'])}</b> "
        f"({sheet['totals']['members']} members)</p>"]
    for g in sheet["groups"]:
        parts.append(f"<h2>{e(g['name'] or 'Individual borrowers')}</h2><table><tr>"
                     "<th>Member</th><th>Phone</th><th>Loan</th><th>Due today</th>"
                     "<th>Arrears</th><th>Expected</th><th>Last payment</th>"
                     "<th>Collected</th><th>Signature</th></tr>")
        for m in g["members"]:
            last = m["last_payment"]
            parts.append(
                f"<tr><td>{e(m['full_name'] or m['client_id'])}{' ★' if m['leader'] else ''}"
                f"</td><td>{e(m['phone'] or '')}</td><td>{e(m['reference'] or m['loan_id'])}"
                f"</td><td class=n>{e(m['due_today'])}</td><td class=n>{e(m['arrears'])}</td>"
                f"<td class=n><b>{e(m['expected'])}</b></td><td>"
                f"{e(last['amount'] + ' (' + last['at'][:10] + ')') if last else ''}</td>"
                f"<td class=n>{e(m['collected'] or '')}</td><td></td></tr>")
        parts.append(f"<tr><th colspan=5>Group total</th><td class=n><b>{e(g['expected'])}"
                     "</b></td><td colspan=3></td></tr></table>")
    parts.append("</body></html>")
    return HTMLResponse("".join(parts))


_FORMATS: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}, "text/html": {}}}}


def _render(sheet: dict[str, Any], fmt: str) -> Any:
    if fmt == "csv":
        return as_csv(sheet)
    if fmt == "html":
        return as_html(sheet)
    return sheet


# -- routes --------------------------------------------------------------------------------
@router.get("/v1/collection-sheets", response_model=SheetOut, responses=_FORMATS)
async def collection_sheet(
    request: Request, who: Annotated[Principal, require("loans:read")],
    officer_id: Id = None, group_id: Id = None,
    date: Annotated[str | None, Query(max_length=10)] = None,
    format: Literal["json", "csv", "html"] = "json",
) -> Any:
    """An officer's sheet for a day (``officer_id``) or one group's (``group_id``): for
    each group and member what is due that day, the arrears, the expected total, phone
    and last payment. ``format=csv`` or ``html`` (printable)."""
    operator_only(who)
    if (officer_id is None) == (group_id is None):
        raise InvalidInput("name exactly one of officer_id and group_id",
                           field="officer_id" if officer_id is None else "group_id")
    day = _date(date)
    kind, key = ("o", officer_id) if officer_id is not None else ("g", group_id)
    assert key is not None
    async with runtime(request).pool.acquire() as conn:
        sheet = await sheets.build(conn, who, kind=kind, key=key, day=day,
                                   field="officer_id" if kind == "o" else "group_id")
    return _render(sheet, format)


@router.get("/v1/collection-sheets/{sheet_id}", response_model=SheetOut, responses=_FORMATS)
async def collection_sheet_by_id(
    sheet_id: str, request: Request, who: Annotated[Principal, require("loans:read")],
    format: Literal["json", "csv", "html"] = "json",
) -> Any:
    operator_only(who)
    day, kind, key = sheets.parse_sheet_id(sheet_id)
    async with runtime(request).pool.acquire() as conn:
        sheet = await sheets.build(conn, who, kind=kind, key=key, day=day, field="sheet_id")
    return _render(sheet, format)


@router.post("/v1/collection-sheets/{sheet_id}/collections", status_code=201,
             response_model=CollectionsOut)
async def record_collections(
    sheet_id: str, body: CollectionsIn, request: Request,
    who: Annotated[Principal, require("loans:write")],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    """The officer's cash against the sheet, in one request: each line becomes a
    repayment (``CashCollectionRecorded`` → payments books the branch's cash and sends
    ``RepaymentReceived``). A line already recorded on this sheet is not recorded again.
    A line may name a group's active group loan (``groups[].group_loan_id``): the group's
    one collection, split over its members by what each owed that day (409 if a member of
    that group also has its own line on the sheet)."""
    operator_only(who)
    key = idempotency.check_key(idempotency_key)
    raw = body.model_dump(mode="json")
    scope = f"loans.collections:{sheet_id}"
    async with runtime(request).uow() as uow:
        replay = await idempotency.begin(uow, scope, key, raw)
        if replay is not None:
            return JSONResponse(replay.body, status_code=replay.status)
        result = await sheets.record(
            uow, who, sheet_id, [sheets.LineIn(x.loan_id, x.amount) for x in body.lines],
            body.collected_at)
        # stored as it is sent, so a replay answers the same bytes
        result = CollectionsOut.model_validate(result).model_dump(mode="json")
        await idempotency.complete(uow, scope, key, 201, result)
        await uow.commit()
    return result


@router.get("/v1/cash-reconciliations", response_model=CashCountOut)
async def branch_cash(
    request: Request, who: Annotated[Principal, require("loans:read")],
    office_id: Annotated[str, Query(min_length=1, max_length=100)],
    business_date: Annotated[str | None, Query(max_length=10)] = None,
) -> Any:
    """A branch's cash for a day: what its officers recorded (expected), and once
    counted, what was declared and the difference booked to suspense."""
    operator_only(who)
    day = _date(business_date, "business_date")
    async with runtime(request).pool.acquire() as conn:
        return await sheets.show_cash(conn, who, office_id, day)


@router.post("/v1/cash-reconciliations", status_code=201, response_model=CashCountOut)
async def reconcile_branch_cash(
    body: CashCountIn, request: Request, who: Annotated[Principal, require("loans:write")],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    """Declare the cash counted at day end: expected vs declared, the difference to the
    branch's cash suspense (``BranchCashReconciled``, booked by payments). Once per
    branch and day (409 after)."""
    operator_only(who)
    if body.declared < 0:
        raise InvalidInput("declared cash cannot be negative", field="declared")
    key = idempotency.check_key(idempotency_key)
    scope = "loans.cash-reconciliations"
    async with runtime(request).uow() as uow:
        replay = await idempotency.begin(uow, scope, key, body.model_dump(mode="json"))
        if replay is not None:
            return JSONResponse(replay.body, status_code=replay.status)
        result = await sheets.reconcile(uow, who, body.office_id, body.business_date,
                                        body.declared, body.note)
        result = CashCountOut.model_validate(result).model_dump(mode="json")
        await idempotency.complete(uow, scope, key, 201, result)
        await uow.commit()
    return result
