"""Account and product rules, without I/O."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal as D

import pytest

from services.savings.domain import account as acc
from services.savings.domain.products import (
    CompulsoryTerms,
    TermDepositTerms,
    VoluntaryTerms,
    terms_from_dict,
    terms_to_dict,
)
from shared.errors import Conflict, Forbidden, InvalidInput


def account(**changes: object) -> acc.Account:
    base = acc.Account(id="a1", client_id="c1", partner_id="p1", product_id="prod",
                       product_version=1, kind="voluntary", status="active",
                       balances=acc.Balances(D("500.00")), opened_by="maker")
    return replace(base, **changes)  # type: ignore[arg-type]


def test_an_opening_above_the_threshold_waits_for_a_second_person() -> None:
    assert acc.opening_status(D("10000.00"), D("10000.00")) == "active"
    pending = account(status=acc.opening_status(D("10000.01"), D("10000.00")))
    assert pending.status == "pending_approval"
    with pytest.raises(Forbidden):
        acc.approve(pending, by="maker")
    assert acc.approve(pending, by="checker").status == "active"


def test_close_needs_the_balance_paid_out_and_nothing_in_flight() -> None:
    with pytest.raises(Conflict, match="paid out"):
        acc.close(account(), on=dt.date(2025, 1, 1))
    with pytest.raises(Conflict, match="in flight"):
        acc.close(account(balances=acc.Balances(D("10.00"), D("10.00"))),
                  on=dt.date(2025, 1, 1))
    closed = acc.close(account(balances=acc.Balances()), on=dt.date(2025, 1, 1))
    assert closed.status == "closed"


def test_withdrawals_are_refused_on_blocked_dormant_locked_and_unmatured_accounts() -> None:
    blocked = acc.block(account(), reason="saisie judiciaire", by="op")
    with pytest.raises(Conflict, match="saisie judiciaire"):
        acc.check_withdrawal(blocked)
    acc.check_deposit(blocked)   # a block stops debits only
    with pytest.raises(InvalidInput):
        acc.block(account(), reason="  ", by="op")
    with pytest.raises(Conflict, match="dormant"):
        acc.check_withdrawal(account(status="dormant"))
    with pytest.raises(Conflict, match="until the loan closes"):
        acc.check_withdrawal(account(kind="compulsory", linked_loan_id="loan-1"))
    acc.check_withdrawal(account(kind="compulsory", linked_loan_closed=True))
    with pytest.raises(Conflict, match="maturity"):
        acc.check_withdrawal(account(kind="term_deposit"))
    acc.check_withdrawal(account(kind="term_deposit", status="matured"))


def test_the_fee_applies_once_the_free_withdrawals_of_the_month_are_used() -> None:
    assert acc.withdrawal_fee(D("5.00"), 2, 0) == 0
    assert acc.withdrawal_fee(D("5.00"), 2, 1) == 0
    assert acc.withdrawal_fee(D("5.00"), 2, 2) == D("5.00")


def test_products_validate_and_round_trip() -> None:
    for terms in (
        VoluntaryTerms(annual_rate=D("0.035"), interest_basis="minimum_balance",
                       posting_period="quarterly", min_opening_balance=D("100.00"),
                       min_balance=D("50.00"), withdrawal_fee=D("5.00"),
                       free_withdrawals_per_month=2, withholding_tax_rate=D("0.20")),
        CompulsoryTerms(loan_product_id="lp-1", share_of_principal=D("0.10")),
        TermDepositTerms(term_months=12, annual_rate=D("0.04"),
                         early_break_penalty_rate=D("0.01"), default_instruction="renew"),
    ):
        assert terms_from_dict(terms_to_dict(terms)) == terms
    with pytest.raises(InvalidInput) as bad:
        VoluntaryTerms(annual_rate=D("3.5"))
    assert bad.value.field == "annual_rate"
    with pytest.raises(InvalidInput) as bad:
        CompulsoryTerms(loan_product_id="lp-1")
    assert bad.value.field == "share_of_principal"
    assert CompulsoryTerms(loan_product_id="lp", share_of_principal=D("0.1")
                           ).required_before_disbursement(D("5005.00")) == D("500.50")
