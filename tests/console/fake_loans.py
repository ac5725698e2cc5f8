"""The fake loans service's servicing routes: business date and calendar, payoff, schedule
versions, rescheduling and loan requests (write-off, waiver) by maker-checker, collection
sheets with cash entry, branch cash counts and the portfolio by office and officer — in the
real service's shapes (``test_fake_matches_openapi`` checks them), with the rules a page
must show: the maker gets 403, an idempotent cash entry is recorded once.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from shared.auth import Principal, require
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound

Record = Callable[..., None]
T0 = "2026-11-29T09:00:00+00:00"


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


@dataclass
class LoansState:
    """What a console test arranges for the loan-servicing pages, and what changed."""

    business_date: dict[str, Any] = field(default_factory=lambda: {
        "business_date": "2026-11-30", "last_closed": "2026-11-29",
        "calendar_date": "2026-11-30", "nights_behind": 0, "timezone": "Africa/Casablanca"})
    working_weekdays: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    holidays: dict[str, dict[str, Any]] = field(default_factory=dict)
    payoffs: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    reschedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    due: list[dict[str, Any]] | None = None
    """every unpaid installment (the due list pages through them); None: the old fake"""
    portfolios: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """(office_id, officer_id) → the scoped portfolio; ("", "") is not used"""
    history: dict[tuple[str, str], list[dict[str, Any]]] | None = None
    sheets: dict[str, dict[str, Any]] = field(default_factory=dict)
    """sheet id → the sheet (its officer_id and date say which request finds it)"""
    recorded: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Idempotency-Key → the answer given (a replay answers the same)"""
    cash: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    group_loans: dict[str, dict[str, Any]] = field(default_factory=dict)
    """group loan id → the group loan (its members' loans are in the loans)"""
    next_id: int = 1

    def new_id(self, prefix: str) -> str:
        self.next_id += 1
        return f"{prefix}-{self.next_id}"


class WorkingDaysIn(BaseModel):
    working_weekdays: list[int]


class HolidayIn(BaseModel):
    date: dt.date
    name: Annotated[str, Field(min_length=1, max_length=120)]
    provisional: bool = False


class HolidayUpdateIn(BaseModel):
    date: dt.date | None = None
    name: str | None = None
    provisional: bool | None = None


class RescheduleIn(BaseModel):
    term: int | None = None
    grace: int = 0
    moratorium: int = 0
    capitalise_interest: bool = False
    cure_installments: int = 3
    reason: str = ""


class WaiverIn(BaseModel):
    amount: str | None = None
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class ReasonIn(BaseModel):
    reason: str = ""


