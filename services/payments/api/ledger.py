"""Operator views of the ledger: trial balance, statements, portfolio, savings deposits,
reconciliation."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.payments.api.deps import providers, runtime
from services.payments.api.office_scope import check_loan, head_office_only
from services.payments.api.savings_schemas import SavingsLiability
from services.payments.api.schemas import (
    PortfolioBalance,
    Reconciliation,
    Statement,
    TrialBalance,
    money_strings,
)
from services.payments.domain import accounts
from services.payments.domain import savings as savings_rules
from services.payments.handlers.reconciliation import reconcile_day
from services.payments.repository import ledger as ledger_repo
from services.payments.repository import savings as savings_repo
from shared.auth import Principal, require
from shared.errors import NotFound
from shared.money import format_amount

Operator = Annotated[Principal, require("ledger:read", "tenant:all")]

router = APIRouter(tags=["ledger"])

PER_LOAN = ("portfolio:", "interest_receivable:", "allowance:")


def _loan_of(account_id: str) -> str | None:
    """The loan of a per-loan sub-ledger account (None for any other account)."""
    for prefix in PER_LOAN:
        if account_id.startswith(prefix) and len(account_id) > len(prefix):
            return account_id[len(prefix):]
    return None


@router.get("/v1/ledger/trial-balance", response_model=TrialBalance,
            summary="Totals per account kind, and balanced")
async def trial_balance(request: Request, principal: Operator) -> TrialBalance:
    head_office_only(principal, "the ledger's trial balance per account kind")
    async with runtime(request).pool.acquire() as conn:
        return TrialBalance.model_validate(money_strings(await ledger_repo.trial_balance(conn)))


@router.get("/v1/accounts/{account_id}/statement", response_model=Statement,
            summary="An account's lines")
async def statement(account_id: str, request: Request, principal: Operator,
                    limit: Annotated[int, Query(ge=1, le=500)] = 100,
                    before: Annotated[int | None, Query(ge=1)] = None) -> Statement:
    loan = _loan_of(account_id)
    if loan is None:
        head_office_only(principal, f"account {account_id}")
    async with runtime(request).pool.acquire() as conn:
        if loan is not None:
            await check_loan(conn, principal, loan)
        return Statement.model_validate(money_strings(
            await ledger_repo.statement(conn, account_id, limit, before)))


@router.get("/v1/loans/{loan_id}/portfolio-balance", response_model=PortfolioBalance,
            summary="The loan's principal on the books (= loans' outstanding principal)")
async def portfolio_balance(loan_id: str, request: Request, principal: Operator
                            ) -> PortfolioBalance:
    account = accounts.portfolio(loan_id)
    async with runtime(request).pool.acquire() as conn:
        await check_loan(conn, principal, loan_id)
        exists = await ledger_repo.account_exists(conn, account)
        balance = await ledger_repo.balance(conn, account)
    return PortfolioBalance(loan_id=loan_id, account_id=account, exists=exists,
                            portfolio_balance=format_amount(balance), currency="MAD")


@router.get("/v1/ledger/savings/{account_id}", response_model=SavingsLiability,
            summary="A savings account's deposit liability (= savings' balance)")
async def savings_liability(account_id: str, request: Request, principal: Operator
                            ) -> SavingsLiability:
    head_office_only(principal, "a savings account's deposit liability")
    async with runtime(request).pool.acquire() as conn:
        exists, balance = await savings_repo.deposit_liability(conn, account_id)
        count, in_flight = await savings_repo.withdrawals_open(conn, account_id)
    return SavingsLiability(
        account_id=account_id, ledger_account_id=accounts.savings_deposits(account_id),
        exists=exists, deposit_liability=format_amount(balance),
        withdrawals_in_flight=format_amount(in_flight), withdrawals_in_flight_count=count,
        payment_reference=savings_rules.reference_for(account_id), currency="MAD")


@router.get("/v1/reconciliation/{provider}/{day}", response_model=Reconciliation,
            response_model_exclude_unset=True,
            summary="Ledger vs the provider's statement for one day")
async def reconciliation(provider: str, day: dt.date, request: Request, principal: Operator
                         ) -> Reconciliation:
    client = providers(request).get(provider)
    if client is None:
        raise NotFound(f"no mobile-money provider named {provider!r}", field="provider")
    result = await reconcile_day(runtime(request).pool, client, day)
    return Reconciliation.model_validate(
        money_strings({"provider": provider, "date": day, **result}))
