"""Events other services publish, as the tests need them."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from shared.contracts.loans import LoanDisbursed, RepaymentApplied, RepaymentDue
from shared.contracts.savings import (
    AccountDormant,
    DepositPosted,
    InterestPosted,
    SavingsAccountOpened,
    WithdrawalCompleted,
)


def loan_id() -> str:
    return f"ln-{uuid.uuid4().hex[:12]}"


def disbursed(client_id: str, phone: str, principal: str = "5000.00",
              loan: str | None = None) -> LoanDisbursed:
    return LoanDisbursed(
        loan_id=loan or loan_id(), client_id=client_id, partner_id="pa-x",
        saga_id=str(uuid.uuid4()), principal=Decimal(principal), msisdn=phone,
        disbursed_on=dt.date(2027, 3, 12), installments=12, first_due_date=dt.date(2027, 4, 12),
        first_due_amount=Decimal("468.20"), total_repayable=Decimal("5618.40"),
        fees_at_disbursement=Decimal("50.00"))


def repayment(client_id: str, loan: str | None = None) -> RepaymentApplied:
    return RepaymentApplied(
        loan_id=loan or loan_id(), client_id=client_id, payment_id=str(uuid.uuid4()),
        amount=Decimal("500.00"), allocation=[], principal_paid=Decimal("400.00"),
        interest_paid=Decimal("100.00"), fees_paid=Decimal("0"), penalties_paid=Decimal("0"),
        outstanding_principal=Decimal("4100.00"), outstanding_total=Decimal("4650.00"),
        next_due_date=dt.date(2027, 5, 12), next_due_amount=Decimal("468.20"),
        closes_loan=False)


def due(client_id: str, loan: str | None = None) -> RepaymentDue:
    return RepaymentDue(loan_id=loan or loan_id(), client_id=client_id,
                        business_date=dt.date(2027, 4, 10), due_date=dt.date(2027, 4, 12),
                        installment=1, amount=Decimal("468.20"))


def account_id() -> str:
    return f"sa-{uuid.uuid4().hex[:12]}"


def account_opened(client_id: str, account: str) -> SavingsAccountOpened:
    return SavingsAccountOpened(
        account_id=account, client_id=client_id, partner_id="pa-x", product_id="sp-vol",
        product_version=1, product_kind="voluntary", status="active", opened_by="op")


def deposit(client_id: str, account: str | None = None, amount: str = "1500.00",
            balance: str = "12500.50") -> DepositPosted:
    return DepositPosted(
        account_id=account or account_id(), client_id=client_id,
        deposit_id=str(uuid.uuid4()), amount=Decimal(amount), channel="mobile_money",
        payment_id=str(uuid.uuid4()), ledger_balance=Decimal(balance),
        available_balance=Decimal(balance), value_date=dt.date(2027, 3, 12),
        posted_by="payments")


def withdrawal(client_id: str, account: str | None = None,
               balance: str = "1295.00") -> WithdrawalCompleted:
    return WithdrawalCompleted(
        account_id=account or account_id(), client_id=client_id,
        withdrawal_id=str(uuid.uuid4()), amount=Decimal("200.00"), fee=Decimal("5.00"),
        provider_reference="mm-1", ledger_balance=Decimal(balance),
        available_balance=Decimal(balance), value_date=dt.date(2027, 3, 12))


def interest(client_id: str, account: str | None = None) -> InterestPosted:
    return InterestPosted(
        account_id=account or account_id(), client_id=client_id,
        period_start=dt.date(2027, 3, 1), period_end=dt.date(2027, 3, 31),
        gross=Decimal("15.43"), withholding_tax=Decimal("3.09"), net=Decimal("12.34"),
        ledger_balance=Decimal("3012.34"), business_date=dt.date(2027, 3, 31))


def dormant(client_id: str, account: str | None = None) -> AccountDormant:
    return AccountDormant(account_id=account or account_id(), client_id=client_id,
                          last_client_transaction_on=dt.date(2026, 3, 2),
                          business_date=dt.date(2027, 3, 31))
