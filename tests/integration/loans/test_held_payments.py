"""A repayment held for review (a mistyped short reference), once payments' operators
match it to a loan and tell loans again under the same payment id, is applied once; a
payment loans already decided any other way stays a duplicate."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

from shared.contracts.payments import RepaymentReceived
from shared.envelope import envelope_for
from tests.infra import Infra
from tests.integration.loans.facts import consumed_everything, output_reader, settled
from tests.integration.loans.harness import Loans, running_loans


def mistyped(reference: str) -> str:
    return reference[:3] + ("0" if reference[3] != "0" else "1") + reference[4:]


def told(loan_ref: str, payment_id: str, amount: str) -> RepaymentReceived:
    return RepaymentReceived(
        loan_id=loan_ref, payment_id=payment_id, amount=Decimal(amount),
        payer_msisdn="+212612345678", provider="simulator", external_ref=payment_id,
        received_at=datetime.combine(date(2026, 2, 1), time(9, 0), UTC))


async def paid_on_first(svc: Loans, loan_id: str) -> str:
    schedule = (await svc.client.get(f"/v1/loans/{loan_id}/schedule",
                                     headers=svc.operator)).json()
    paid: str = schedule["installments"][0]["paid"]
    return paid


async def test_a_held_payment_matched_to_a_loan_is_applied_once(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()
        loan = await svc.active_loan(product, disbursed_on=date(2026, 1, 5))
        lid, ref = loan["id"], loan["reference"]
        pid = "pay_held_1"
        await svc.bus.send(told(mistyped(ref), pid, "100.00"), key=mistyped(ref))
        held = (await svc.bus.wait_for("RepaymentRejected", payment_id=pid))[0].payload
        assert (held["reason"], held["held_for_review"]) == ("reference_check_failed", True)
        assert await paid_on_first(svc, lid) == "0.00"

        # two operators matched it to the loan (by its short reference): told again
        matched = envelope_for(told(ref, pid, "100.00"), aggregate_id=ref)
        await svc.bus.send(told(ref, pid, "100.00"), key=ref, env=matched)
        applied = (await svc.bus.wait_for("RepaymentApplied", payment_id=pid))[0].payload
        assert (applied["loan_id"], applied["amount"]) == (lid, "100.00")
        # the same record redelivered, and the match published once more under a new
        # event id: nothing more
        await svc.bus.send(told(ref, pid, "100.00"), key=ref, env=matched)
        await svc.bus.send(told(lid, pid, "100.00"), key=lid)
        await consumed_everything(svc)
        async with output_reader(svc) as sent:
            await settled(svc, sent)
            assert len(sent.matching("RepaymentApplied", payment_id=pid)) == 1
            assert len(sent.matching("RepaymentRejected", payment_id=pid)) == 1
        assert await paid_on_first(svc, lid) == "100.00"
        assert await svc.count("repayments", f"payment_id = '{pid}' AND outcome = 'applied'"
                               f" AND loan_id = '{lid}'") == 1
        async with svc.pool.acquire() as conn:
            trail = await conn.fetchrow(
                "SELECT reference, amount, matched_to FROM held_repayments_matched"
                " WHERE payment_id = $1", pid)
        assert trail is not None
        assert (trail["reference"], trail["amount"], trail["matched_to"]) == (
            mistyped(ref), Decimal("100.00"), ref)

        # the original mistyped record told again: still held, no second answer
        await svc.bus.send(told(mistyped(ref), pid, "100.00"), key=mistyped(ref))
        await consumed_everything(svc)
        async with output_reader(svc) as sent:
            await settled(svc, sent)
            assert len(sent.matching("RepaymentRejected", payment_id=pid)) == 1
            assert len(sent.matching("RepaymentApplied", payment_id=pid)) == 1


async def test_a_payment_decided_otherwise_stays_a_duplicate(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()
        loan = await svc.active_loan(product, disbursed_on=date(2026, 1, 5))
        lid = loan["id"]
        # refused (no such loan), then told again for a real loan: a duplicate
        nobody = "loan_00000000-0000-4000-8000-000000000000"
        refused = await svc.pay(nobody, "50.00", payment_id="pay_refused_1")
        answer = (await svc.bus.wait_for("RepaymentRejected", payment_id=refused))[0]
        assert answer.payload["reason"] == "unknown_loan"
        await svc.pay(lid, "50.00", payment_id=refused)
        # applied, then told again: a duplicate
        applied = await svc.pay(lid, "30.00", payment_id="pay_applied_1")
        await svc.bus.wait_for("RepaymentApplied", payment_id=applied)
        await svc.pay(lid, "30.00", payment_id=applied)
        await consumed_everything(svc)
        async with output_reader(svc) as sent:
            await settled(svc, sent)
            assert sent.matching("RepaymentApplied", payment_id=refused) == []
            assert len(sent.matching("RepaymentRejected", payment_id=refused)) == 1
            assert len(sent.matching("RepaymentApplied", payment_id=applied)) == 1
        assert await paid_on_first(svc, lid) == "30.00"
        assert await svc.count("held_repayments_matched") == 0
