"""Loan servicing's posting rules (pure): which loan a repayment answer is about, the
waiver left to book, and the split of capitalised interest."""

from __future__ import annotations

from decimal import Decimal

from services.payments.domain import servicing

D = Decimal


def test_an_answer_naming_the_loan_of_a_short_reference_is_about_that_payment() -> None:
    assert servicing.same_loan("l7k2-m9qx r4", None, "loan-1", "l7k2-m9qx r4")
    assert servicing.same_loan("L7K2M9QXR4", None, "loan-1", None)  # echo missing
    assert servicing.same_loan("L7K2M9QXR5", "loan-1", "loan-1", None)  # matched
    assert servicing.same_loan("loan-1", None, "loan-1", None)
    assert not servicing.same_loan("loan-1", None, "loan-2", None)
    assert not servicing.same_loan("L7K2M9QXR4", None, "loan-2", "L7K2M9QXR9")


def test_the_waiver_is_what_the_settling_payment_left_in_the_receivable() -> None:
    assert servicing.waiver_to_book(D("30.00"), D("20.00"), False) == D("10.00")
    assert servicing.waiver_to_book(D("10.00"), D("20.00"), True) == D("10.00")
    assert servicing.waiver_to_book(D("15.00"), D("20.00"), False) == D("0.00")


def test_capitalised_interest_leaves_the_receivable_first_then_is_reserved() -> None:
    done = servicing.capitalisation("L1", 2, D("40.00"), D("30.00"))
    assert (done.from_receivable, done.reserved) == (D("30.00"), D("10.00"))
    assert done.entry.amount == D("40.00")
    cash = servicing.capitalisation("L1", 3, D("40.00"), D("0.00"))
    assert (cash.from_receivable, cash.reserved) == (D("0.00"), D("40.00"))
