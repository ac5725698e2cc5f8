"""Loans' servicing answers about a repayment, as payments books them: a payment paid to a
loan's short reference is matched by payment id and posted to the loan's own portfolio,
with only the excess beyond what closes the loan refunded; a payment with a mistyped
reference is held in suspense until two operators match it to a loan (loans is told
again, same payment id) or refund it; a recovery on a written-off loan is recovery income
with the rest refunded. Loans is played by publishing its events; every loan id is the
test's own."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import orjson
import pytest

from shared.contracts.loans import (
    AllocationLine,
    LoanWrittenOff,
    RepaymentApplied,
    RepaymentRejected,
)
from tests.integration.payments.conftest import Rig, disburse, new_id, new_msisdn
from tests.integration.payments.facts import refund_payouts, settled

pytestmark = pytest.mark.integration
D = Decimal


def short_ref() -> str:
    return "L" + uuid.uuid4().hex[:9].upper()


def applied(loan: str, payment_id: str, amount: str, principal: str, *,
            interest: str = "0.00", unallocated: str = "0.00", reference: str | None = None,
            recovery: bool = False, closes: bool = False) -> RepaymentApplied:
    lines = [AllocationLine(installment=1, component=c, amount=D(v))
             for c, v in (("interest", interest), ("principal", principal)) if D(v) > 0]
    return RepaymentApplied(
        loan_id=loan, client_id="c1", payment_id=payment_id, amount=D(amount),
        allocation=lines, principal_paid=D(principal), interest_paid=D(interest),
        fees_paid=D("0.00"), penalties_paid=D("0.00"), outstanding_principal=D("0.00"),
        outstanding_total=D("0.00"), next_due_date=None, next_due_amount=None,
        closes_loan=closes, unallocated=D(unallocated), excess=D(unallocated),
        reference=reference, recovery=recovery)


async def disbursed(rig: Rig, amount: str = "1000.00") -> tuple[str, str]:
    msisdn, loan = new_msisdn(), new_id("loan")
    cmd = disburse(loan, msisdn, amount)
    await rig.send(cmd, key=loan)
    await rig.events.wait("DisbursementCompleted", saga_id=cmd.saga_id)
    return loan, msisdn


async def pay(rig: Rig, msisdn: str, amount: str, reference: str) -> str:
    await rig.sim.post("/sim/cash-in", json={"msisdn": msisdn, "amount": amount})
    resp = await rig.sim.post("/sim/collections", json={
        "msisdn": msisdn, "amount": amount, "reference": reference})
    assert resp.status_code == 201, resp.text
    payment_id = str(orjson.loads(resp.json()["callbacks"][0]["response"])["payment_id"])
    await rig.events.wait("RepaymentReceived", payment_id=payment_id)
    return payment_id


async def status_of(rig: Rig, payment_id: str, wanted: str, timeout_s: float = 20) -> None:
    status = None
    for _ in range(int(timeout_s * 10)):
        status = (await rig.api.get(f"/v1/payments/{payment_id}",
                                    headers=rig.auth())).json()["status"]
        if status == wanted:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"payment {payment_id} is {status}, not {wanted}")


async def sides(rig: Rig, transfer_id: str) -> set[tuple[str, str, Decimal]]:
    return {(r["account_id"], r["side"], r["amount"]) for r in await rig.lines(transfer_id)
            if r["transfer_id"] == transfer_id}


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def test_a_short_reference_is_posted_to_the_loan_and_only_the_excess_refunded(
        rig: Rig) -> None:
    loan, msisdn = await disbursed(rig)
    ref = short_ref()
    payment_id = await pay(rig, msisdn, "1100.00", ref)
    # loans resolves the short reference: its answer names the loan, not the reference
    message = applied(loan, payment_id, "1100.00", "1000.00", unallocated="100.00",
                      reference=ref, closes=True)
    await rig.send(message, key=loan)
    await rig.send(message, key=loan)  # told twice: booked once
    posted = await rig.events.wait("RepaymentPosted", payment_id=payment_id)
    assert posted["amount"] == "1000.00" and posted["loan_id"] == loan
    assert await rig.portfolio(loan) == D("0.00")   # the loan's own sub-ledger
    assert await rig.portfolio(ref) == D("0.00")
    assert await sides(rig, f"repayment:{payment_id}") == {
        ("suspense", "debit", D("1000.00")), (f"portfolio:{loan}", "credit", D("1000.00"))}
    # only the excess goes back to the wallet, once
    issued = await rig.events.wait("RefundIssued", payment_id=payment_id)
    assert issued["amount"] == "100.00" and issued["loan_id"] == loan
    await settled(rig)  # the second copy consumed
    assert await refund_payouts(rig.pool, payment_id) == ["completed"]
    assert len(rig.events.of("RefundIssued", payment_id=payment_id)) == 1
    assert await sides(rig, f"refund_due:{payment_id}") == {
        ("suspense", "debit", D("100.00")), ("client_payable", "credit", D("100.00"))}
    assert D((await rig.wallet(msisdn))["balance"]) == D("1100.00")  # 1000 lent + 100 back
    async with rig.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT loan_id, resolved_loan_id, status FROM payments"
                                  " WHERE id = $1", uuid.UUID(payment_id))
    assert row is not None
    assert dict(row) == {"loan_id": ref, "resolved_loan_id": loan, "status": "posted"}


async def held(rig: Rig, amount: str) -> tuple[str, str, str, str]:
    loan, msisdn = await disbursed(rig)
    typo = short_ref()
    payment_id = await pay(rig, msisdn, amount, typo)
    await rig.send(RepaymentRejected(
        loan_id=typo, client_id="", payment_id=payment_id, amount=D(amount),
        payer_msisdn=msisdn, reason="reference_check_failed", refundable_amount=D("0.00"),
        held_for_review=True, detail="check character"), key=typo)
    await status_of(rig, payment_id, "held")
    return loan, msisdn, typo, payment_id


async def test_a_held_payment_is_matched_to_its_loan_by_two_operators(rig: Rig) -> None:
    loan, _, typo, payment_id = await held(rig, "300.00")
    # kept in suspense: nothing owed back, nothing paid out
    assert await rig.lines(f"refund_due:{payment_id}") == []
    day = await rig.api.get("/v1/payments", headers=rig.auth(),
                            params={"kind": "collection", "status": "held", "limit": 500})
    assert day.status_code == 200, day.text
    assert payment_id in {i["id"] for i in day.json()["items"]}
    queue = (await rig.api.get("/v1/held-payments", headers=rig.auth(),
                               params={"limit": 500})).json()["items"]
    mine = next(i for i in queue if i["payment_id"] == payment_id)
    assert mine["reference"] == typo and mine["amount"] == "300.00"
    assert mine["proposal"] is None

    maker, checker = rig.auth(sub="op-maker"), rig.auth(sub="op-checker")
    body = {"loan_id": loan, "note": "payer's call, ticket 17"}
    k = key()
    first = await rig.api.post(f"/v1/payments/{payment_id}/match", json=body,
                               headers={**maker, **k})
    assert first.status_code == 202, first.text
    again = await rig.api.post(f"/v1/payments/{payment_id}/match", json=body,
                               headers={**maker, **k})
    assert again.json() == first.json()
    other = await rig.api.post(f"/v1/payments/{payment_id}/refund", headers={**maker, **key()})
    assert other.status_code == 409  # one decision at a time
    own = await rig.api.post(f"/v1/payments/{payment_id}/match/approve",
                             headers={**maker, **key()})
    assert own.status_code == 403, own.text
    assert len(rig.events.of("RepaymentReceived", payment_id=payment_id)) == 1
    ok = await rig.api.post(f"/v1/payments/{payment_id}/match/approve",
                            headers={**checker, **key()})
    assert ok.status_code == 202, ok.text
    assert ok.json()["status"] == "received" and ok.json()["loan_id"] == loan
    # loans is told again, for the loan, under the same payment id
    told = await rig.events.wait("RepaymentReceived", payment_id=payment_id, loan_id=loan)
    assert told["amount"] == "300.00"
    await rig.send(applied(loan, payment_id, "300.00", "300.00"), key=loan)
    await rig.events.wait("RepaymentPosted", payment_id=payment_id)
    assert await rig.portfolio(loan) == D("700.00")
    await status_of(rig, payment_id, "posted")


async def test_a_held_payment_is_refunded_by_two_operators(rig: Rig) -> None:
    _, msisdn, _, payment_id = await held(rig, "250.00")
    before = D((await rig.wallet(msisdn))["balance"])
    maker, checker = rig.auth(sub="op-maker"), rig.auth(sub="op-checker")
    missing = await rig.api.post(f"/v1/payments/{payment_id}/refund/approve",
                                 headers={**checker, **key()})
    assert missing.status_code == 409  # nothing proposed yet
    resp = await rig.api.post(f"/v1/payments/{payment_id}/refund", json={"note": "unknown"},
                              headers={**maker, **key()})
    assert resp.status_code == 202, resp.text
    ok = await rig.api.post(f"/v1/payments/{payment_id}/refund/approve",
                            headers={**checker, **key()})
    assert ok.status_code == 202, ok.text
    issued = await rig.events.wait("RefundIssued", payment_id=payment_id)
    assert issued["amount"] == "250.00"
    assert D((await rig.wallet(msisdn))["balance"]) == before + D("250.00")
    late = await rig.api.post(f"/v1/payments/{payment_id}/match", json={"loan_id": "x"},
                              headers={**maker, **key()})
    assert late.status_code == 409  # no longer held
    audit: Any = None
    async with rig.pool.acquire() as conn:
        audit = await conn.fetch("SELECT action, actor FROM payout_audit WHERE payment_id = $1"
                                 " ORDER BY id", uuid.UUID(payment_id))
    assert [(a["action"], a["actor"]) for a in audit] == [
        ("held_refund_proposed", "op-maker"), ("held_refund_approved", "op-checker")]


async def test_a_recovery_is_income_and_what_it_does_not_take_is_refunded(rig: Rig) -> None:
    loan, msisdn = await disbursed(rig)
    await rig.send(LoanWrittenOff(
        loan_id=loan, client_id="c1", principal_written_off=D("1000.00"),
        interest_written_off=D("0.00"), fees_written_off=D("0.00"),
        penalties_written_off=D("0.00"), written_off_by="op-checker", days_in_arrears=200,
        proposed_by="op-maker", reason="uncollectible"), key=loan)
    for _ in range(100):
        if await rig.portfolio(loan) == D("0.00"):
            break
        await asyncio.sleep(0.1)
    assert await rig.portfolio(loan) == D("0.00")
    payment_id = await pay(rig, msisdn, "300.00", loan)
    await rig.send(applied(loan, payment_id, "300.00", "200.00", unallocated="100.00",
                           recovery=True), key=loan)
    await rig.events.wait("RepaymentPosted", payment_id=payment_id)
    assert await sides(rig, f"repayment:{payment_id}") == {
        ("suspense", "debit", D("200.00")), ("income:recoveries", "credit", D("200.00"))}
    issued = await rig.events.wait("RefundIssued", payment_id=payment_id)
    assert issued["amount"] == "100.00"
    assert await rig.portfolio(loan) == D("0.00")  # the loan stays written off
    tb = await rig.trial_balance()
    assert tb["total_debits"] == tb["total_credits"]
