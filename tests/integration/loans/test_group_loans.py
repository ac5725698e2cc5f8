"""Group loans on the real broker and database: the test plays clients and payments."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pytest

from shared.contracts.clients import CreditReleased, GroupFormed
from shared.contracts.payments import (
    DisbursementFailed,
    PayeeConfirmed,
    PayeeLookupInDoubt,
    PayeeRefused,
    PayoutRecoveryRecorded,
    RepaymentReceived,
)
from tests.infra import Infra
from tests.integration.loans.facts import output_reader, settled
from tests.integration.loans.harness import Loans, running_loans
from tests.kafka_facts import until

pytestmark = pytest.mark.integration
PRINCIPALS = ["1000.00", "1200.00", "1400.00", "1600.00", "1800.00"]


async def _group(svc: Loans) -> tuple[str, list[str]]:
    members = [await svc.register_client() for _ in PRINCIPALS]
    group_id = str(uuid.uuid4())
    await svc.bus.send(GroupFormed(group_id=group_id, partner_id=svc.partner_id,
                                   name="Tifawin", leader_id=members[0], member_ids=members),
                       key=group_id)
    await svc.wait_until(f"SELECT 1 FROM group_projection WHERE group_id = '{group_id}'")
    return group_id, members


async def _approved(svc: Loans, *, cover_arrears: bool = False
                    ) -> tuple[dict[str, Any], str, list[str]]:
    product = await svc.create_product()
    group_id, members = await _group(svc)
    resp = await svc.client.post("/v1/group-loans", headers=svc.partner, json={
        "group_id": group_id, "product_id": product, "term": 4,
        "cover_arrears": cover_arrears,
        "members": [{"client_id": c, "principal": p} for c, p in zip(members, PRINCIPALS,
                                                                     strict=True)]})
    assert resp.status_code == 201, resp.text
    gl = resp.json()
    assert [m["status"] for m in gl["members"]] == ["submitted"] * 5
    # maker-checker: the partner's agent who applied cannot approve (and has no scope);
    # a second operator approves every member's loan together
    resp = await svc.client.post(f"/v1/group-loans/{gl['id']}/approve", headers=svc.checker)
    assert resp.status_code == 200, resp.text
    return resp.json(), group_id, members


async def _reserve_only(svc: Loans, gl: dict[str, Any]) -> dict[str, str]:
    reserves = await svc.bus.wait_for("ReserveCredit", count=5)
    legs = {r.payload["loan_id"]: r.payload["saga_id"] for r in reserves}
    assert len(set(legs.values())) == 5
    for m in gl["members"]:
        await svc.reserve(legs[m["loan_id"]], m["loan_id"], m["client_id"])
    return legs


async def _payee(svc: Loans, legs: dict[str, str], m: dict[str, Any], answer: str = "yes",
                 reason: str = "") -> None:
    common = {"loan_id": m["loan_id"], "saga_id": legs[m["loan_id"]],
              "client_id": m["client_id"], "msisdn": "+212612345678", "provider": "sim"}
    if answer == "yes":
        msg: Any = PayeeConfirmed(**common, account_status="available")
    elif answer == "no":
        msg = PayeeRefused(**common, reason=reason)
    else:
        msg = PayeeLookupInDoubt(**common, reason=reason, since=datetime.now(UTC))
    await svc.bus.send(msg, key=m["loan_id"])


async def _reserve_all(svc: Loans, gl: dict[str, Any]) -> dict[str, str]:
    """Every credit reserved and every payee confirmed (playing clients and payments)."""
    legs = await _reserve_only(svc, gl)
    asked = await svc.bus.wait_for("ValidatePayee", count=5)
    assert {a.payload["saga_id"] for a in asked} == set(legs.values())
    for m in gl["members"]:
        await _payee(svc, legs, m)
    return legs


async def _saga_state(svc: Loans, saga_id: str, state: str) -> None:
    await svc.wait_until(f"SELECT 1 FROM sagas WHERE id = '{saga_id}' AND state = '{state}'")


async def test_a_group_of_five_is_disbursed_by_one_saga_with_five_payouts(
        infra: Infra, isolated_schema: Any) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        gl, group_id, _ = await _approved(svc, cover_arrears=True)
        legs = await _reserve_all(svc, gl)
        payouts = await svc.bus.wait_for("DisburseLoan", count=5)
        assert sorted(p.payload["amount"] for p in payouts) == sorted(PRINCIPALS)
        assert {p.payload["saga_id"] for p in payouts} == set(legs.values())
        for m, p in zip(gl["members"], PRINCIPALS, strict=True):
            await svc.complete(legs[m["loan_id"]], m["loan_id"], m["client_id"], p)
        active = (await svc.bus.wait_for("GroupLoanActive", group_id=group_id))[0].payload
        assert sorted(active["loan_ids"]) == sorted(legs)
        assert active["total_principal"] == "7000.00"
        # the group's rule travels with it: savings lets other members' savings cover
        assert active["cover_arrears"] is True
        for m in gl["members"]:
            await svc.wait_status(m["loan_id"], "active")
        saga = (await svc.client.get(f"/v1/sagas/{gl['saga_id']}", headers=svc.operator)).json()
        assert saga["type"] == "group_disbursement" and saga["state"] == "completed"
        assert await svc.count("sagas") == 1   # one saga for the whole group


async def test_a_refused_payee_compensates_every_member_before_any_payout(
        infra: Infra, isolated_schema: Any) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        gl, group_id, _ = await _approved(svc)
        legs = await _reserve_only(svc, gl)
        await svc.bus.wait_for("ValidatePayee", count=5)
        for m in gl["members"][:2]:
            await _payee(svc, legs, m)
        refused = gl["members"][2]
        await _payee(svc, legs, refused, "no", "the provider reports the wallet unavailable")
        releases = await svc.bus.wait_for("ReleaseCredit", count=5)
        assert {r.payload["reservation_id"] for r in releases} == set(legs.values())
        failed = (await svc.bus.wait_for("GroupLoanDisbursementFailed",
                                         group_id=group_id))[0].payload
        assert refused["client_id"] in failed["reason"] and failed["payouts_to_recover"] == []
        # every member's loan failed visibly (LoanDisbursementFailed: the member's SMS)
        told = await svc.bus.wait_for("LoanDisbursementFailed", count=5)
        assert {t.payload["loan_id"] for t in told} == set(legs)
        for m in gl["members"]:
            loan = await svc.wait_status(m["loan_id"], "disbursement_failed")
            assert loan["outstanding"]["principal"] == "0.00"
            await svc.bus.send(CreditReleased(
                client_id=m["client_id"], reservation_id=legs[m["loan_id"]],
                saga_id=legs[m["loan_id"]], loan_id=m["loan_id"], amount=Decimal("1.00")),
                key=m["client_id"])
        await _saga_state(svc, gl["saga_id"], "compensated")
        body = (await svc.client.get(f"/v1/group-loans/{gl['id']}", headers=svc.operator)
                ).json()
        assert body["status"] == "failed" and body["saga"]["state"] == "compensated"
        async with output_reader(svc) as sent:
            await settled(svc, sent)
            assert sent.matching("DisburseLoan") == []   # no money ever moved
            assert sent.matching("LoanDisbursed") == []


async def test_a_payee_lookup_in_doubt_waits_for_the_providers_word(
        infra: Infra, isolated_schema: Any) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        gl, _, _ = await _approved(svc)
        legs = await _reserve_only(svc, gl)
        await svc.bus.wait_for("ValidatePayee", count=5)
        doubtful = gl["members"][4]
        for m in gl["members"][:4]:
            await _payee(svc, legs, m)
        await _payee(svc, legs, doubtful, "doubt", "no answer: ReadTimeout")
        await svc.wait_until(f"SELECT 1 FROM saga_timeline WHERE saga_id = '{gl['saga_id']}'"
                             " AND event = 'PayeeLookupInDoubt'")
        async with output_reader(svc) as sent:
            await settled(svc, sent)
            assert sent.matching("DisburseLoan") == [] and sent.matching("ReleaseCredit") == []
        saga = (await svc.client.get(f"/v1/sagas/{gl['saga_id']}", headers=svc.operator)
                ).json()
        assert saga["state"] == "validating_payees", saga
        # the provider's word at last: every payout goes
        await _payee(svc, legs, doubtful)
        payouts = await svc.bus.wait_for("DisburseLoan", count=5)
        assert {p.payload["saga_id"] for p in payouts} == set(legs.values())


async def test_a_payout_failing_after_others_were_paid_leaves_their_principal_owed(
        infra: Infra, isolated_schema: Any) -> None:
    """After validation a payout can still fail: the members already paid are not
    reversed; each loan carries its paid-out principal as outstanding (what payments'
    portfolio holds) and is flagged to recover; no member is active."""
    async with running_loans(infra, isolated_schema) as svc:
        gl, group_id, _ = await _approved(svc)
        legs = await _reserve_all(svc, gl)
        await svc.bus.wait_for("DisburseLoan", count=5)
        failing = gl["members"][1]
        paid = [m for m in gl["members"] if m is not failing]
        for m in paid:
            await svc.complete(legs[m["loan_id"]], m["loan_id"], m["client_id"],
                               m["principal"])
        await svc.bus.send(DisbursementFailed(
            loan_id=failing["loan_id"], saga_id=legs[failing["loan_id"]],
            client_id=failing["client_id"], amount=Decimal(failing["principal"]),
            reason="the recipient's wallet refused the transfer"), key=failing["loan_id"])
        failed = (await svc.bus.wait_for("GroupLoanDisbursementFailed",
                                         group_id=group_id))[0].payload
        assert sorted(failed["payouts_to_recover"]) == sorted(m["loan_id"] for m in paid)
        [release] = await svc.bus.wait_for("ReleaseCredit", count=1)
        assert release.payload["loan_id"] == failing["loan_id"]
        await svc.bus.send(CreditReleased(
            client_id=failing["client_id"], reservation_id=legs[failing["loan_id"]],
            saga_id=legs[failing["loan_id"]], loan_id=failing["loan_id"],
            amount=Decimal("1.00")), key=failing["client_id"])
        await _saga_state(svc, gl["saga_id"], "failed")
        for m in paid:
            loan = (await svc.client.get(f"/v1/loans/{m['loan_id']}", headers=svc.operator)
                    ).json()
            assert loan["status"] == "disbursing", loan
            assert loan["outstanding"]["principal"] == m["principal"], loan
        loan = await svc.wait_status(failing["loan_id"], "disbursement_failed")
        assert loan["outstanding"]["principal"] == "0.00"

        # payments' operators record the recovery: part returned, then the rest written off
        member = paid[0]
        recovery = {"loan_id": member["loan_id"], "saga_id": gl["saga_id"],
                    "recovery_id": str(uuid.uuid4())}
        await svc.bus.send(PayoutRecoveryRecorded(
            **recovery, outcome="returned", amount=Decimal("400.00"),
            remaining=Decimal(member["principal"]) - Decimal("400.00"), status="open"),
            key=member["loan_id"])
        owed = str(Decimal(member["principal"]) - Decimal("400.00"))

        async def owes(amount: str) -> Any:
            body = (await svc.client.get(f"/v1/loans/{member['loan_id']}",
                                         headers=svc.operator)).json()
            return body if body["outstanding"]["principal"] == amount else None
        await until(lambda: owes(owed), f"{member['loan_id']} owing {owed}")
        await svc.bus.send(PayoutRecoveryRecorded(
            **recovery, outcome="written_off", amount=Decimal(owed),
            remaining=Decimal("0.00"), status="written_off"), key=member["loan_id"])
        loan = await svc.wait_status(member["loan_id"], "disbursement_failed")
        assert loan["outstanding"]["principal"] == "0.00"
        # the member's reserved credit is released at last (its saga step's reservation)
        [freed] = await svc.bus.wait_for("ReleaseCredit", loan_id=member["loan_id"])
        assert freed.payload["reservation_id"] == legs[member["loan_id"]]


async def test_one_failed_payout_compensates_every_member_and_none_is_active(
        infra: Infra, isolated_schema: Any) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        gl, group_id, _ = await _approved(svc)
        legs = await _reserve_all(svc, gl)
        await svc.bus.wait_for("DisburseLoan", count=5)
        for m in gl["members"]:
            leg = legs[m["loan_id"]]
            await svc.bus.send(DisbursementFailed(
                loan_id=m["loan_id"], saga_id=leg, client_id=m["client_id"],
                amount=Decimal("1.00"), reason="wallet_not_found"), key=m["loan_id"])
        releases = await svc.bus.wait_for("ReleaseCredit", count=5)
        assert {r.payload["reservation_id"] for r in releases} == set(legs.values())
        failed = (await svc.bus.wait_for("GroupLoanDisbursementFailed",
                                         group_id=group_id))[0].payload
        assert failed["payouts_to_recover"] == []
        for m in gl["members"]:
            await svc.wait_status(m["loan_id"], "disbursement_failed")
            await svc.bus.send(CreditReleased(
                client_id=m["client_id"], reservation_id=legs[m["loan_id"]],
                saga_id=legs[m["loan_id"]], loan_id=m["loan_id"], amount=Decimal("1.00")),
                key=m["client_id"])
        await svc.wait_until(f"SELECT 1 FROM sagas WHERE id = '{gl['saga_id']}'"
                             " AND state = 'compensated'")
        async with output_reader(svc) as sent:
            await settled(svc, sent)
            assert sent.matching("LoanDisbursed") == []
            assert sent.matching("GroupLoanActive") == []


async def test_a_group_repayment_is_split_exactly_by_what_each_member_owes(
        infra: Infra, isolated_schema: Any) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        gl, group_id, _ = await _approved(svc)
        legs = await _reserve_all(svc, gl)
        await svc.bus.wait_for("DisburseLoan", count=5)
        on = date(2026, 1, 5)
        for m, p in zip(gl["members"], PRINCIPALS, strict=True):
            await svc.complete(legs[m["loan_id"]], m["loan_id"], m["client_id"], p, on)
        active = (await svc.bus.wait_for("GroupLoanActive", group_id=group_id))[0].payload
        assert active["cover_arrears"] is False   # the rule is off unless the group asks
        firsts = {}
        for m in gl["members"]:
            sched = (await svc.client.get(f"/v1/loans/{m['loan_id']}/schedule",
                                          headers=svc.operator)).json()["installments"]
            firsts[m["loan_id"]] = (sched[0]["due_date"], Decimal(sched[0]["total"]))
        first_due = date.fromisoformat(max(d for d, _ in firsts.values()))
        total = sum((a for _, a in firsts.values()), Decimal("0"))
        await svc.bus.send(RepaymentReceived(
            loan_id=gl["id"], payment_id="grp-pay-1", amount=total,
            payer_msisdn="+212612345678", provider="simulator", external_ref="grp-pay-1",
            received_at=datetime.combine(first_due, time(9, 0), UTC)), key=gl["id"])
        split = (await svc.bus.wait_for("GroupRepaymentSplit", group_id=group_id))[0].payload
        assert split["unallocated"] == "0.00"
        assert {ln["loan_id"]: Decimal(ln["amount"]) for ln in split["lines"]} == {
            k: a for k, (_, a) in firsts.items()}
        applied = await svc.bus.wait_for("RepaymentApplied", count=5)
        assert {a.payload["loan_id"]: Decimal(a.payload["amount"]) for a in applied} == {
            k: a for k, (_, a) in firsts.items()}
        await svc.bus.wait_for("GroupRepaymentSummary", group_id=group_id)


async def test_a_group_repayment_before_the_first_meeting_is_split_by_that_meeting(
        infra: Infra, isolated_schema: Any) -> None:
    """Nothing is due on the day the group pays (the disbursement day): each member's
    share is what it owes on the group's next meeting; the extra is left unallocated."""
    async with running_loans(infra, isolated_schema) as svc:
        gl, group_id, _ = await _approved(svc)
        legs = await _reserve_all(svc, gl)
        await svc.bus.wait_for("DisburseLoan", count=5)
        on = date(2026, 1, 5)
        for m, p in zip(gl["members"], PRINCIPALS, strict=True):
            await svc.complete(legs[m["loan_id"]], m["loan_id"], m["client_id"], p, on)
        await svc.bus.wait_for("GroupLoanActive", group_id=group_id)
        firsts = {}
        for m in gl["members"]:
            sched = (await svc.client.get(f"/v1/loans/{m['loan_id']}/schedule",
                                          headers=svc.operator)).json()["installments"]
            assert date.fromisoformat(sched[0]["due_date"]) > on
            firsts[m["loan_id"]] = Decimal(sched[0]["total"])
        total = sum(firsts.values(), Decimal("0"))
        await svc.bus.send(RepaymentReceived(
            loan_id=gl["id"], payment_id="grp-early-1", amount=total + Decimal("25.00"),
            payer_msisdn="+212612345678", provider="simulator", external_ref="grp-early-1",
            received_at=datetime.combine(on, time(15, 0), UTC)), key=gl["id"])
        split = (await svc.bus.wait_for("GroupRepaymentSplit", group_id=group_id))[0].payload
        assert Decimal(split["unallocated"]) == Decimal("25.00")
        assert {ln["loan_id"]: Decimal(ln["amount"]) for ln in split["lines"]} == firsts
        applied = await svc.bus.wait_for("RepaymentApplied", count=5)
        assert {a.payload["loan_id"]: Decimal(a.payload["amount"]) for a in applied} == firsts


