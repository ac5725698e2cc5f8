"""A collection for a group loan, as payments books it: loans splits it
(``GroupRepaymentSplit``) and applies each share as the member's own repayment under a
derived payment id (``RepaymentApplied`` each, in any order relative to the split); each
share leaves suspense along the member's allocation, what no member owed is refunded
once, and the group payment is ``posted`` when every share is booked. Loans is played by
publishing its events; every loan id is the test's own."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from services.loans.handlers.group_loans import SPLIT_NAMESPACE
from shared.contracts.loans import (
    AllocationLine,
    GroupRepaymentLine,
    GroupRepaymentSplit,
    RepaymentApplied,
)
from tests.integration.payments.conftest import Rig, new_id
from tests.integration.payments.facts import refund_payouts, settled
from tests.integration.payments.test_servicing_repayments import (
    disbursed,
    pay,
    sides,
    status_of,
)

pytestmark = pytest.mark.integration
D = Decimal


def member_payment_id(group_payment_id: str, loan_id: str) -> str:
    """As loans derives it (``handlers/group_loans.py``)."""
    return str(uuid.uuid5(SPLIT_NAMESPACE, f"{group_payment_id}/{loan_id}"))


def member_applied(loan: str, payment_id: str, *, principal: str, interest: str = "0.00",
                   fees: str = "0.00") -> RepaymentApplied:
    parts = {"principal": D(principal), "interest": D(interest), "fees": D(fees)}
    amount = sum(parts.values(), D("0.00"))
    return RepaymentApplied(
        loan_id=loan, client_id=f"client-{loan}", payment_id=payment_id, amount=amount,
        allocation=[AllocationLine(installment=1, component=c, amount=v)  # type: ignore[arg-type]
                    for c, v in parts.items() if v > 0],
        principal_paid=D(principal), interest_paid=D(interest), fees_paid=D(fees),
        penalties_paid=D("0.00"), outstanding_principal=D("0.00"),
        outstanding_total=D("0.00"), next_due_date=None, next_due_amount=None,
        closes_loan=False, reference=loan)


async def test_a_group_payment_is_booked_per_member_and_its_rest_refunded_once(
        rig: Rig) -> None:
    members = [await disbursed(rig, "1000.00") for _ in range(3)]
    loans = [loan for loan, _ in members]
    payer = members[0][1]                 # the leader pays for the group from a wallet
    group_loan, group = new_id("gl"), new_id("grp")
    gpid = await pay(rig, payer, "710.00", group_loan)
    # loans' split and each member's allocation
    answers = [
        member_applied(loans[0], member_payment_id(gpid, loans[0]),
                       principal="180.00", interest="20.00"),
        member_applied(loans[1], member_payment_id(gpid, loans[1]),
                       principal="300.00", fees="10.00"),
        member_applied(loans[2], member_payment_id(gpid, loans[2]), principal="150.00"),
    ]
    split = GroupRepaymentSplit(
        group_id=group, group_loan_id=group_loan, member_ids=[a.client_id for a in answers],
        payment_id=gpid, amount=D("710.00"),
        lines=[GroupRepaymentLine(loan_id=a.loan_id, client_id=a.client_id,
                                  payment_id=a.payment_id, amount=a.amount) for a in answers],
        unallocated=D("50.00"))
    # a member's answer may come before the split (another partition): it waits for it
    await rig.send(answers[0], key=loans[0])
    await settled(rig)  # consumed: it waits for the split
    assert not rig.events.of("RepaymentPosted", payment_id=answers[0].payment_id)
    await rig.send(split, key=group)
    await rig.send(answers[1], key=loans[1])
    # nothing booked for the member not answered yet: the group payment is not posted
    await rig.events.wait("RepaymentPosted", payment_id=answers[1].payment_id)
    await rig.events.wait("RepaymentPosted", payment_id=answers[0].payment_id)
    await settled(rig)
    assert (await rig.api.get(f"/v1/payments/{gpid}", headers=rig.auth())
            ).json()["status"] == "received"
    await rig.send(answers[2], key=loans[2])
    # told again (new envelopes): booked once
    await rig.send(split, key=group)
    for a in answers:
        await rig.send(a, key=a.loan_id)
    await status_of(rig, gpid, "posted")
    for a in answers:
        posted = await rig.events.wait("RepaymentPosted", payment_id=a.payment_id)
        assert posted["loan_id"] == a.loan_id and D(posted["amount"]) == a.amount
    # each member's share left suspense along its own allocation
    assert await sides(rig, f"repayment:{answers[0].payment_id}") == {
        ("suspense", "debit", D("200.00")), (f"portfolio:{loans[0]}", "credit", D("180.00")),
        ("income:interest", "credit", D("20.00"))}
    assert await sides(rig, f"repayment:{answers[1].payment_id}") == {
        ("suspense", "debit", D("310.00")), (f"portfolio:{loans[1]}", "credit", D("300.00")),
        ("income:fees", "credit", D("10.00"))}
    assert await sides(rig, f"repayment:{answers[2].payment_id}") == {
        ("suspense", "debit", D("150.00")), (f"portfolio:{loans[2]}", "credit", D("150.00"))}
    # the portfolio of each member loan is its outstanding principal
    assert [await rig.portfolio(loan) for loan in loans] == [
        D("820.00"), D("700.00"), D("850.00")]
    # what no member owed goes back to the payer, once
    issued = await rig.events.wait("RefundIssued", payment_id=gpid)
    assert issued["amount"] == "50.00" and issued["loan_id"] == group_loan
    assert await sides(rig, f"refund_due:{gpid}") == {
        ("suspense", "debit", D("50.00")), ("client_payable", "credit", D("50.00"))}
    await settled(rig)  # every repeat consumed
    assert await refund_payouts(rig.pool, gpid) == ["completed"]
    assert len(rig.events.of("RefundIssued", payment_id=gpid)) == 1
    for a in answers:
        assert len(rig.events.of("RepaymentPosted", payment_id=a.payment_id)) == 1
        assert len(await rig.lines(f"repayment:{a.payment_id}")) == (
            3 if a.interest_paid or a.fees_paid else 2)
    # the group payment's suspense is empty: collected 710 = 660 booked + 50 refunded
    async with rig.pool.acquire() as conn:
        net = await conn.fetchval(
            "SELECT coalesce(sum(CASE l.side WHEN 'credit' THEN l.amount ELSE -l.amount END),"
            " 0) FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id"
            " WHERE l.account_id = 'suspense' AND e.transfer_id = ANY($1::text[])",
            [f"collection:{gpid}", f"refund_due:{gpid}",
             *(f"repayment:{a.payment_id}" for a in answers)])
        shares = await conn.fetch(
            "SELECT status, booked FROM group_repayment_shares WHERE payment_id = $1",
            uuid.UUID(gpid))
    assert net == D("0.00")
    assert sorted((s["status"], s["booked"]) for s in shares) == [
        ("posted", D("150.00")), ("posted", D("200.00")), ("posted", D("310.00"))]
    tb = await rig.trial_balance()
    assert tb["balanced"] is True and tb["total_debits"] == tb["total_credits"]


async def test_a_group_payment_no_member_owed_is_refunded_whole(rig: Rig) -> None:
    loan, payer = await disbursed(rig, "500.00")
    group_loan, group = new_id("gl"), new_id("grp")
    gpid = await pay(rig, payer, "120.00", group_loan)
    split = GroupRepaymentSplit(group_id=group, group_loan_id=group_loan, member_ids=["c"],
                                payment_id=gpid, amount=D("120.00"), lines=[],
                                unallocated=D("120.00"))
    await rig.send(split, key=group)
    await rig.send(split, key=group)
    issued = await rig.events.wait("RefundIssued", payment_id=gpid)
    assert issued["amount"] == "120.00"
    await status_of(rig, gpid, "refunded")
    await settled(rig)  # the repeat consumed
    assert await refund_payouts(rig.pool, gpid) == ["completed"]
    assert len(rig.events.of("RefundIssued", payment_id=gpid)) == 1
    assert await rig.portfolio(loan) == D("500.00")
