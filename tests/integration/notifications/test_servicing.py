"""SMS of loan servicing (reminders, early settlement, a rebuilt schedule, waived charges,
arrears cured, the TEG at disbursement), refunds of savings deposits, withdrawals
released or in doubt, and a group's meeting summary to its leader: each one SMS in the
client's language with its figures, and no second one for the same event."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from services.notifications.domain.messages import CASABLANCA
from shared.contracts.loans import (
    GroupMemberRepayment,
    GroupRepaymentSummary,
    InstallmentDueSoon,
    InstallmentDueToday,
    InstallmentOverdue,
    LateChargesWaived,
    LoanArrearsCured,
    LoanScheduleRebuilt,
    LoanSettledEarly,
    ScheduleLine,
)
from shared.contracts.payments import RefundFailed, RefundIssued
from shared.contracts.savings import WithdrawalInDoubt, WithdrawalReleased, payment_reference
from shared.envelope import Contract, envelope_for
from tests.integration.notifications.conftest import Rig
from tests.integration.notifications.events import (
    account_id,
    account_opened,
    disbursed,
    loan_id,
)

pytestmark = pytest.mark.integration

NBSP = "\u00a0"
D = Decimal
BUSINESS_DATE = dt.date(2027, 4, 9)


def _reminder_fields(client_id: str, loan: str) -> dict[str, Any]:
    return {"loan_id": loan, "client_id": client_id, "reference": "L7K3M9Q2XA",
            "business_date": BUSINESS_DATE, "installment": 3,
            "due_date": dt.date(2027, 4, 12), "amount_due": D("1468.20")}


async def _one_sms(rig: Rig, client_id: str, phone: str, template: str) -> dict[str, Any]:
    """The one message the client got (``template``, delivered, the phone got its text),
    once every event published so far was consumed."""
    msg = await rig.wait_message({"delivered"}, client_id=client_id)
    assert msg["template"] == template
    await rig.consumed_all()
    await rig.after_a_sending_round()
    assert [m["template"] for m in await rig.messages(client_id=client_id)] == [template]
    assert [m["text"] for m in await rig.on_phone(phone)] == [msg["text"]]
    return msg


async def _twice(rig: Rig, event: Contract, key: str) -> None:
    """The same envelope delivered twice (a redelivery after a rebalance)."""
    env = envelope_for(event, aggregate_id=key)
    for _ in range(2):
        await rig.publish_envelope(env, event.topic, key)


# --- reminders -------------------------------------------------------------------

async def test_a_due_soon_reminder_names_the_reference_once_even_republished(
        rig: Rig) -> None:
    client_id, phone = await rig.register(language="fr")
    loan = loan_id()
    event = InstallmentDueSoon(**_reminder_fields(client_id, loan), days_before=3)
    await _twice(rig, event, loan)
    # close of business rerun: the same reminder under a new event id
    await rig.publish(event, key=loan)
    msg = await _one_sms(rig, client_id, phone, "installment_due_soon")
    assert msg["text"] == (
        "Noria: rappel, votre échéance de 1 468,20 MAD est due dans 3 jour(s), le"
        " 12/04/2027. Payez depuis votre portefeuille avec la référence L7K3M9Q2XA.")
    assert (msg["language"], msg["encoding"], msg["segments"]) == ("fr", "GSM-7", 1)


async def test_a_due_today_reminder_in_arabic(rig: Rig) -> None:
    client_id, phone = await rig.register(language="ar")
    loan = loan_id()
    await _twice(rig, InstallmentDueToday(**_reminder_fields(client_id, loan)), loan)
    msg = await _one_sms(rig, client_id, phone, "installment_due_today")
    assert msg["text"] == (f"نوريا: قسطكم بمبلغ 1{NBSP}468,20 درهم مستحق اليوم 12/04/2027."
                           " المرجو الأداء عبر محفظتكم بالمرجع L7K3M9Q2XA.")
    assert (msg["language"], msg["encoding"]) == ("ar", "UCS-2")


async def test_an_overdue_reminder_names_the_days_late_and_what_is_owed(rig: Rig) -> None:
    client_id, phone = await rig.register(language="fr")
    loan = loan_id()
    await rig.publish(InstallmentOverdue(**_reminder_fields(client_id, loan), days_late=7),
                      key=loan)
    msg = await _one_sms(rig, client_id, phone, "installment_overdue")
    assert msg["text"] == (
        "Noria: votre échéance du 12/04/2027 a 7 jour(s) de retard. Reste du: 1 468,20 MAD."
        " Payez avec la référence L7K3M9Q2XA ou contactez votre agence.")


async def test_three_kinds_or_two_days_are_separate_reminders(rig: Rig) -> None:
    client_id, _ = await rig.register()
    loan = loan_id()
    fields = _reminder_fields(client_id, loan)
    await rig.publish(InstallmentDueToday(**fields), key=loan)
    await rig.publish(InstallmentOverdue(**fields, days_late=1), key=loan)
    await rig.publish(InstallmentOverdue(**{**fields, "business_date": BUSINESS_DATE
                                            + dt.timedelta(days=2)}, days_late=3), key=loan)

    async def three() -> bool:
        return len(await rig.messages(client_id=client_id)) == 3

    await rig.until(three, "three reminders")
    await rig.consumed_all()
    assert sorted(m["template"] for m in await rig.messages(client_id=client_id)) == [
        "installment_due_today", "installment_overdue", "installment_overdue"]


async def test_a_reminder_at_night_waits_for_the_morning(rig: Rig) -> None:
    client_id, phone = await rig.register()
    rig.clock.set_local(22, 15)
    loan = loan_id()
    await rig.publish(InstallmentDueToday(**_reminder_fields(client_id, loan)), key=loan)
    queued = await rig.wait_message({"queued"}, client_id=client_id)
    release = dt.datetime.fromisoformat(queued["not_before"]).astimezone(CASABLANCA)
    assert (release.hour, release.minute) == (8, 0) and queued["urgent"] is False
    await rig.after_a_sending_round()
    assert await rig.on_phone(phone) == []
    assert (await rig.message(queued["id"]))["status"] == "queued"


async def test_a_reminder_without_consent_is_recorded_suppressed(rig: Rig) -> None:
    client_id, phone = await rig.register(consent=False)
    loan = loan_id()
    await rig.publish(InstallmentOverdue(**_reminder_fields(client_id, loan), days_late=1),
                      key=loan)
    msg = await rig.wait_message({"suppressed"}, client_id=client_id)
    assert (msg["template"], msg["reason"]) == ("installment_overdue", "no_consent")
    await rig.after_a_sending_round()
    assert await rig.on_phone(phone) == []


# --- early settlement, rebuilt schedule, waivers, cure ------------------------------

async def test_an_early_settlement_names_the_amount_paid_and_the_interest_waived(
        rig: Rig) -> None:
    client_id, phone = await rig.register(language="fr")
    loan = loan_id()
    await _twice(rig, LoanSettledEarly(
        loan_id=loan, client_id=client_id, payment_id=str(uuid.uuid4()),
        settled_on=BUSINESS_DATE, payoff_amount=D("3120.45"), principal_paid=D("3000.00"),
        interest_paid=D("120.45"), interest_waived=D("210.30")), loan)
    msg = await _one_sms(rig, client_id, phone, "loan_settled_early")
    assert msg["text"] == (
        "Noria: votre pret est soldé par anticipation. Montant réglé: 3 120,45 MAD. Intérets"
        " non courus annulés: 210,30 MAD. Merci de votre confiance.")


async def test_a_rebuilt_schedule_names_the_new_installment_and_next_due_date(
        rig: Rig) -> None:
    client_id, phone = await rig.register(language="ar")
    loan = loan_id()

    def line(n: int, due: dt.date) -> ScheduleLine:
        return ScheduleLine(installment=n, due_date=due, principal=D("1200.00"),
                            interest=D("45.10"), fees=D("0.00"))

    await _twice(rig, LoanScheduleRebuilt(
        loan_id=loan, client_id=client_id, reason="prepayment_reduce_installment",
        schedule_version=2, business_date=BUSINESS_DATE,
        installments=[line(5, dt.date(2027, 5, 12)), line(6, dt.date(2027, 6, 12))],
        outstanding_principal=D("2400.00"), interest_before=D("130.00"),
        interest_after=D("90.20")), loan)
    msg = await _one_sms(rig, client_id, phone, "schedule_rebuilt")
    assert msg["text"] == (f"نوريا: تم تعديل جدول أقساطكم. القسط المقبل: 1{NBSP}245,10 درهم"
                           " بتاريخ 12/05/2027. الأقساط المتبقية: 2.")


async def test_waived_late_charges_name_the_amount(rig: Rig) -> None:
    client_id, phone = await rig.register(language="fr")
    loan = loan_id()
    await _twice(rig, LateChargesWaived(
        loan_id=loan, client_id=client_id, request_id=str(uuid.uuid4()), amount=D("45.00"),
        installments=[2, 3], proposed_by="amina", approved_by="youssef", reason="illness"),
        loan)
    msg = await _one_sms(rig, client_id, phone, "late_charges_waived")
    assert msg["text"] == ("Noria: 45,00 MAD de pénalités de retard ont été annulées sur"
                           " votre pret.")


async def test_a_cured_loan_gets_a_thank_you_a_closed_one_does_not(rig: Rig) -> None:
    client_id, phone = await rig.register(language="fr")
    closed = loan_id()
    await rig.publish(LoanArrearsCured(loan_id=closed, client_id=client_id,
                                       business_date=BUSINESS_DATE, loan_closed=True),
                      key=closed)
    loan = loan_id()
    await _twice(rig, LoanArrearsCured(loan_id=loan, client_id=client_id,
                                       business_date=BUSINESS_DATE), loan)
    msg = await _one_sms(rig, client_id, phone, "arrears_cured")
    assert msg["text"] == "Noria: merci, votre pret est à jour. Vous n'avez plus de retard."
    assert msg["loan_id"] == loan


# --- price transparency -------------------------------------------------------------

async def test_the_disbursement_sms_shows_the_teg_and_the_cost_of_credit(rig: Rig) -> None:
    client_id, phone = await rig.register(language="fr")
    event = disbursed(client_id, phone).model_copy(update={
        "teg": D("0.345678"), "total_cost_of_credit": D("668.40")})
    await _twice(rig, event, event.loan_id)
    msg = await _one_sms(rig, client_id, phone, "loan_disbursed")
    assert msg["text"] == (
        f"Noria: votre pret de 5 000,00 MAD a été versé sur ****{phone[-4:]}. 1re échéance:"
        " 468,20 MAD le 12/04/2027. TEG 34,57 %, cout du crédit 668,40 MAD.")
    assert (msg["encoding"], msg["segments"]) == ("GSM-7", 1)


async def test_the_arabic_disbursement_sms_shows_the_teg(rig: Rig) -> None:
    client_id, phone = await rig.register(language="ar")
    event = disbursed(client_id, phone).model_copy(update={
        "teg": D("0.345678"), "total_cost_of_credit": D("668.40")})
    await rig.publish(event, key=event.loan_id)
    msg = await _one_sms(rig, client_id, phone, "loan_disbursed")
    assert msg["text"] == (
        f"نوريا: قرضكم 5{NBSP}000,00 درهم وصل إلى ****{phone[-4:]}. أول قسط 468,20 درهم في"
        " 12/04/2027. السعر الفعلي الإجمالي 34,57%، كلفته 668,40 درهم")
    assert msg["segments"] <= 2


async def test_a_disbursement_without_the_teg_keeps_the_first_version(rig: Rig) -> None:
    client_id, phone = await rig.register(language="fr")
    event = disbursed(client_id, phone)
    await rig.publish(event, key=event.loan_id)
    msg = await _one_sms(rig, client_id, phone, "loan_disbursed")
    assert "TEG" not in msg["text"] and "portefeuille ****" in msg["text"]


# --- savings: refunds of deposits, withdrawals released or in doubt --------------

async def test_a_refunded_savings_deposit_is_worded_for_savings(rig: Rig) -> None:
    client_id, phone = await rig.register(language="fr")
    account = account_id()
    await rig.publish(account_opened(client_id, account), key=account)
    event = RefundIssued(loan_id=payment_reference(account), payment_id=str(uuid.uuid4()),
                         amount=D("300.00"), msisdn=phone, reason="account_closed")
    await _twice(rig, event, event.loan_id)
    msg = await _one_sms(rig, client_id, phone, "savings_refund_issued")
    assert msg["text"] == (
        "Noria: votre dépot de 300,00 MAD n'a pas pu etre porté sur votre compte d'épargne."
        " Il a été renvoyé sur votre portefeuille mobile.")
    assert msg["loan_id"] is None and "prêt" not in msg["text"]


async def test_a_failed_savings_refund_tells_the_account_holder_in_arabic(rig: Rig) -> None:
    client_id, phone = await rig.register(language="ar")
    account = account_id()
    await rig.publish(account_opened(client_id, account), key=account)
    event = RefundFailed(loan_id=payment_reference(account), payment_id=str(uuid.uuid4()),
                         amount=D("300.00"), reason="wallet_closed")
    await rig.publish(event, key=event.loan_id)
    msg = await _one_sms(rig, client_id, phone, "savings_refund_failed")
    assert msg["text"] == ("نوريا: تعذر إيداع مبلغ 300,00 درهم في حساب التوفير وتعذر إرجاعه"
                           " إليكم. ستتصل بكم وكالتكم.")


async def test_a_released_withdrawal_says_the_money_stays(rig: Rig) -> None:
    client_id, phone = await rig.register(language="fr")
    account = account_id()
    await _twice(rig, WithdrawalReleased(
        account_id=account, client_id=client_id, withdrawal_id=str(uuid.uuid4()),
        amount=D("200.00"), reason="payout_failed", available_balance=D("1295.00")), account)
    msg = await _one_sms(rig, client_id, phone, "withdrawal_released")
    assert msg["text"] == (
        "Noria: votre retrait de 200,00 MAD n'a pas été versé. L'argent reste sur votre"
        " compte d'épargne. Solde disponible: 1 295,00 MAD.")


async def test_a_withdrawal_in_doubt_says_it_is_being_checked(rig: Rig) -> None:
    client_id, phone = await rig.register(language="ar")
    account = account_id()
    await rig.publish(WithdrawalInDoubt(
        account_id=account, client_id=client_id, withdrawal_id=str(uuid.uuid4()),
        amount=D("200.00"), reason="timeout"), key=account)
    msg = await _one_sms(rig, client_id, phone, "withdrawal_in_doubt")
    assert msg["text"] == ("نوريا: سحبكم بمبلغ 200,00 درهم قيد التحقق لدى المشغل. يبقى المبلغ"
                           " محجوزا وسنخبركم بالنتيجة.")


# --- a group's meeting ----------------------------------------------------------------

async def test_the_leader_gets_one_summary_of_the_meeting(rig: Rig) -> None:
    leader, phone = await rig.register(language="fr")
    group = f"gr-{uuid.uuid4().hex[:8]}"
    summary = GroupRepaymentSummary(
        group_id=group, group_loan_id=f"gl-{uuid.uuid4().hex[:8]}", leader_client_id=leader,
        meeting_date=BUSINESS_DATE, total_paid=D("1520.00"), members=[
            GroupMemberRepayment(client_id=leader, loan_id="ln-a", name="Amina",
                                 paid=D("420.00"), still_owing=D("0.00")),
            GroupMemberRepayment(client_id="cl-b", loan_id="ln-b", name="Khadija",
                                 paid=D("1100.00"), still_owing=D("0.00")),
            GroupMemberRepayment(client_id="cl-c", loan_id="ln-c", name="Saida",
                                 paid=D("0.00"), still_owing=D("420.00")),
        ])
    await _twice(rig, summary, group)
    await rig.publish(summary, key=group)  # republished under a new event id
    msg = await _one_sms(rig, leader, phone, "group_summary")
    assert msg["text"] == ("Noria: réunion du 09/04/2027: 2/3 membres ont payé, total"
                           " 1 520,00 MAD. Reste du par 1 membre(s), 420,00 MAD: Saida.")
