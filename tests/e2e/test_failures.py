"""Scenarios 2 and 3: what goes wrong on the way, and how the bank makes it right."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.e2e.bank import Bank, eventually

pytestmark = pytest.mark.e2e
D = Decimal


async def test_credit_rejected_for_a_client_whose_kyc_is_not_verified(bank: Bank) -> None:
    unverified = await bank.onboard(verify=False)
    product = await bank.product()
    loan_id = await bank.apply(unverified, product, "2000.00", 6)
    await bank.approve(loan_id)
    loan = await bank.wait_status(loan_id, "rejected")
    assert "kyc" in (loan["decision_reason"] or "")
    wallet = await bank.wallet(unverified.phone)
    assert D(wallet["payouts"]) == D("0.00")
    await bank.check_invariants([loan_id])


async def test_failed_payout_is_compensated(bank: Bank) -> None:
    omar = await bank.onboard()
    await bank.sim_config(msisdn=omar.phone, failure_rate=1.0)
    product = await bank.product()
    loan_id = await bank.apply(omar, product, "4000.00", 6)
    await bank.approve(loan_id)
    await bank.wait_status(loan_id, "disbursement_failed")
    await bank.wait_sms(omar.client_id, "disbursement_failed")

    async def credit_released() -> dict | None:
        credit = await bank.call("GET", "clients", f"/v1/clients/{omar.client_id}/credit",
                                 headers=bank.maker)
        return credit if D(credit["exposure"]) == 0 else None

    await eventually(credit_released, what="credit released")
    wallet = await bank.wallet(omar.phone)
    assert D(wallet["balance"]) == D("0.00")
    await bank.check_invariants([loan_id])  # the ledger entry was reversed


async def test_lost_payout_callback_is_resolved_by_polling(bank: Bank) -> None:
    salma = await bank.onboard()
    await bank.sim_config(msisdn=salma.phone, lose_callbacks=True)
    product = await bank.product()
    loan_id = await bank.apply(salma, product, "1500.00", 3)
    await bank.approve(loan_id)
    await bank.wait_status(loan_id, "active")
    wallet = await bank.wallet(salma.phone)
    assert D(wallet["payouts"]) == D("1500.00")
    await bank.check_invariants([loan_id])


async def test_payout_never_answered_ends_visibly_at_its_deadline(bank: Bank) -> None:
    hassan = await bank.onboard()
    await bank.sim_config(msisdn=hassan.phone, timeout=True)
    product = await bank.product()
    loan_id = await bank.apply(hassan, product, "2500.00", 3)
    await bank.approve(loan_id)
    loan = await bank.wait_status(loan_id, "disbursement_failed", timeout_s=120)
    assert loan["status"] == "disbursement_failed"

    async def saga_ended() -> dict | None:
        # The loan turns disbursement_failed first; the saga ends once the credit is
        # released (compensating -> compensated).
        sagas = await bank.call("GET", "loans", "/v1/sagas", headers=bank.maker,
                                params={"loan_id": loan_id})
        [saga] = sagas["items"]
        return saga if saga["state"] in ("compensated", "failed") else None

    await eventually(saga_ended, what="the saga ended visibly")
    wallet = await bank.wallet(hassan.phone)
    assert D(wallet["payouts"]) == D("0.00")
    await bank.check_invariants([loan_id])


async def test_repayment_to_a_closed_loan_and_an_overpayment_are_refunded(bank: Bank) -> None:
    karim = await bank.onboard()
    product = await bank.product(annual_rate="0.00", max_term=2)
    loan_id = await bank.apply(karim, product, "1000.00", 2)
    await bank.approve(loan_id)
    await bank.wait_status(loan_id, "active")

    # Paying more than is owed: the whole payment comes back to the wallet.
    await bank.call("POST", "mobile-money-sim", "/sim/cash-in", headers={}, expect=201,
                    json={"msisdn": karim.phone, "amount": "200.00"})
    await bank.repay_from_wallet(karim, loan_id, "1200.00")

    async def refunded(amount: str) -> dict | None:
        wallet = await bank.wallet(karim.phone)
        return wallet if D(wallet["refunds"]) == D(amount) else None

    await eventually(lambda: refunded("1200.00"), what="overpayment refunded")
    assert (await bank.loan(loan_id))["status"] == "active"

    await bank.repay_from_wallet(karim, loan_id, "1000.00")
    await bank.wait_status(loan_id, "closed")
    # Paying a closed loan: refunded as well.
    await bank.call("POST", "mobile-money-sim", "/sim/cash-in", headers={}, expect=201,
                    json={"msisdn": karim.phone, "amount": "300.00"})
    await bank.repay_from_wallet(karim, loan_id, "300.00")
    wallet = await eventually(lambda: refunded("1500.00"), what="payment to closed loan refunded")
    # 1000 paid out + 200 + 300 cashed in - 1000 repaid; both refunds came back.
    assert D(wallet["balance"]) == D("500.00")
    assert wallet["consistent"] is True
    await bank.wait_sms(karim.client_id, "refund_issued", count=2)
    await bank.check_invariants([loan_id])
