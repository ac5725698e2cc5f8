"""Day counts, the non-accrual plan, provision buckets, the accounting entries and the
statements' arithmetic, without I/O."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.payments.domain import accruals, postings, provisioning, statements
from services.payments.domain.accounts import Side
from services.payments.domain.chart import GLAccount, GLType
from services.payments.domain.journals import period_bounds
from shared.errors import InvalidInput
from tests.unit.payments.memory_ledger import Ledger

D = Decimal


def test_day_counts() -> None:
    day = dt.date(2025, 3, 10)
    assert accruals.daily_interest(D("3650.00"), D("0.10"), day, accruals.DayCount.ACTUAL_365) \
        == D("1.00")
    assert accruals.daily_interest(D("3600.00"), D("0.10"), day, accruals.DayCount.ACTUAL_360) \
        == D("1.00")
    # 30/360: the 31st earns nothing, 1 March after a 28-day February earns 3 days
    assert accruals.days_30_360(dt.date(2025, 3, 30), dt.date(2025, 3, 31)) == 0
    assert accruals.daily_interest(D("1800.00"), D("0.20"), dt.date(2025, 3, 1),
                                   accruals.DayCount.THIRTY_360) == D("3.00")
    assert accruals.daily_interest(D("1800.00"), D("0.20"), dt.date(2025, 3, 31),
                                   accruals.DayCount.THIRTY_360) == D("0.00")


def test_thirty_360_gives_360_days_a_year() -> None:
    total = 0
    d = dt.date(2025, 1, 1)
    while d.year == 2025:
        total += accruals.accrual_days(d, accruals.DayCount.THIRTY_360)[0]
        d += dt.timedelta(days=1)
    assert total == 360


def test_non_accrual_plan() -> None:
    items = [accruals.LoanAccrual("a", D("1.00"), 0), accruals.LoanAccrual("b", D("2.00"), 90),
             accruals.LoanAccrual("c", D("3.00"), 10)]
    plan = accruals.plan(items, 90, non_accrual={"c"}, receivable={"b": D("40.00")})
    assert [a.loan_id for a in plan.accrue] == ["a", "c"]
    assert plan.stop == ("b",) and plan.reverse == (("b", D("40.00")),)
    assert plan.resume == ("c",)
    # already in non-accrual: nothing reversed twice
    again = accruals.plan(items[1:2], 90, non_accrual={"b"}, receivable={"b": D("40.00")})
    assert again.reverse == () and again.stop == ()


RATES = [provisioning.Rate("current", 0, 0, D("0")), provisioning.Rate("1-30", 1, 30, D("0.05")),
         provisioning.Rate("31+", 31, None, D("1")),
         provisioning.Rate("restructured", None, None, D("0.25"), restructured=True)]


def test_provision_buckets() -> None:
    provisioning.check_rates(RATES)
    assert provisioning.rate_for(RATES, 0, False).bucket == "current"
    assert provisioning.rate_for(RATES, 30, False).bucket == "1-30"
    assert provisioning.rate_for(RATES, 31, False).bucket == "31+"
    assert provisioning.rate_for(RATES, 5, True).bucket == "restructured"
    assert provisioning.rate_for(RATES, 40, True).bucket == "31+"
    assert provisioning.required(D("333.33"), D("0.05")) == D("16.67")
    with pytest.raises(InvalidInput):
        provisioning.check_rates([RATES[0], provisioning.Rate("2+", 2, None, D("1"))])


@given(principal=st.decimals(min_value=1, max_value=100000, places=2),
       allowance=st.decimals(min_value=0, max_value=100000, places=2),
       receivable=st.decimals(min_value=0, max_value=1000, places=2))
def test_a_write_off_balances_and_empties_the_loan(principal: D, allowance: D,
                                                   receivable: D) -> None:
    ledger = Ledger()
    ledger.post(postings.funding("sim", D("200000.00"), "f"))
    ledger.post(postings.disbursement("s", "L", "sim", principal))
    if allowance:
        ledger.post(postings.provision("L", dt.date(2025, 1, 1), allowance))
    if receivable:
        ledger.post(postings.interest_accrual("L", dt.date(2025, 1, 1), receivable))
    ledger.post(postings.write_off("L", principal, allowance=allowance, receivable=receivable))
    for account in ("portfolio:L", "allowance:L", "interest_receivable:L"):
        assert ledger.balances.get(account, D("0")) == 0
    debits, credits = ledger.trial_balance()
    assert debits == credits


def test_statements_balance() -> None:
    chart = {"1": GLAccount("1", "a", "a", GLType.ASSET), "5": GLAccount("5", "e", "e",
                                                                       GLType.EQUITY),
             "7": GLAccount("7", "i", "i", GLType.INCOME)}
    totals = {"1": statements.Totals(D("110"), D("0")), "5": statements.Totals(D("0"), D("100")),
              "7": statements.Totals(D("0"), D("10"))}
    sheet = statements.balance_sheet(chart, totals)
    assert sheet["balanced"] and sheet["unclosed_result"] == D("10")
    assert statements.trial_balance(chart, totals)["balanced"]
    assert "total,net_income" in statements.to_csv(
        "income_statement", statements.income_statement(chart, totals))
    assert GLType.INCOME.normal is Side.CREDIT


def test_periods() -> None:
    assert period_bounds("2024-02") == (dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    with pytest.raises(InvalidInput):
        period_bounds("2024-13")
