"""Scenarios 2 and 3: what goes wrong on the way, and how the bank makes it right."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

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


async def in_doubt_payout(bank: Bank, loan_id: str) -> dict[str, Any] | None:
    """The loan's disbursement in ``GET /v1/payouts/in-doubt`` (every page), if it is there."""
    cursor = None
    while True:
        params = {"kind": "disbursement", "limit": 500, **({"cursor": cursor} if cursor else {})}
        page = await bank.call("GET", "payments", "/v1/payouts/in-doubt", headers=bank.maker,
                               params=params)
        found = [p for p in page["items"] if p["loan_id"] == loan_id]
        if found:
            [payout] = found
            return dict(payout)
        cursor = page["next_cursor"]
        if cursor is None:
            return None


async def saga_of(bank: Bank, loan_id: str) -> dict[str, Any]:
    sagas = await bank.call("GET", "loans", "/v1/sagas", headers=bank.maker,
                            params={"loan_id": loan_id})
    [saga] = sagas["items"]
    return dict(saga)


async def test_payout_never_answered_ends_visibly_at_its_deadline(bank: Bank) -> None:
    """Doubt is a state (DESIGN §3, issue 13): a payout the provider never answers may still
    have moved money, so at its deadline it is in doubt -- nothing reversed, the credit kept,
    the saga visibly open -- until someone with evidence settles it. Here the provider
    cannot answer at all (``timeout``: never answered, never executed, then "not found"),
    so two operators settle it as failed."""
    hassan = await bank.onboard()
    await bank.sim_config(msisdn=hassan.phone, timeout=True)
    product = await bank.product()
    loan_id = await bank.apply(hassan, product, "2500.00", 3)
    await bank.approve(loan_id)

    # The e2e payout deadline is short (harness: loans' payout timeout 20 s + grace 10 s,
    # payments' expiry grace 2 s): the saga is in doubt within about half a minute.
    statuses: set[str] = set()

    async def saga_in_doubt() -> dict[str, Any] | None:
        statuses.add((await bank.loan(loan_id))["status"])
        saga = await saga_of(bank, loan_id)
        return saga if saga["state"] == "in_doubt" else None

    saga = await eventually(saga_in_doubt, timeout_s=120, what="the saga in doubt")
    assert saga.get("in_doubt_since"), saga
    payout = await eventually(lambda: in_doubt_payout(bank, loan_id), timeout_s=60,
                              what="the payout listed in doubt")
    assert D(payout["amount"]) == D("2500.00") and payout["proposal"] is None, payout
    # Nothing compensated while in doubt: the loan is still disbursing, the credit still
    # reserved, and it never was disbursement_failed on the way.
    loan = await bank.loan(loan_id)
    statuses.add(loan["status"])
    assert loan["status"] == "disbursing", loan
    assert "disbursement_failed" not in statuses, statuses
    assert D((await bank.credit(hassan.client_id))["exposure"]) == D("2500.00")
    assert (await saga_of(bank, loan_id))["state"] == "in_doubt"
    assert D((await bank.wallet(hassan.phone))["payouts"]) == D("0.00")

    # The provider cannot say: operator A proposes "failed" with the evidence in hand ...
    payout_id = payout["payout_id"]
    proposed = await bank.call(
        "POST", "payments", f"/v1/payouts/{payout_id}/settlement", expect=202,
        headers={**bank.maker, "Idempotency-Key": str(uuid.uuid4())},
        json={"outcome": "failed",
              "evidence": "provider ops: no transaction for this correlation id (ticket 77)"})
    assert proposed["status"] == "proposed", proposed
    # ... cannot approve it alone (maker-checker) ...
    alone = await bank.request(
        "POST", "payments", f"/v1/payouts/{payout_id}/settlement/approve",
        headers={**bank.maker, "Idempotency-Key": str(uuid.uuid4())}, json={})
    assert alone.status_code == 403, alone.text
    assert alone.headers["content-type"].startswith("application/problem+json"), alone.headers
    # ... and operator B approves: applied as the provider's word would be.
    approved = await bank.call(
        "POST", "payments", f"/v1/payouts/{payout_id}/settlement/approve",
        headers={**bank.checker, "Idempotency-Key": str(uuid.uuid4())},
        json={"note": "checked against the provider's statement"})
    assert approved["status"] == "approved" and approved["payout"]["status"] == "failed", approved

    await bank.wait_status(loan_id, "disbursement_failed")

    async def saga_compensated() -> dict[str, Any] | None:
        saga = await saga_of(bank, loan_id)
        return saga if saga["state"] == "compensated" else None

    await eventually(saga_compensated, what="the saga compensated")

    async def credit_released() -> dict[str, Any] | None:
        credit = await bank.credit(hassan.client_id)
        return credit if D(credit["exposure"]) == 0 else None

    await eventually(credit_released, what="credit released")
    assert D((await bank.wallet(hassan.phone))["payouts"]) == D("0.00")
    await bank.wait_sms(hassan.client_id, "disbursement_failed")
    sent = [m for m in await bank.messages(client_id=hassan.client_id)
            if m["template"] == "disbursement_failed"]
    assert len(sent) == 1, sent
    await bank.check_invariants([loan_id])  # the payout's entry was reversed


