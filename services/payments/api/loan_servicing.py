"""``GET /v1/loans/{loan_id}/servicing`` — what loan servicing did to a loan in the
ledger: its portfolio (principal), interest receivable and capitalised interest reserved,
and each servicing event with what was booked for it (an early settlement's waived
interest, late charges waived, interest capitalised)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from services.payments.api.deps import runtime
from services.payments.api.office_scope import check_loan
from services.payments.api.schemas import money_strings
from services.payments.api.servicing_schemas import LoanServicing, ServicingMemo
from services.payments.domain import accounts as acc
from services.payments.repository import approvals
from services.payments.repository import ledger as ledger_repo
from services.payments.repository import servicing as repo
from shared.auth import Principal, require
from shared.money import format_amount

router = APIRouter(tags=["ledger"])


@router.get("/v1/loans/{loan_id}/servicing", response_model=LoanServicing,
            summary="A loan's servicing in the ledger: waivers, capitalisation, balances")
async def loan_servicing(
    loan_id: str, request: Request,
    principal: Annotated[Principal, require("ledger:read", "tenant:all")],
) -> LoanServicing:
    async with runtime(request).pool.acquire() as conn:
        await check_loan(conn, principal, loan_id)
        portfolio = await ledger_repo.balance(conn, acc.portfolio(loan_id))
        receivable = await ledger_repo.balance(conn, acc.interest_receivable(loan_id))
        reserved = await ledger_repo.balance(conn, acc.capitalised_interest(loan_id))
        memos = await repo.memos_of(conn, loan_id)
    return LoanServicing(
        loan_id=loan_id, portfolio_balance=format_amount(portfolio),
        interest_receivable=format_amount(receivable),
        capitalised_interest_reserved=format_amount(reserved),
        memos=[ServicingMemo.model_validate(money_strings({
            "kind": m["kind"], "source_id": m["source_id"], "amount": m["amount"],
            "booked": m["booked"], "basis": m["basis"],
            "business_date": m["business_date"].isoformat() if m["business_date"] else None,
            "transfer_id": m["transfer_id"], "detail": approvals.as_dict(m["detail"]),
            "recorded_at": m["recorded_at"]})) for m in memos])