async def test_a_member_in_arrears_puts_the_group_in_arrears_until_cured(
        infra: Infra, isolated_schema: Any) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        gl, group_id, _ = await _approved(svc)
        legs = await _reserve_all(svc, gl)
        await svc.bus.wait_for("DisburseLoan", count=5)
        for m, p in zip(gl["members"], PRINCIPALS, strict=True):
            await svc.complete(legs[m["loan_id"]], m["loan_id"], m["client_id"], p)
        await svc.bus.wait_for("GroupLoanActive", group_id=group_id)
        late = gl["members"][2]["loan_id"]
        # close of business aged the member's loan (as it does from its overdue installment)
        async with svc.pool.acquire() as conn:
            await conn.execute("UPDATE loans SET days_in_arrears = 4 WHERE id = $1", late)
        arrears = (await svc.bus.wait_for("GroupInArrears", group_id=group_id))[0].payload
        assert arrears["loans_in_arrears"] == [late]
        assert len(arrears["member_ids"]) == 5
        async with svc.pool.acquire() as conn:
            await conn.execute("UPDATE loans SET days_in_arrears = 0 WHERE id = $1", late)
        await svc.bus.wait_for("GroupArrearsCured", group_id=group_id)


async def test_the_last_member_repaying_its_own_loan_closes_the_group_loan(
        infra: Infra, isolated_schema: Any) -> None:
    """Members may repay their own loans, not only through the group's collection, by the
    loan's id or by its short reference (as a wallet's payer types it): the repayment that
    closes the last of them closes the group loan, once."""
    async with running_loans(infra, isolated_schema) as svc:
        gl, group_id, members = await _approved(svc)
        legs = await _reserve_all(svc, gl)
        await svc.bus.wait_for("DisburseLoan", count=5)
        for m, p in zip(gl["members"], PRINCIPALS, strict=True):
            await svc.complete(legs[m["loan_id"]], m["loan_id"], m["client_id"], p,
                               date(2026, 1, 5))
        await svc.bus.wait_for("GroupLoanActive", group_id=group_id)
        last = gl["members"][-1]["loan_id"]
        reference = (await svc.get(last))["reference"]
        assert reference and reference.startswith("L")
        for m, p in zip(gl["members"], PRINCIPALS, strict=True):
            # published with the repayment that closes the last member's loan, not before
            assert not svc.bus.matching("GroupLoanClosed", group_id=group_id)
            named = reference.lower() if m["loan_id"] == last else m["loan_id"]
            paid = await svc.pay(named, str(Decimal(p) * 2), on=date(2026, 1, 20))
            applied = (await svc.bus.wait_for("RepaymentApplied", payment_id=paid))[0].payload
            assert applied["closes_loan"] is True and applied["settled_early"] is True
        closed = (await svc.bus.wait_for("GroupLoanClosed", group_id=group_id))[0].payload
        assert closed["group_loan_id"] == gl["id"]
        assert sorted(closed["member_ids"]) == sorted(members)
        assert closed["within_tolerance"] is True
        group = await svc.client.get(f"/v1/group-loans/{gl['id']}", headers=svc.operator)
        assert group.status_code == 200 and group.json()["status"] == "closed"
        assert len(svc.bus.matching("GroupLoanClosed", group_id=group_id)) == 1