class DecisionIn(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class LineIn(BaseModel):
    loan_id: str
    amount: str


class CollectionsIn(BaseModel):
    lines: Annotated[list[LineIn], Field(min_length=1)]
    collected_at: str | None = None


class CashCountIn(BaseModel):
    office_id: str
    business_date: dt.date
    declared: str
    note: str = ""


def _page(rows: list[dict[str, Any]], limit: int, cursor: str | None
          ) -> tuple[list[dict[str, Any]], str | None]:
    start = int(cursor) if cursor else 0
    chunk = rows[start:start + limit]
    return chunk, str(start + limit) if start + limit < len(rows) else None


def install_loans(router: APIRouter, ls: LoansState, record: Record,
                  loans: dict[str, dict[str, Any]]) -> None:
    def decide(found: dict[str, Any], who: Principal, approve: bool, maker: str) -> None:
        if found["status"] != "pending":
            raise Conflict(f"request {found['id']} is {found['status']}", field="status")
        if found[maker] == who.sub:
            raise Forbidden("maker-checker: the operator who proposed it cannot decide it; "
                            "another operator must", field="sub")
        found.update(status="approved" if approve else "rejected", decided_by=who.sub,
                     decided_at=now())

    # -- group loans ----------------------------------------------------------------------
    @router.get("/v1/group-loans/{group_loan_id}")
    async def group_loan(request: Request, group_loan_id: str,
                         who: Annotated[Principal, require("loans:read")]) -> dict[str, Any]:
        record(request, who)
        found = ls.group_loans.get(group_loan_id)
        if found is None:
            raise NotFound(f"group loan {group_loan_id} not found", field="group_loan_id")
        return found

    # -- business date and calendar ----------------------------------------------------
    @router.get("/v1/business-date")
    async def business_date(request: Request,
                            who: Annotated[Principal, require("loans:read")]
                            ) -> dict[str, Any]:
        record(request, who)
        return ls.business_date

    @router.get("/v1/calendar/working-days")
    async def working_days(request: Request,
                           who: Annotated[Principal, require("loans:read")]) -> dict[str, Any]:
        record(request, who)
        return {"working_weekdays": ls.working_weekdays}

    @router.put("/v1/calendar/working-days")
    async def set_working_days(request: Request, body: WorkingDaysIn,
                               who: Annotated[Principal, require("products:write")]
                               ) -> dict[str, Any]:
        record(request, who, body.model_dump())
        if not body.working_weekdays or any(not 0 <= d <= 6 for d in body.working_weekdays):
            raise InvalidInput("weekdays are 0 (Monday) to 6 (Sunday)",
                               field="working_weekdays")
        ls.working_weekdays = sorted(set(body.working_weekdays))
        return {"working_weekdays": ls.working_weekdays}

    @router.get("/v1/calendar/holidays")
    async def holidays(request: Request, who: Annotated[Principal, require("loans:read")],
                       from_: Annotated[dt.date | None, Query(alias="from")] = None,
                       to: dt.date | None = None) -> dict[str, Any]:
        record(request, who, dict(request.query_params))
        return {"items": [h for d, h in sorted(ls.holidays.items())
                          if (from_ is None or d >= from_.isoformat())
                          and (to is None or d <= to.isoformat())]}

    @router.post("/v1/calendar/holidays", status_code=201)
    async def add_holiday(request: Request, body: HolidayIn,
                          who: Annotated[Principal, require("products:write")]
                          ) -> dict[str, Any]:
        record(request, who, body.model_dump(mode="json"))
        day = body.date.isoformat()
        if day in ls.holidays:
            raise Conflict(f"{day} is already a holiday", field="date")
        ls.holidays[day] = {"date": day, "name": body.name, "provisional": body.provisional,
                            "updated_by": who.sub, "updated_at": now()}
        return ls.holidays[day]

    @router.put("/v1/calendar/holidays/{day}")
    async def change_holiday(request: Request, day: str, body: HolidayUpdateIn,
                             who: Annotated[Principal, require("products:write")]
                             ) -> dict[str, Any]:
        record(request, who, body.model_dump(mode="json"))
        if day not in ls.holidays:
            raise NotFound(f"no holiday on {day}", field="date")
        row = ls.holidays.pop(day)
        if body.name is not None:
            row["name"] = body.name
        if body.provisional is not None:
            row["provisional"] = body.provisional
        if body.date is not None:
            row["date"] = body.date.isoformat()
        row.update(updated_by=who.sub, updated_at=now())
        ls.holidays[row["date"]] = row
        return row

    @router.delete("/v1/calendar/holidays/{day}")
    async def remove_holiday(request: Request, day: str,
                             who: Annotated[Principal, require("products:write")]
                             ) -> dict[str, Any]:
        record(request, who)
        if day not in ls.holidays:
            raise NotFound(f"no holiday on {day}", field="date")
        return ls.holidays.pop(day)

    # -- servicing a loan --------------------------------------------------------------
    def loan_of(loan_id: str) -> dict[str, Any]:
        if loan_id not in loans:
            raise NotFound(f"loan {loan_id} not found", field="loan_id")
        return loans[loan_id]

    @router.get("/v1/loans/{loan_id}/payoff")
    async def payoff(request: Request, loan_id: str,
                     who: Annotated[Principal, require("loans:read")],
                     date: dt.date | None = None) -> dict[str, Any]:
        record(request, who, dict(request.query_params))
        loan = loan_of(loan_id)
        if loan["status"] != "active" or loan_id not in ls.payoffs:
            raise Conflict(f"only an active loan has a payoff; the loan is {loan['status']}",
                           field="loan_id", status_now=loan["status"])
        day = (date.isoformat() if date else ls.business_date["business_date"])
        return {**ls.payoffs[loan_id], "date": day}

    @router.get("/v1/loans/{loan_id}/schedule/versions")
    async def versions(request: Request, loan_id: str,
                       who: Annotated[Principal, require("loans:read")]) -> dict[str, Any]:
        record(request, who)
        loan = loan_of(loan_id)
        return {"loan_id": loan_id, "current_version": loan.get("schedule_version", 1),
                "items": ls.versions.get(loan_id, [])}

    @router.post("/v1/loans/{loan_id}/reschedule", status_code=201)
    async def reschedule(request: Request, loan_id: str, body: RescheduleIn,
                         who: Annotated[Principal, require("loans:write", "tenant:all")]
                         ) -> dict[str, Any]:
        record(request, who, body.model_dump())
        loan = loan_of(loan_id)
        if loan["status"] != "active":
            raise Conflict(f"only an active loan can be rescheduled; the loan is "
                           f"{loan['status']}", field="loan_id")
        principal = Decimal(loan["outstanding"]["principal"])
        term = body.term or 4
        each = (principal / term).quantize(Decimal("0.01"))
        rows = [{"number": n, "due_date": f"2027-0{min(n, 9)}-05", "principal": str(each),
                 "interest": "20.00", "fees": "0.00", "penalties": "0.00",
                 "total": str(each + 20)} for n in range(1, term + 1)]
        request_id = ls.new_id("RR")
        ls.reschedules[request_id] = {
            "id": request_id, "kind": "reschedule", "loan_id": loan_id, "status": "pending",
            "params": body.model_dump(), "preview": {
                "business_date": ls.business_date["business_date"], "installments": rows,
                "principal_before": str(principal), "principal_after": str(principal),
                "capitalised_interest": "0.00", "moratorium_interest": "0.00",
                "total_repayable": str(sum(Decimal(r["total"]) for r in rows)),
                "teg": "0.312000", "total_cost_of_credit": str(20 * term) + ".00"},
            "requested_by": who.sub, "decided_by": None, "decided_at": None, "result": {},
            "created_at": now()}
        return ls.reschedules[request_id]

    def reschedule_of(request_id: str) -> dict[str, Any]:
        if request_id not in ls.reschedules:
            raise NotFound(f"no reschedule request {request_id}", field="request_id")
        return ls.reschedules[request_id]

    @router.get("/v1/reschedule-requests/{request_id}")
    async def get_reschedule(request: Request, request_id: str,
                             who: Annotated[Principal, require("loans:read", "tenant:all")]
                             ) -> dict[str, Any]:
        record(request, who)
        return reschedule_of(request_id)

    @router.post("/v1/reschedule-requests/{request_id}/approve")
    async def approve_reschedule(request: Request, request_id: str,
                                 who: Annotated[Principal, require("loans:approve",
                                                                   "tenant:all")]
                                 ) -> dict[str, Any]:
        record(request, who)
        found = reschedule_of(request_id)
        decide(found, who, True, "requested_by")
        loan = loans.get(found["loan_id"])
        if loan is not None:
            loan.update(restructured=True, restructured_on=ls.business_date["business_date"],
                        schedule_version=loan.get("schedule_version", 1) + 1)
        found["result"] = {"schedule_version": loan.get("schedule_version") if loan else None}
        return found

    @router.post("/v1/reschedule-requests/{request_id}/reject")
    async def reject_reschedule(request: Request, request_id: str,
                                who: Annotated[Principal, require("loans:approve",
                                                                  "tenant:all")]
                                ) -> dict[str, Any]:
        record(request, who)
        found = reschedule_of(request_id)
        decide(found, who, False, "requested_by")
        return found

    # -- write-offs and waivers (loan requests) ----------------------------------------
    def propose(loan_id: str, kind: str, who: Principal, amount: str | None,
                reason: str) -> dict[str, Any]:
        loan_of(loan_id)
        if any(r["loan_id"] == loan_id and r["kind"] == kind and r["status"] == "pending"
               for r in ls.requests):
            raise Conflict(f"a {kind.replace('_', '-')} of {loan_id} already waits for "
                           "approval", field="loan_id")
        row = {"id": ls.new_id("LR"), "loan_id": loan_id, "kind": kind, "status": "pending",
               "amount": amount, "reason": reason, "proposed_by": who.sub,
               "proposed_at": now(), "decided_by": None, "decided_at": None}
        ls.requests.append(row)
        return row

    @router.post("/v1/loans/{loan_id}/write-off", status_code=202)
    async def write_off(request: Request, loan_id: str, body: ReasonIn,
                        who: Annotated[Principal, require("loans:approve")]) -> dict[str, Any]:
        record(request, who, body.model_dump())
        return propose(loan_id, "write_off", who, None, body.reason or "written off")

    @router.post("/v1/loans/{loan_id}/waivers", status_code=202)
    async def waiver(request: Request, loan_id: str, body: WaiverIn,
                     who: Annotated[Principal, require("loans:approve", "tenant:all")]
                     ) -> dict[str, Any]:
        record(request, who, body.model_dump())
        return propose(loan_id, "waiver", who, body.amount, body.reason)

    @router.get("/v1/loan-requests")
    async def loan_requests(request: Request,
                            who: Annotated[Principal, require("loans:read", "tenant:all")],
                            status: str | None = None, kind: str | None = None,
                            loan_id: str | None = None,
                            limit: Annotated[int, Query(ge=1, le=500)] = 100
                            ) -> dict[str, Any]:
        record(request, who, dict(request.query_params))
        rows = [r for r in ls.requests if status in (None, r["status"])
                and kind in (None, r["kind"]) and loan_id in (None, r["loan_id"])]
        return {"items": sorted(rows, key=lambda r: r["proposed_at"])[:limit]}

    def request_of(request_id: str) -> dict[str, Any]:
        found = next((r for r in ls.requests if r["id"] == request_id), None)
        if found is None:
            raise NotFound(f"no loan request {request_id}", field="request_id")
        return found

    @router.post("/v1/loan-requests/{request_id}/approve")
    async def approve_request(request: Request, request_id: str,
                              who: Annotated[Principal, require("loans:approve",
                                                                "tenant:all")]
                              ) -> dict[str, Any]:
        record(request, who)
        found = request_of(request_id)
        decide(found, who, True, "proposed_by")
        loan = loans.get(found["loan_id"])
        if loan is not None and found["kind"] == "write_off":
            loan["status"] = "written_off"
        return found

    @router.post("/v1/loan-requests/{request_id}/reject")
    async def reject_request(request: Request, request_id: str, body: DecisionIn,
                             who: Annotated[Principal, require("loans:approve",
                                                               "tenant:all")]
                             ) -> dict[str, Any]:
        record(request, who, body.model_dump())
        found = request_of(request_id)
        decide(found, who, False, "proposed_by")
        return found

    # -- collection sheets and branch cash ---------------------------------------------
    def sheet_for(sheet: dict[str, Any], fmt: str) -> Any:
        if fmt != "csv":
            return sheet
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["sheet_id", "date", "group_name", "full_name", "phone", "loan_id",
                         "reference", "expected"])
        for g in sheet["groups"]:
            for m in g["members"]:
                writer.writerow([sheet["sheet_id"], sheet["date"], g["name"] or "",
                                 m["full_name"] or "", m["phone"] or "", m["loan_id"],
                                 m["reference"] or "", m["expected"]])
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8")

    @router.get("/v1/collection-sheets")
    async def sheet(request: Request,
                    who: Annotated[Principal, require("loans:read", "tenant:all")],
                    officer_id: str | None = None, group_id: str | None = None,
                    date: str | None = None, format: str = "json") -> Any:
        record(request, who, dict(request.query_params))
        if (officer_id is None) == (group_id is None):
            raise InvalidInput("name exactly one of officer_id and group_id",
                               field="officer_id" if officer_id is None else "group_id")
        day = date or ls.business_date["business_date"]
        found = next((s for s in ls.sheets.values() if s["officer_id"] == officer_id
                      and s["date"] == day), None)
        if found is None:
            raise NotFound(f"no loan officer {officer_id}", field="officer_id")
        return sheet_for(found, format)

    @router.get("/v1/collection-sheets/{sheet_id}")
    async def sheet_by_id(request: Request, sheet_id: str,
                          who: Annotated[Principal, require("loans:read", "tenant:all")],
                          format: str = "json") -> Any:
        record(request, who, dict(request.query_params))
        if sheet_id not in ls.sheets:
            raise NotFound(f"collection sheet {sheet_id} not found", field="sheet_id")
        return sheet_for(ls.sheets[sheet_id], format)

    @router.post("/v1/collection-sheets/{sheet_id}/collections", status_code=201)
    async def collections(request: Request, sheet_id: str, body: CollectionsIn,
                          who: Annotated[Principal, require("loans:write", "tenant:all")]
                          ) -> Any:
        key = request.headers.get("idempotency-key")
        record(request, who, {**body.model_dump(), "idempotency_key": key})
        if not key:
            raise InvalidInput("an Idempotency-Key header is required",
                               field="Idempotency-Key")
        if key in ls.recorded:
            return JSONResponse(ls.recorded[key], status_code=201)
        if sheet_id not in ls.sheets:
            raise NotFound(f"collection sheet {sheet_id} not found", field="sheet_id")
        found = ls.sheets[sheet_id]
        members = {m["loan_id"]: m for g in found["groups"] for m in g["members"]}
        lines = []
        for x in body.lines:
            if x.loan_id not in members:
                raise InvalidInput(f"loan {x.loan_id} is not on the sheet", field="lines")
            m = members[x.loan_id]
            status = "already_recorded" if m["collected"] else "recorded"
            if not m["collected"]:
                m["collected"] = x.amount
            lines.append({"loan_id": x.loan_id, "amount": x.amount,
                          "collection_id": f"col-{sheet_id}-{x.loan_id}", "status": status})
        recorded = [x for x in lines if x["status"] == "recorded"]
        answer = {"sheet_id": sheet_id, "date": found["date"], "collected_at": T0,
                  "lines": lines, "recorded": len(recorded),
                  "already_recorded": len(lines) - len(recorded),
                  "amount_recorded": str(sum((Decimal(x["amount"]) for x in recorded),
                                             Decimal("0.00")))}
        ls.recorded[key] = answer
        return answer

    @router.get("/v1/cash-reconciliations")
    async def cash(request: Request,
                   who: Annotated[Principal, require("loans:read", "tenant:all")],
                   office_id: str, business_date: str | None = None) -> dict[str, Any]:
        record(request, who, dict(request.query_params))
        day = business_date or ls.business_date["business_date"]
        if (office_id, day) not in ls.cash:
            raise NotFound(f"no office {office_id}", field="office_id")
        return ls.cash[(office_id, day)]

    @router.post("/v1/cash-reconciliations", status_code=201)
    async def count_cash(request: Request, body: CashCountIn,
                         who: Annotated[Principal, require("loans:write", "tenant:all")]
                         ) -> dict[str, Any]:
        key = request.headers.get("idempotency-key")
        record(request, who, {**body.model_dump(mode="json"), "idempotency_key": key})
        row = ls.cash.get((body.office_id, body.business_date.isoformat()))
        if row is None:
            raise NotFound(f"no office {body.office_id}", field="office_id")
        if row["status"] == "reconciled":
            raise Conflict("this branch's cash for the day is already counted",
                           field="business_date")
        declared = Decimal(body.declared)
        row.update(declared=f"{declared:.2f}", status="reconciled", declared_by=who.sub,
                   note=body.note, reconciliation_id=f"rec-{body.office_id}",
                   difference=f"{declared - Decimal(row['expected']):.2f}")
        return row

    # -- the portfolio history by office and officer -----------------------------------
    @router.get("/v1/portfolio/history")
    async def history(request: Request, who: Annotated[Principal, require("loans:read")],
                      office_id: str | None = None, officer_id: str | None = None,
                      limit: int = 60) -> dict[str, Any]:
        record(request, who, dict(request.query_params))
        if ls.history is None:
            raise HTTPException(404)   # as before loans offered it
        return {"items": ls.history.get((office_id or "", officer_id or ""), [])[:limit]}


