"""Loan servicing, refunds of savings deposits and group summaries: which SMS, which
figures, which key makes them once."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from services.notifications.domain.templates import (
    Template,
    format_percent,
    newest_fillable,
    render,
    validate_new_version,
)
from services.notifications.domain.triggers import savings_account_of, trigger_for
from shared.contracts.loans import (
    GroupMemberRepayment,
    GroupRepaymentSummary,
    InstallmentDueSoon,
    InstallmentDueToday,
    InstallmentOverdue,
    LateChargesWaived,
    LoanArrearsCured,
    LoanDisbursed,
    LoanScheduleRebuilt,
    LoanSettledEarly,
    ScheduleLine,
)
from shared.contracts.payments import RefundFailed, RefundIssued
from shared.contracts.savings import WithdrawalInDoubt
from shared.errors import InvalidInput

LOAN = {"loan_id": "ln-1", "client_id": "cl-1"}
DAY = dt.date(2027, 4, 9)
REMINDER = {**LOAN, "business_date": DAY, "installment": 3, "due_date": dt.date(2027, 4, 12),
            "amount_due": Decimal("468.20"), "reference": "L7K3M9Q2XA"}
D = Decimal


def test_a_reminder_names_amount_date_reference_and_is_keyed_by_loan_installment_kind_day(
        ) -> None:
    soon = trigger_for(InstallmentDueSoon(**REMINDER, days_before=3))
    assert soon is not None and soon.template == "installment_due_soon"
    assert soon.variables == {"amount": D("468.20"), "due_date": dt.date(2027, 4, 12),
                              "reference": "L7K3M9Q2XA", "days": 3}
    assert soon.dedup_key == "installment_due_soon:ln-1:3:2027-04-09"
    today = trigger_for(InstallmentDueToday(**REMINDER))
    assert today is not None and today.template == "installment_due_today"
    assert "days" not in today.variables
    late = trigger_for(InstallmentOverdue(**REMINDER, days_late=7))
    assert late is not None and late.template == "installment_overdue"
    assert late.variables["days"] == 7
    keys = {t.dedup_key for t in (soon, today, late)}
    assert len(keys) == 3  # three kinds on one day are three reminders


def test_a_reminder_without_a_short_reference_names_the_loan_id() -> None:
    trig = trigger_for(InstallmentDueToday(**{**REMINDER, "reference": None}))
    assert trig is not None and trig.variables["reference"] == "ln-1"


def test_early_settlement_names_the_payoff_and_the_interest_waived() -> None:
    trig = trigger_for(LoanSettledEarly(
        **LOAN, payment_id="p1", settled_on=DAY, payoff_amount=D("3120.45"),
        principal_paid=D("3000.00"), interest_paid=D("120.45"), interest_waived=D("210.30"),
        excess=D("9.55")))
    assert trig is not None and trig.template == "loan_settled_early"
    assert trig.variables == {"amount": D("3120.45"), "waived": D("210.30")}


def _line(n: int, due: dt.date, principal: str, interest: str) -> ScheduleLine:
    return ScheduleLine(installment=n, due_date=due, principal=D(principal),
                        interest=D(interest), fees=D("0.00"))


def test_a_rebuilt_schedule_names_the_next_installment_that_asks_for_money() -> None:
    # a moratorium period (nothing to pay) first, then two installments of 400 + 20.50
    trig = trigger_for(LoanScheduleRebuilt(
        **LOAN, reason="restructure", schedule_version=2, business_date=DAY,
        installments=[_line(4, dt.date(2027, 5, 12), "0.00", "0.00"),
                      _line(6, dt.date(2027, 7, 12), "400.00", "10.25"),
                      _line(5, dt.date(2027, 6, 12), "400.00", "20.50")],
        outstanding_principal=D("800.00"), interest_before=D("60.00"),
        interest_after=D("30.75")))
    assert trig is not None and trig.template == "schedule_rebuilt"
    assert trig.variables == {"amount": D("420.50"), "due_date": dt.date(2027, 6, 12),
                              "count": 2}


def test_a_rebuilt_schedule_with_nothing_to_pay_sends_nothing() -> None:
    assert trigger_for(LoanScheduleRebuilt(
        **LOAN, reason="restructure", schedule_version=2, business_date=DAY,
        installments=[_line(4, dt.date(2027, 5, 12), "0.00", "0.00")],
        outstanding_principal=D("0.00"), interest_before=D("0"), interest_after=D("0"))) is None


def test_waived_charges_and_a_cure_and_a_cure_by_closing() -> None:
    waived = trigger_for(LateChargesWaived(**LOAN, request_id="r1", amount=D("45.00"),
                                           installments=[2, 3], proposed_by="amina",
                                           approved_by="youssef", reason="illness"))
    assert waived is not None and waived.template == "late_charges_waived"
    assert waived.variables == {"amount": D("45.00")}
    cured = trigger_for(LoanArrearsCured(**LOAN, business_date=DAY))
    assert cured is not None and cured.template == "arrears_cured"
    assert trigger_for(LoanArrearsCured(**LOAN, business_date=DAY, loan_closed=True)) is None


def _disbursed(**extra: object) -> LoanDisbursed:
    return LoanDisbursed(
        **LOAN, partner_id="pa", saga_id="s1", principal=D("5000.00"), msisdn="+212612345678",
        disbursed_on=DAY, installments=12, first_due_date=dt.date(2027, 5, 10),
        first_due_amount=D("468.20"), total_repayable=D("5618.40"),
        fees_at_disbursement=D("50.00"), **extra)  # type: ignore[arg-type]


def test_the_disbursement_carries_the_teg_and_the_cost_when_the_event_has_them() -> None:
    trig = trigger_for(_disbursed(teg=D("0.345678"), total_cost_of_credit=D("668.40")))
    assert trig is not None and trig.template == "loan_disbursed"
    assert (trig.variables["teg"], trig.variables["cost"]) == (D("0.345678"), D("668.40"))
    older = trigger_for(_disbursed())
    assert older is not None and "teg" not in older.variables


def test_an_event_without_the_new_variables_takes_the_newest_version_it_can_fill() -> None:
    v1 = Template("loan_disbursed", 1, "fr", "pret {amount}", {"amount": "money"})
    v2 = Template("loan_disbursed", 2, "fr", "pret {amount} TEG {teg}",
                  {"amount": "money", "teg": "percent"})
    assert newest_fillable([v1, v2], {"amount": D("1")}) is v1
    assert newest_fillable([v1, v2], {"amount": D("1"), "teg": D("0.1")}) is v2
    assert newest_fillable([v2], {}) is None


@pytest.mark.parametrize(("fraction", "fr", "ar"), [
    (D("0.345678"), "34,57\u00a0%", "34,57%"),
    (D("0.12345"), "12,35\u00a0%", "12,35%"),  # half up
    (D("0.05"), "5,00\u00a0%", "5,00%"),
])
def test_a_rate_is_written_in_percent_with_two_decimals(fraction: Decimal, fr: str,
                                                         ar: str) -> None:
    assert format_percent(fraction, "fr") == fr
    assert format_percent(fraction, "ar") == ar


def test_a_percent_variable_is_a_decimal_string_and_goes_gsm7_in_french() -> None:
    t = Template("x", 1, "fr", "TEG {teg}.", {"teg": "percent"})
    r = render(t, {"teg": "0.2345"})
    assert r.text == "TEG 23,45 %." and r.encoded.encoding == "GSM-7"
    with pytest.raises(InvalidInput):
        render(t, {"teg": 0.2345})
    with pytest.raises(InvalidInput):
        render(t, {"teg": "abc"})
    validate_new_version("teg_note", "fr", "TEG {teg}", {"teg": "percent"}, "transliterate")


def test_a_refund_of_a_savings_deposit_is_worded_for_savings() -> None:
    by_reference = RefundIssued(loan_id="SAV-sa-1", payment_id="p1", amount=D("300.00"),
                                msisdn="+212612345678", reason="account_closed")
    assert savings_account_of(by_reference) == "sa-1"
    trig = trigger_for(by_reference, account_client="cl-9")
    assert trig is not None and trig.template == "savings_refund_issued"
    assert (trig.client_id, trig.loan_id, trig.phone) == ("cl-9", None, "+212612345678")
    failed = trigger_for(RefundFailed(loan_id="sav-SA-1", payment_id="p1",
                                      amount=D("300.00"), reason="wallet_closed"))
    assert failed is not None and failed.template == "savings_refund_failed"
    assert failed.variables == {"amount": D("300.00")}


def test_a_refund_naming_its_savings_account_explicitly_is_worded_for_savings() -> None:
    if "savings_account_id" not in RefundIssued.model_fields:
        pytest.skip("payments' contract does not carry savings_account_id yet")
    event = RefundIssued.model_validate({
        "loan_id": "whatever", "payment_id": "p1", "amount": "10.00",
        "msisdn": "+212612345678", "reason": "x", "savings_account_id": "sa-2"})
    assert savings_account_of(event) == "sa-2"


def test_a_loan_refund_keeps_its_wording() -> None:
    issued = trigger_for(RefundIssued(loan_id="ln-1", payment_id="p1", amount=D("9.55"),
                                      msisdn="+212612345678", reason="excess"))
    assert issued is not None and issued.template == "refund_issued"
    assert issued.loan_id == "ln-1"
    failed = trigger_for(RefundFailed(loan_id="ln-1", payment_id="p1", amount=D("9.55"),
                                      reason="wallet_closed"))
    assert failed is not None and (failed.template, failed.loan_id) == ("refund_failed", "ln-1")


def test_a_withdrawal_in_doubt_names_its_amount() -> None:
    trig = trigger_for(WithdrawalInDoubt(account_id="sa-1", client_id="cl-1",
                                         withdrawal_id="w1", amount=D("200.00"),
                                         reason="timeout"))
    assert trig is not None and trig.template == "withdrawal_in_doubt"
    assert trig.variables == {"amount": D("200.00")}


def _member(n: int, paid: str, owing: str, name: str | None = None) -> GroupMemberRepayment:
    return GroupMemberRepayment(client_id=f"cl-{n}", loan_id=f"ln-{n}", name=name,
                                reference=f"LREF{n}", paid=D(paid), still_owing=D(owing))


def test_the_leader_gets_who_paid_the_total_and_who_still_owes() -> None:
    trig = trigger_for(GroupRepaymentSummary(
        group_id="gr-1", group_loan_id="gl-1", leader_client_id="cl-1",
        meeting_date=DAY, total_paid=D("1100.00"),
        members=[_member(1, "500.00", "0.00", "Amina"), _member(2, "600.00", "0.00"),
                 _member(3, "0.00", "420.50", "Khadija"), _member(4, "100.00", "320.50")]))
    assert trig is not None and trig.template == "group_summary"
    assert (trig.client_id, trig.loan_id) == ("cl-1", "gl-1")
    assert trig.variables == {
        "meeting_date": DAY, "paid_count": 3, "members": 4, "total": D("1100.00"),
        "owing_count": 2, "owing_total": D("741.00"), "owing_names": "Khadija, LREF4"}
    assert trig.dedup_key == "group_summary:gr-1:2027-04-09"


def test_a_group_all_up_to_date_gets_the_short_summary() -> None:
    trig = trigger_for(GroupRepaymentSummary(
        group_id="gr-1", leader_client_id="cl-1", meeting_date=DAY, total_paid=D("840.00"),
        members=[_member(1, "420.00", "0.00"), _member(2, "420.00", "0.00")]))
    assert trig is not None and trig.template == "group_summary_all_paid"
    assert trig.variables == {"meeting_date": DAY, "paid_count": 2, "members": 2,
                              "total": D("840.00")}
