"""Events other services publish, as the tests need them."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from shared.contracts.loans import LoanDisbursed, RepaymentApplied, RepaymentDue


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
