"""Scenario 1: a borrower's whole loan, from onboarding to a closed loan and a bigger limit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.e2e.bank import Bank, eventually

pytestmark = pytest.mark.e2e
D = Decimal


async def test_onboard_borrow_repay_in_three_parts_and_grow_the_limit(bank: Bank) -> None:
    fatima = await bank.onboard(language="ar")
    limit_before = (await bank.call("GET", "clients", f"/v1/clients/{fatima.client_id}/credit",
                                    headers=bank.maker))["credit_limit"]
    product = await bank.product(annual_rate="0.00", max_term=3)
    loan_id = await bank.apply(fatima, product, "3000.00", 3)
    await bank.approve(loan_id)

    loan = await bank.wait_status(loan_id, "active")
    assert D(loan["outstanding"]["principal"]) == D("3000.00")
    wallet = await bank.wallet(fatima.phone)
    assert D(wallet["payouts"]) == D("3000.00") and D(wallet["balance"]) == D("3000.00")
    [disbursed] = await bank.wait_sms(fatima.client_id, "loan_disbursed")
    assert disbursed["language"] == "ar" and disbursed["encoding"] == "UCS-2"
    await bank.check_invariants([loan_id])

    for part, (amount, remaining) in enumerate(
            [("1000.00", "2000.00"), ("1000.00", "1000.00"), ("1000.00", "0.00")], start=1):
        await bank.repay_from_wallet(fatima, loan_id, amount)
        # A receipt for each part; the part that closes the loan gets the closing SMS.
        await bank.wait_sms(fatima.client_id,
                            "repayment_received" if part < 3 else "loan_closed",
                            count=part if part < 3 else 1)

        async def repaid_down(remaining: str = remaining) -> bool:
            loan = await bank.loan(loan_id)
            return D(loan["outstanding"]["principal"]) == D(remaining)

        await eventually(repaid_down, what=f"principal down to {remaining}")
        await bank.check_invariants([loan_id])

    closed = await bank.wait_status(loan_id, "closed")
    assert closed["outstanding"]["total"] == "0.00"
    await bank.wait_sms(fatima.client_id, "loan_closed")
    wallet = await bank.wallet(fatima.phone)
    assert D(wallet["balance"]) == D("0.00") and wallet["consistent"] is True

    async def limit_grew() -> dict | None:
        credit = await bank.call("GET", "clients", f"/v1/clients/{fatima.client_id}/credit",
                                 headers=bank.maker)
        return credit if D(credit["credit_limit"]) > D(limit_before) else None

    credit = await eventually(limit_grew, what="credit limit growth")
    assert D(credit["exposure"]) == D("0.00")
    sms = await bank.messages(client_id=fatima.client_id)
    templates = sorted(m["template"] for m in sms)
    assert templates == sorted(["kyc_verified", "loan_disbursed", "repayment_received",
                                "repayment_received", "loan_closed"])