async def test_repayment_to_a_closed_loan_and_an_overpayment_are_refunded(bank: Bank) -> None:
    karim = await bank.onboard()
    product = await bank.product(annual_rate="0.00", max_term=2)
    loan_id = await bank.apply(karim, product, "1000.00", 2)
    await bank.approve(loan_id)
    loan = await bank.wait_status(loan_id, "active")
    # 1000 at 0 %, no fees: 1000.00 owed in all, and the payoff today is the same.
    assert D(loan["outstanding"]["total"]) == D("1000.00"), loan

    # Paying more than is owed (issue 14): the loan closes with the 1000.00 it owed and
    # only the excess, 1200.00 - 1000.00 = 200.00, comes back to the wallet.
    await bank.cash_in(karim.phone, "200.00")
    await bank.repay_from_wallet(karim, loan_id, "1200.00")

    async def refunded(amount: str) -> dict[str, Any] | None:
        wallet = await bank.wallet(karim.phone)
        assert D(wallet["refunds"]) <= D(amount), wallet  # never more than the excess
        return wallet if D(wallet["refunds"]) == D(amount) else None

    closed = await bank.wait_status(loan_id, "closed")
    assert closed["outstanding"]["total"] == "0.00", closed
    wallet = await eventually(lambda: refunded("200.00"), what="the excess refunded")
    # 1000 paid out + 200 cashed in - 1200 repaid + 200 refunded
    assert D(wallet["balance"]) == D("200.00"), wallet

    # Paying a closed loan: the whole payment is refunded.
    await bank.cash_in(karim.phone, "300.00")
    await bank.repay_from_wallet(karim, loan_id, "300.00")
    wallet = await eventually(lambda: refunded("500.00"), what="payment to closed loan refunded")
    # 1000 paid out + 200 + 300 cashed in - 1200 - 300 repaid + 200 + 300 refunded = 500;
    # refunds 200 (the excess) + 300 (the whole payment to the closed loan) = 500.
    assert D(wallet["balance"]) == D("500.00"), wallet
    assert D(wallet["payouts"]) == D("1000.00") and D(wallet["collections"]) == D("1500.00")
    assert wallet["consistent"] is True
    # Two refunds, two refund SMS (200.00 then 300.00); the loan closed once; the closing
    # payment speaks through loan_closed, not a repayment receipt.
    refunds = await bank.wait_sms(karim.client_id, "refund_issued", count=2)
    await bank.wait_sms(karim.client_id, "loan_closed")
    sent = await bank.messages(client_id=karim.client_id)
    assert len(refunds) == 2, refunds
    assert [m["template"] for m in sent].count("loan_closed") == 1, sent
    assert [m["template"] for m in sent].count("repayment_received") == 0, sent
    await bank.check_invariants([loan_id])
