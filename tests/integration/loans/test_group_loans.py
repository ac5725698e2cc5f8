"""Group loans on the real broker and database: the test plays clients and payments."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pytest

from shared.contracts.clients import CreditReleased, GroupFormed
from shared.contracts.payments import DisbursementFailed, RepaymentReceived
from tests.infra import Infra
from tests.integration.loans.facts import output_reader, settled
from tests.integration.loans.harness import Loans, running_loans

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


async def _approved(svc: Loans) -> tuple[dict[str, Any], str, list[str]]:
    product = await svc.create_product()
    group_id, members = await _group(svc)
    resp = await svc.client.post("/v1/group-loans", headers=svc.partner, json={
        "group_id": group_id, "product_id": product, "term": 4,
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


async def _reserve_all(svc: Loans, gl: dict[str, Any]) -> dict[str, str]:
    reserves = await svc.bus.wait_for("ReserveCredit", count=5)
    legs = {r.payload["loan_id"]: r.payload["saga_id"] for r in reserves}
    assert len(set(legs.values())) == 5
    for m in gl["members"]:
        await svc.reserve(legs[m["loan_id"]], m["loan_id"], m["client_id"])
    return legs


async def test_a_group_of_five_is_disbursed_by_one_saga_with_five_payouts(
        infra: Infra, isolated_schema: Any) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        gl, group_id, _ = await _approved(svc)
        legs = await _reserve_all(svc, gl)
        payouts = await svc.bus.wait_for("DisburseLoan", count=5)
        assert sorted(p.payload["amount"] for p in payouts) == sorted(PRINCIPALS)
        assert {p.payload["saga_id"] for p in payouts} == set(legs.values())
        for m, p in zip(gl["members"], PRINCIPALS, strict=True):
            await svc.complete(legs[m["loan_id"]], m["loan_id"], m["client_id"], p)
        active = (await svc.bus.wait_for("GroupLoanActive", group_id=group_id))[0].payload
        assert sorted(active["loan_ids"]) == sorted(legs)
        assert active["total_principal"] == "7000.00"
        for m in gl["members"]:
            await svc.wait_status(m["loan_id"], "active")
        saga = (await svc.client.get(f"/v1/sagas/{gl['saga_id']}", headers=svc.operator)).json()
        assert saga["type"] == "group_disbursement" and saga["state"] == "completed"
        assert await svc.count("sagas") == 1   # one saga for the whole group


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
        await svc.bus.wait_for("GroupLoanActive", group_id=group_id)
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
