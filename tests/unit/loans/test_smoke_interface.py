"""The loans domain interface the service builds on: one example per function."""

from datetime import date
from decimal import Decimal

from services.loans.domain.allocation import InstallmentDue, Rejection, allocate, decide_repayment
from services.loans.domain.delinquency import arrears_bucket, days_in_arrears, par_ratio
from services.loans.domain.products import (
    Amortization,
    Frequency,
    InterestMethod,
    ProductTerms,
)
from services.loans.domain.schedule import build_schedule


def test_textbook_annuity_of_10000_at_12_percent_over_12_months() -> None:
    terms = ProductTerms(
        InterestMethod.DECLINING_BALANCE, Amortization.EQUAL_INSTALLMENTS, Frequency.MONTHLY,
        Decimal("0.12"), Decimal("100.00"), Decimal("50000.00"), 1, 36,
    )
    schedule = build_schedule(terms, Decimal("10000.00"), 12, date(2026, 1, 15))
    assert [i.total for i in schedule[:-1]] == [Decimal("888.49")] * 11
    assert schedule[0].interest == Decimal("100.00")
    assert sum(i.principal for i in schedule) == Decimal("10000.00")


def test_payment_settles_oldest_installment_first_and_rejects_overpayment() -> None:
    dues = [
        InstallmentDue(2, date(2026, 3, 1), Decimal("90"), Decimal("10"), Decimal("0"),
                       Decimal("0")),
        InstallmentDue(1, date(2026, 2, 1), Decimal("90"), Decimal("10"), Decimal("0"),
                       Decimal("5")),
    ]
    result = allocate(dues, Decimal("110.00"))
    assert [(ln.installment, ln.component, ln.amount) for ln in result.lines] == [
        (1, "penalties", Decimal("5")), (1, "interest", Decimal("10")),
        (1, "principal", Decimal("90")), (2, "interest", Decimal("5.00")),
    ]
    assert isinstance(decide_repayment(dues, Decimal("205.01"), tolerance=Decimal("0")),
                      Rejection)
    assert days_in_arrears(dues, date(2026, 2, 11)) == 10
    assert arrears_bucket(10) == "1-30"
    assert par_ratio([(Decimal("100"), 31), (Decimal("300"), 0)], 30) == Decimal("0.2500")
