"""RepaymentApplied / LoanWrittenOff move money out of suspense and the portfolio."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import orjson
import pytest

from shared.contracts.loans import AllocationLine, LoanWrittenOff, RepaymentApplied
from tests.integration.payments.conftest import Rig, disburse, new_id, new_msisdn
from tests.integration.payments.facts import settled

pytestmark = pytest.mark.integration


def applied(loan: str, payment_id: str, amount: str, principal: str, interest: str,
            fees: str, outstanding: str, unallocated: str = "0.00") -> RepaymentApplied:
    lines = [AllocationLine(installment=1, component=c, amount=Decimal(v))  # type: ignore[arg-type]
             for c, v in (("fees", fees), ("interest", interest), ("principal", principal))
             if Decimal(v) > 0]
    return RepaymentApplied(
        loan_id=loan, client_id="c1", payment_id=payment_id, amount=Decimal(amount),
        allocation=lines, principal_paid=Decimal(principal), interest_paid=Decimal(interest),
        fees_paid=Decimal(fees), penalties_paid=Decimal("0.00"),
        outstanding_principal=Decimal(outstanding), outstanding_total=Decimal(outstanding),
        next_due_date=dt.date(2026, 5, 1), next_due_amount=Decimal("100.00"), closes_loan=False,
        unallocated=Decimal(unallocated))


async def account_balance(rig: Rig, account: str) -> Decimal:
    resp = await rig.api.get(f"/v1/accounts/{account}/statement", headers=rig.auth(),
                             params={"limit": 1})
    return Decimal(resp.json()["account"]["balance"])


async def test_a_repayment_is_posted_along_its_allocation_once(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    cmd = disburse(loan, msisdn, "1000.00")
    await rig.send(cmd, key=loan)
    await rig.events.wait("DisbursementCompleted", saga_id=cmd.saga_id)
    interest_before = await account_balance(rig, "income:interest")
    fees_before = await account_balance(rig, "income:fees")
    resp = await rig.sim.post("/sim/collections",
                              json={"msisdn": msisdn, "amount": "300.00", "reference": loan})
    payment_id = orjson.loads(resp.json()["callbacks"][0]["response"])["payment_id"]
    await rig.events.wait("RepaymentReceived", payment_id=payment_id)
    message = applied(loan, payment_id, "300.00", "250.00", "40.00", "10.00", "750.00")
    env = await rig.send(message, key=loan)
    await rig.send(message, key=loan, env=env)
    await rig.send(message, key=loan)
    posted = await rig.events.wait("RepaymentPosted", payment_id=payment_id)
    assert posted["amount"] == "300.00"
    await settled(rig)  # the redelivery and the resend consumed
    assert len(rig.events.of("RepaymentPosted", payment_id=payment_id)) == 1
    assert await rig.portfolio(loan) == Decimal("750.00")  # = loans' outstanding principal
    assert await account_balance(rig, "income:interest") - interest_before == Decimal("40.00")
    assert await account_balance(rig, "income:fees") - fees_before == Decimal("10.00")
    assert {(r["account_id"], r["side"], r["amount"])
            for r in await rig.lines(f"repayment:{payment_id}")} == {
        ("suspense", "debit", Decimal("300.00")),
        (f"portfolio:{loan}", "credit", Decimal("250.00")),
        ("income:interest", "credit", Decimal("40.00")),
        ("income:fees", "credit", Decimal("10.00"))}
    view = await rig.api.get(f"/v1/payments/{payment_id}", headers=rig.auth())
    assert view.json()["status"] == "posted"

    # the loan is written off: the remaining principal leaves the portfolio
    write_off = LoanWrittenOff(
        loan_id=loan, client_id="c1", principal_written_off=Decimal("750.00"),
        interest_written_off=Decimal("30.00"), fees_written_off=Decimal("0.00"),
        penalties_written_off=Decimal("0.00"), written_off_by="op", days_in_arrears=181)
    await rig.send(write_off, key=loan)
    await rig.send(write_off, key=loan)
    await settled(rig)  # both copies of the write-off consumed
    assert await rig.portfolio(loan) == Decimal("0.00")
    assert [(r["account_id"], r["side"], r["amount"])
            for r in await rig.lines(f"write_off:{loan}")] == [
        ("expense:write_off", "debit", Decimal("750.00")),
        (f"portfolio:{loan}", "credit", Decimal("750.00"))]
    assert (await rig.trial_balance())["balanced"] is True


async def test_events_about_payments_we_do_not_know_are_ignored(rig: Rig) -> None:
    loan = new_id("loan")
    before = await rig.trial_balance()
    await rig.send(applied(loan, "not-a-uuid", "10.00", "10.00", "0.00", "0.00", "0.00"),
                   key=loan)
    await rig.send(applied(loan, "0b0e2f3c-1d2e-4f50-8a9b-0c1d2e3f4a5b", "10.00", "10.00",
                           "0.00", "0.00", "0.00"), key=loan)
    marker = disburse(new_id("loan"), new_msisdn(), "1.00")  # processed after them
    await rig.send(marker, key=loan)
    await rig.events.wait("DisbursementCompleted", saga_id=marker.saga_id)
    assert not rig.events.of("RepaymentPosted", loan_id=loan)
    async with rig.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM dead_letters") == 0
    after = await rig.trial_balance()
    assert after["balanced"] is True and before["balanced"] is True


async def test_an_excess_within_tolerance_is_posted_and_the_rest_refunded(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    cmd = disburse(loan, msisdn, "500.00")
    await rig.send(cmd, key=loan)
    await rig.events.wait("DisbursementCompleted", saga_id=cmd.saga_id)
    await rig.sim.post("/sim/cash-in", json={"msisdn": msisdn, "amount": "5.00"})
    resp = await rig.sim.post("/sim/collections",
                              json={"msisdn": msisdn, "amount": "505.00", "reference": loan})
    payment_id = orjson.loads(resp.json()["callbacks"][0]["response"])["payment_id"]
    await rig.events.wait("RepaymentReceived", payment_id=payment_id)
    await rig.send(applied(loan, payment_id, "505.00", "500.00", "0.00", "0.00", "0.00",
                           unallocated="5.00"), key=loan)
    posted = await rig.events.wait("RepaymentPosted", payment_id=payment_id)
    assert posted["amount"] == "500.00"
    issued = await rig.events.wait("RefundIssued", payment_id=payment_id)
    assert issued["amount"] == "5.00" and issued["msisdn"] == msisdn
    assert await rig.portfolio(loan) == Decimal("0.00")
    wallet = await rig.wallet(msisdn)
    assert wallet["refunds"] == "5.00" and wallet["consistent"] is True
    view = (await rig.api.get(f"/v1/payments/{payment_id}", headers=rig.auth())).json()
    assert view["status"] == "posted"
    assert [(r["amount"], r["status"]) for r in view["refunds"]] == [("5.00", "completed")]
    assert (await rig.trial_balance())["balanced"] is True


async def test_a_repayment_applied_for_another_amount_posts_nothing(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    cmd = disburse(loan, msisdn, "500.00")
    await rig.send(cmd, key=loan)
    await rig.events.wait("DisbursementCompleted", saga_id=cmd.saga_id)
    resp = await rig.sim.post("/sim/collections",
                              json={"msisdn": msisdn, "amount": "100.00", "reference": loan})
    payment_id = orjson.loads(resp.json()["callbacks"][0]["response"])["payment_id"]
    await rig.events.wait("RepaymentReceived", payment_id=payment_id)
    # loans claims 90.00 were applied to a payment of 100.00: refused, the payment is kept
    await rig.send(applied(loan, payment_id, "90.00", "90.00", "0.00", "0.00", "410.00"),
                   key=loan)
    # then the right answer is posted, once
    await rig.send(applied(loan, payment_id, "100.00", "100.00", "0.00", "0.00", "400.00"),
                   key=loan)
    posted = await rig.events.wait("RepaymentPosted", payment_id=payment_id)
    assert posted["amount"] == "100.00"
    assert len(rig.events.of("RepaymentPosted", payment_id=payment_id)) == 1
    assert await rig.portfolio(loan) == Decimal("400.00")
    assert [r["amount"] for r in await rig.lines(f"repayment:{payment_id}")] == [
        Decimal("100.00"), Decimal("100.00")]
    assert (await rig.trial_balance())["balanced"] is True