def page_due(ls: LoansState, day: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """The due list over ``ls.due``: everything unpaid due on or before ``day``, paged in
    the service's (loan, installment) order; totals over every page."""
    assert ls.due is not None
    rows = sorted((r for r in ls.due if r["due_date"] <= day),
                  key=lambda r: (r["loan_id"], r["installment"]))
    chunk, nxt = _page(rows, limit, cursor)
    owed = sum((Decimal(r["amount_due"]) for r in rows), Decimal("0.00"))
    paid = sum((Decimal(r["paid"]) for r in rows), Decimal("0.00"))
    statuses = {s: sum(1 for r in rows if r["status"] == s)
                for s in ("due", "partly_paid", "paid")}
    return {"date": day, "currency": "MAD", "items": chunk,
            "totals": {"count": len(rows), "amount_due": f"{owed:.2f}", "paid": f"{paid:.2f}",
                       "total": f"{owed + paid:.2f}", "by_status": statuses},
            "next_cursor": nxt}


# -- records in the real shapes, for the console tests and the OpenAPI check ------------

PAR = {"par1": {"principal": "1200.00", "ratio": "0.2400"},
       "par30": {"principal": "600.00", "ratio": "0.1200"},
       "par90": {"principal": "0.00", "ratio": "0.0000"}}
BUCKETS = {b: {"loans": 1, "principal": "1000.00"}
           for b in ("current", "1-30", "31-60", "61-90", "90+")}


def snapshot(day: str, collected: str, par1: str = "0.2400") -> dict[str, Any]:
    return {"business_date": day, "loans_active": 4, "outstanding_principal": "5000.00",
            "par": {**PAR, "par1": {"principal": "1200.00", "ratio": par1}},
            "arrears_buckets": BUCKETS,
            "outstanding": {"principal": "5000.00", "interest": "100.00", "fees": "0.00",
                            "penalties": "10.00", "total": "5110.00"},
            "disbursed": {"loans": 0, "principal": "0.00"},
            "collected": {"payments": 3, "amount": collected},
            "restructured": {"loans": 0, "principal": "0.00", "ratio": "0.0000"}}


def scoped_portfolio(office_id: str | None, officer_id: str | None, outstanding: str,
                     par1: str, collected: str) -> dict[str, Any]:
    return {"currency": "MAD", "as_of_business_date": "2026-11-29", "loans_active": 4,
            "outstanding_principal": outstanding,
            "par": {**PAR, "par1": {"principal": "1200.00", "ratio": par1}},
            "arrears_buckets": BUCKETS, "loans_by_status": {"active": 4},
            "last_snapshot": snapshot("2026-11-29", collected, par1),
            "scope": {"office_id": office_id, "office_path": None if office_id is None
                      else f"head/{office_id}", "officer_id": officer_id,
                      "product_id": None}}


def member(loan_id: str, name: str, expected: str, collected: str | None = None,
           leader: bool = False) -> dict[str, Any]:
    return {"loan_id": loan_id, "reference": f"NR{loan_id[-4:].upper()}K", "client_id":
            f"C-{loan_id}", "full_name": name, "phone": "+212612345678", "leader": leader,
            "office_id": "b-1", "officer_id": "st-1", "due_today": expected,
            "arrears": "0.00", "expected": expected, "days_in_arrears": 0,
            "last_payment": {"at": T0, "amount": "150.00"}, "collected": collected}


def sheet(sheet_id: str, officer_id: str, day: str,
          groups: list[tuple[str | None, str | None, list[dict[str, Any]]]]
          ) -> dict[str, Any]:
    def total(rows: list[dict[str, Any]], key: str) -> str:
        return str(sum((Decimal(r[key] or "0") for r in rows), Decimal("0.00")))
    everyone = [m for _, _, rows in groups for m in rows]
    return {"sheet_id": sheet_id, "date": day, "kind": "officer", "officer_id": officer_id,
            "officer_name": "Samir Alami", "group_id": None, "group_name": None,
            "currency": "MAD",
            "groups": [{"group_id": gid, "name": name, "members": rows,
                        "due_today": total(rows, "due_today"),
                        "arrears": total(rows, "arrears"), "expected": total(rows, "expected")}
                       for gid, name, rows in groups],
            "totals": {"members": len(everyone), "due_today": total(everyone, "due_today"),
                       "arrears": total(everyone, "arrears"),
                       "expected": total(everyone, "expected"),
                       "collected": total(everyone, "collected")},
            "links": {"csv": f"/v1/collection-sheets/{sheet_id}?format=csv"}}


def cash_count(office_id: str, day: str, expected: str) -> dict[str, Any]:
    return {"office_id": office_id, "business_date": day, "currency": "MAD",
            "cash_account": f"cash:branch:{office_id}",
            "suspense_account": f"suspense:cash:branch:{office_id}", "expected": expected,
            "collections": 2, "by_officer": [{"officer_id": "st-1", "collections": 2,
                                              "amount": expected}],
            "declared": None, "difference": None, "reconciliation_id": None,
            "declared_by": None, "note": None, "status": "open"}


def due_item(loan_id: str, number: int, due_date: str, days_late: int,
             amount: str = "150.00") -> dict[str, Any]:
    return {"loan_id": loan_id, "client_id": f"C-{loan_id}", "partner_id": "p-atlas",
            "installment": number, "due_date": due_date, "total": amount, "paid": "0.00",
            "amount_due": amount, "status": "due", "days_in_arrears": days_late,
            "days_late": days_late, "reference": f"NR{loan_id[-4:].upper()}K"}


PAYOFF = {"loan_id": "", "date": "2026-11-30", "currency": "MAD", "principal": "4000.00",
          "interest": "35.20", "fees": "0.00", "penalties": "50.00", "total": "4085.20",
          "interest_waived": "420.00", "fees_waived": "0.00",
          "interest_accrued_from": "2026-11-05"}


def version(number: int) -> dict[str, Any]:
    return {"version": number, "reason": "prepayment_reduce_term", "replaced_by": number + 1,
            "created_by": "op-maker", "business_date": "2026-10-05",
            "installments": [{"number": 1, "due_date": "2026-11-05", "principal": "400.00",
                              "interest": "80.00", "fees": "0.00", "penalties": "0.00",
                              "total": "480.00", "paid": "480.00", "outstanding": "0.00",
                              "status": "paid", "paid_on": "2026-11-04"}],
            "detail": {}, "created_at": T0}


def group_loan_record(group_loan_id: str, members: list[tuple[str, str, int]],
                      saga_id: str | None = None, saga_state: str = "completed"
                      ) -> dict[str, Any]:
    """A group loan in the real shape: ``members`` are (loan id, client id, days in
    arrears), each with 1000.00 of principal."""
    return {
        "id": group_loan_id, "group_id": f"G-{group_loan_id}", "product_id": "P-weekly",
        "status": "active", "cycle": 1, "cover_arrears": False, "arrears_tolerance_days": 0,
        "in_arrears": any(days > 0 for _, _, days in members), "submitted_by": "op-maker",
        "decided_by": "op-checker", "office_id": "b-1",
        "total_principal": f"{1000 * len(members)}.00",
        "members": [{"loan_id": loan_id, "client_id": client_id, "status": "active",
                     "principal": "1000.00", "principal_outstanding": "750.00",
                     "days_in_arrears": days} for loan_id, client_id, days in members],
        "saga": {"id": saga_id, "state": saga_state, "reason": None, "to_recover": []}
        if saga_id else None,
        "saga_id": saga_id}


def arrange(ls: LoansState, loans: dict[str, dict[str, Any]], loan_id: str) -> None:
    """An active loan ``loan_id`` with a payoff and an earlier schedule version, a holiday,
    an officer's sheet, a branch's cash, a due list and portfolios by office/officer."""
    loans[loan_id].update(status="active", reference="NR7K2Q9M4X", purpose="equipment",
                          teg="0.312400", total_cost_of_credit="812.40",
                          recovered_amount="0.00", schedule_version=2, restructured=False,
                          restructured_on=None, max_days_in_arrears=0)
    ls.payoffs[loan_id] = {**PAYOFF, "loan_id": loan_id}
    ls.versions[loan_id] = [version(1)]
    ls.holidays["2026-12-20"] = {"date": "2026-12-20", "name": "Aïd al-Fitr (prévu)",
                                 "provisional": True, "updated_by": "seed",
                                 "updated_at": T0}
    ls.sheets["cs-20261130-o-st-1"] = sheet("cs-20261130-o-st-1", "st-1", "2026-11-30", [
        ("G-1", "Groupe Tifaout", [member("L-s1", "Fatima Zahra", "150.00", leader=True),
                                   member("L-s2", "Khadija Amrani", "200.00")]),
        (None, None, [member("L-s3", "Hassan Idrissi", "300.00")])])
    ls.cash[("b-1", "2026-11-30")] = cash_count("b-1", "2026-11-30", "650.00")
    ls.group_loans["GL-1"] = group_loan_record("GL-1", [(loan_id, "C-1", 2)])
    ls.due = [due_item("L-d1", 1, "2026-11-01", 29), due_item("L-d2", 3, "2026-11-30", 0)]
    ls.portfolios[("b-1", "")] = scoped_portfolio("b-1", None, "5000.00", "0.2400",
                                                  "450.00")
    ls.portfolios[("", "st-1")] = scoped_portfolio(None, "st-1", "3000.00", "0.1000",
                                                   "300.00")
    ls.history = {("b-1", ""): [snapshot("2026-11-29", "450.00")]}
    # proposals by another operator, for a second one to decide
    ls.reschedules["RR-other"] = {
        "id": "RR-other", "kind": "reschedule", "loan_id": loan_id, "status": "pending",
        "params": {"term": 6}, "preview": {"installments": []}, "requested_by": "op-maker",
        "decided_by": None, "decided_at": None, "result": {}, "created_at": T0}
    ls.requests.extend({"id": f"LR-other-{n}", "loan_id": loan_id, "kind": kind,
                        "status": "pending", "amount": None, "reason": "proposed",
                        "proposed_by": "op-maker", "proposed_at": T0, "decided_by": None,
                        "decided_at": None} for n, kind in ((1, "waiver"), (2, "write_off")))


CALLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/business-date", None), ("GET", "/v1/calendar/working-days", None),
    ("GET", "/v1/group-loans/GL-1", None), ("GET", "/v1/group-loans/nothing", None),
    ("PUT", "/v1/calendar/working-days", {"working_weekdays": [0, 1, 2, 3, 4, 5]}),
    ("PUT", "/v1/calendar/working-days", {"working_weekdays": [9]}),
    ("GET", "/v1/calendar/holidays?from=2026-01-01&to=2026-12-31", None),
    ("POST", "/v1/calendar/holidays", {"date": "2026-12-31", "name": "Fin d'année"}),
    ("POST", "/v1/calendar/holidays", {"date": "2026-12-31", "name": "again"}),
    ("PUT", "/v1/calendar/holidays/2026-12-20", {"provisional": False}),
    ("PUT", "/v1/calendar/holidays/2000-01-01", {"provisional": False}),
    ("DELETE", "/v1/calendar/holidays/2026-12-31", None),
    ("DELETE", "/v1/calendar/holidays/2026-12-31", None),
    ("GET", "/v1/loans/L-3/payoff?date=2026-12-01", None),
    ("GET", "/v1/loans/L-2/payoff", None),
    ("GET", "/v1/loans/L-3/schedule/versions", None),
    ("POST", "/v1/loans/L-3/reschedule", {"term": 6, "moratorium": 1}),
    ("POST", "/v1/loans/L-2/reschedule", {"term": 6}),
    ("GET", "/v1/reschedule-requests/RR-2", None),
    ("GET", "/v1/reschedule-requests/nothing", None),
    ("POST", "/v1/reschedule-requests/RR-2/reject", None),
    ("POST", "/v1/reschedule-requests/RR-2/approve", None),
    ("POST", "/v1/reschedule-requests/RR-other/approve", None),
    ("POST", "/v1/loan-requests/LR-other-1/approve", None),
    ("POST", "/v1/loan-requests/LR-other-2/reject", {"reason": "not yet"}),
    ("POST", "/v1/loans/L-3/write-off", {"reason": "uncollectable"}),
    ("POST", "/v1/loans/L-3/write-off", {"reason": "again"}),
    ("POST", "/v1/loans/L-3/waivers", {"reason": "drought", "amount": "50.00"}),
    ("GET", "/v1/loan-requests?status=pending", None),
    ("POST", "/v1/loan-requests/LR-3/approve", None),
    ("POST", "/v1/loan-requests/LR-4/reject", {"reason": "no"}),
    ("POST", "/v1/loan-requests/LR-4/reject", {"reason": "again"}),
    ("GET", "/v1/installments/due?date=2026-11-30&limit=1", None),
    ("GET", "/v1/portfolio?office_id=b-1", None),
    ("GET", "/v1/portfolio?office_id=nowhere", None),
    ("GET", "/v1/portfolio/history?office_id=b-1", None),
    ("GET", "/v1/collection-sheets?officer_id=st-1&date=2026-11-30", None),
    ("GET", "/v1/collection-sheets?date=2026-11-30", None),
    ("GET", "/v1/collection-sheets/cs-20261130-o-st-1", None),
    ("GET", "/v1/collection-sheets/cs-nothing", None),
    ("POST", "/v1/collection-sheets/cs-20261130-o-st-1/collections",
     {"lines": [{"loan_id": "L-s1", "amount": "150.00"}]}),
    ("GET", "/v1/cash-reconciliations?office_id=b-1&business_date=2026-11-30", None),
    ("GET", "/v1/cash-reconciliations?office_id=nowhere", None),
    ("POST", "/v1/cash-reconciliations",
     {"office_id": "b-1", "business_date": "2026-11-30", "declared": "640.00"}),
    ("POST", "/v1/cash-reconciliations",
     {"office_id": "b-1", "business_date": "2026-11-30", "declared": "640.00"}),
]
