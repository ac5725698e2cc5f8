"""Rescheduling and restructuring by maker-checker, one loan or a bulk moratorium.

A request (new term, extra grace, a moratorium of N periods, interest capitalised or
not) is stored with the preview it answered; a second operator approves it (the maker
cannot: 403). Approval recomputes the schedule on the same business date and loan
version (a loan changed since the preview is a 409: request again), keeps the old
schedule as a version, writes the new one and marks the loan ``restructured`` until
``cure_installments`` installments of the new schedule are paid on time (lifted by
close of business). A bulk moratorium (a region hit by a disaster: the 2023 Al Haouz
earthquake) names its loans by id or by partner and is applied to every loan still
active when it is approved, each as its own restructuring.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import date
from decimal import Decimal
from typing import Any

from services.loans.domain.allocation import InstallmentDue
from services.loans.domain.loan import Loan, LoanStatus
from services.loans.domain.pricing import price
from services.loans.domain.products import ProductTerms
from services.loans.domain.rescheduling import Restructured, RestructureTerms, restructure
from services.loans.handlers.servicing import schedule_lines
from services.loans.repository import calendar as calendar_repo
from services.loans.repository import loans as loans_repo
from services.loans.repository import products as products_repo
from services.loans.repository import schedules as schedules_repo
from services.loans.repository.loans import Installment
from shared.auth import Principal
from shared.clock import today
from shared.contracts.loans import LoanScheduleRebuilt
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.uow import UnitOfWork

ZERO = Decimal("0.00")
OPEN = ("pending", "overdue")


async def business_day(conn: Any) -> date:
    row = await calendar_repo.business_date(conn)
    return row["business_date"] if row is not None else today()


def _open_sorted(items: list[Installment]) -> list[Installment]:
    return sorted((i for i in items if i.status in OPEN), key=lambda i: (i.due_date, i.number))


def targets(items: list[Installment], count: int) -> list[int]:
    """The installment numbers the new rows take: the open installments' own numbers
    first, then numbers after the last installment."""
    numbers = sorted(i.number for i in items if i.status in OPEN)
    top = max((i.number for i in items), default=0)
    while len(numbers) < count:
        top += 1
        numbers.append(top)
    return numbers


async def _compute(conn: Any, loan: Loan, terms: ProductTerms, items: list[Installment],
                   params: RestructureTerms, as_of: date) -> Restructured:
    if loan.status is not LoanStatus.ACTIVE:
        raise Conflict(f"only an active loan can be rescheduled; the loan is "
                       f"{loan.status.value}", field="loan_id")
    calendar = await calendar_repo.working_calendar(conn, as_of)
    owed = [i.owed() for i in _open_sorted(items)]
    return restructure(terms, owed, as_of, params, loan_principal=loan.principal,
                       calendar=calendar)


def preview_json(items: list[Installment], result: Restructured, as_of: date,
                 periods_per_year: int) -> dict[str, Any]:
    numbers = targets(items, len(result.installments))
    rows = [_row(n, r) for n, r in zip(numbers, result.installments, strict=False)]
    totals = [r.total for r in result.installments]
    cost = price(result.principal_before, totals, periods_per_year)
    return {"business_date": as_of.isoformat(), "installments": rows,
            "principal_before": str(result.principal_before),
            "principal_after": str(result.principal_after),
            "capitalised_interest": str(result.capitalised_interest),
            "moratorium_interest": str(result.moratorium_interest),
            "total_repayable": str(sum(totals, ZERO)),
            "teg": str(cost.teg), "total_cost_of_credit": str(cost.total_cost_of_credit)}


def _row(number: int, r: InstallmentDue) -> dict[str, Any]:
    return {"number": number, "due_date": r.due_date.isoformat(), "principal": str(r.principal),
            "interest": str(r.interest), "fees": str(r.fees), "penalties": str(r.penalties),
            "total": str(r.total)}


def params_from(body: dict[str, Any], default_term: int) -> tuple[RestructureTerms, int]:
    term = body.get("term") or default_term
    params = RestructureTerms(term=term, grace=body.get("grace", 0),
                              moratorium=body.get("moratorium", 0),
                              capitalise_interest=body.get("capitalise_interest", False))
    params.validate()
    return params, int(body.get("cure_installments", 3))


async def _load(uow: UnitOfWork, loan_id: str) -> tuple[Loan, ProductTerms, list[Installment]]:
    loan = await loans_repo.get(uow.conn, loan_id, for_update=True)
    if loan is None:
        raise NotFound(f"loan {loan_id} not found", field="loan_id")
    product = await products_repo.get(uow.conn, loan.product_id, loan.product_version)
    assert product is not None
    return loan, product.terms, await loans_repo.installments(uow.conn, loan.id)


async def request_reschedule(uow: UnitOfWork, who: Principal, loan: Loan,
                             body: dict[str, Any]) -> dict[str, Any]:
    """Store the request and answer its preview (nothing changes on the loan)."""
    loan, terms, items = await _load(uow, loan.id)
    open_count = len(_open_sorted(items))
    params, cure = params_from(body, max(open_count, 1))
    as_of = await business_day(uow.conn)
    result = await _compute(uow.conn, loan, terms, items, params, as_of)
    preview = preview_json(items, result, as_of, terms.periods_per_year)
    row = await schedules_repo.insert_request(
        uow.conn, request_id=str(uuid.uuid4()), kind="loan", loan_id=loan.id,
        loan_version=loan.version, params={**asdict(params), "cure_installments": cure,
                                           "reason": body.get("reason", "")},
        preview=preview, by=who.sub)
    return request_json(row)


async def request_bulk(uow: UnitOfWork, who: Principal, body: dict[str, Any]
                       ) -> dict[str, Any]:
    """A moratorium for many loans: the loans it names now are listed; approval applies
    it to those still active then."""
    params, cure = params_from({**body, "term": 1}, 1)
    ids = await schedules_repo.active_loans(uow.conn, loan_ids=body.get("loan_ids"),
                                            partner_id=body.get("partner_id"))
    if not ids:
        raise InvalidInput("no active loan matches", field="loan_ids"
                           if body.get("loan_ids") is not None else "partner_id")
    row = await schedules_repo.insert_request(
        uow.conn, request_id=str(uuid.uuid4()), kind="bulk", loan_id=None, loan_version=None,
        params={"moratorium": params.moratorium,
                "capitalise_interest": params.capitalise_interest,
                "cure_installments": cure, "reason": body.get("reason", ""),
                "loan_ids": body.get("loan_ids"), "partner_id": body.get("partner_id")},
        preview={"business_date": (await business_day(uow.conn)).isoformat(),
                 "loans": len(ids), "loan_ids": ids}, by=who.sub)
    return request_json(row)


def request_json(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "kind": row["kind"], "loan_id": row["loan_id"],
            "status": row["status"], "params": row["params"], "preview": row["preview"],
            "requested_by": row["requested_by"], "decided_by": row["decided_by"],
            "decided_at": row["decided_at"].isoformat() if row["decided_at"] else None,
            "result": row["result"], "created_at": row["created_at"].isoformat()}


async def get_request(uow: UnitOfWork, request_id: str) -> dict[str, Any]:
    row = await schedules_repo.request(uow.conn, request_id)
    if row is None:
        raise NotFound(f"rescheduling request {request_id} not found", field="request_id")
    return request_json(row)


async def decide(uow: UnitOfWork, who: Principal, request_id: str, approve: bool
                 ) -> dict[str, Any]:
    row = await schedules_repo.request(uow.conn, request_id, lock=True)
    if row is None:
        raise NotFound(f"rescheduling request {request_id} not found", field="request_id")
    if row["status"] != "pending":
        raise Conflict(f"the request is already {row['status']}", field="request_id")
    if row["requested_by"] == who.sub:
        raise Forbidden("maker-checker: the operator who asked cannot decide")
    if not approve:
        return request_json(await schedules_repo.decide_request(
            uow.conn, request_id, "rejected", who.sub, {}))
    params = row["params"]
    as_of = await business_day(uow.conn)
    if row["kind"] == "loan":
        loan, terms, items = await _load(uow, row["loan_id"])
        if loan.version != row["loan_version"] or as_of.isoformat() != \
                row["preview"]["business_date"]:
            raise Conflict("the loan or the business date changed since the preview; "
                           "request the rescheduling again", field="request_id")
        restructure_terms = RestructureTerms(
            term=params["term"], grace=params["grace"], moratorium=params["moratorium"],
            capitalise_interest=params["capitalise_interest"])
        await apply(uow, loan, terms, items, restructure_terms, as_of,
                    cure=params["cure_installments"], request_id=request_id, by=who.sub)
        result: dict[str, Any] = {"loans": [loan.id]}
    else:
        ids = await schedules_repo.active_loans(uow.conn, loan_ids=params.get("loan_ids"),
                                                partner_id=params.get("partner_id"))
        done = []
        for loan_id in ids:
            loan, terms, items = await _load(uow, loan_id)
            open_count = len(_open_sorted(items))
            if loan.status is not LoanStatus.ACTIVE or open_count == 0:
                continue
            await apply(uow, loan, terms, items, RestructureTerms(
                term=open_count, moratorium=params["moratorium"],
                capitalise_interest=params["capitalise_interest"]), as_of,
                cure=params["cure_installments"], request_id=request_id, by=who.sub)
            done.append(loan_id)
        result = {"loans": done}
    return request_json(await schedules_repo.decide_request(
        uow.conn, request_id, "approved", who.sub, result))


async def apply(uow: UnitOfWork, loan: Loan, terms: ProductTerms, items: list[Installment],
                params: RestructureTerms, as_of: date, *, cure: int, request_id: str,
                by: str) -> list[Installment]:
    conn = uow.conn
    result = await _compute(conn, loan, terms, items, params, as_of)
    numbers = targets(items, len(result.installments))
    interest_before = sum((i.owed().interest for i in items if i.status in OPEN), ZERO)
    version = await schedules_repo.snapshot_version(
        conn, loan.id, items, reason="restructure", by=by, business_date=as_of,
        detail={"request_id": request_id, **asdict(params)})
    open_numbers = sorted(i.number for i in items if i.status in OPEN)
    after = await schedules_repo.replace_owed(conn, loan.id, items, result.installments,
                                              open_numbers)
    await schedules_repo.mark_restructured(conn, loan.id, as_of, numbers[0], cure)
    loan.principal_outstanding = result.principal_after
    loan.days_in_arrears = 0
    loan.arrears_bucket = "current"
    await loans_repo.save(conn, loan)
    uow.emit(LoanScheduleRebuilt(
        loan_id=loan.id, client_id=loan.client_id, reason="restructure",
        schedule_version=version, business_date=as_of, installments=schedule_lines(after),
        outstanding_principal=result.principal_after, interest_before=interest_before,
        interest_after=sum((r.interest for r in result.installments), ZERO),
        capitalised_interest=result.capitalised_interest, restructured=True,
        request_id=request_id, approved_by=by), key=loan.id)
    return after

