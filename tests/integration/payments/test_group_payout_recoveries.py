"""Payouts to recover after a failed group disbursement: each member loans names in
``GroupLoanDisbursementFailed.payouts_to_recover`` is an open recovery request
(``GET /v1/recoveries?status=open``, oldest first, keyset-paged); a collection the member
pays back to the loan, refused by loans (the loan is not active), is held in suspense
rather than refunded; two operators record the outcome — returned by that collection, or
written off — and only then the member loan's portfolio is cleared. Loans is played by
publishing its events; every loan id is the test's own."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from shared.contracts.loans import GroupLoanDisbursementFailed, RepaymentRejected
from tests.integration.payments.conftest import Rig, new_id
from tests.integration.payments.facts import refund_payouts, settled
from tests.integration.payments.test_servicing_repayments import (
    disbursed,
    key,
    pay,
    sides,
    status_of,
)

pytestmark = pytest.mark.integration
D = Decimal


async def open_requests(rig: Rig, loans: set[str]) -> list[dict[str, Any]]:
    """Every open request of ``loans``, following the pages one item at a time."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        params: dict[str, Any] = {"status": "open", "limit": 1}
        if cursor:
            params["cursor"] = cursor
        resp = await rig.api.get("/v1/recoveries", params=params, headers=rig.auth())
        assert resp.status_code == 200, resp.text
        page = resp.json()
        for item in page["items"]:
            assert item["recovery_id"] not in seen
            seen.add(item["recovery_id"])
            if item["loan_id"] in loans:
                found.append(item)
        cursor = page["next_cursor"]
        if cursor is None:
            return found


async def test_payouts_to_recover_are_returned_or_written_off_by_two_operators(
        rig: Rig) -> None:
    (m1, w1), (m2, _), (m3, _) = [await disbursed(rig, a)
                                  for a in ("1000.00", "800.00", "600.00")]
    group, group_loan, saga = new_id("grp"), new_id("gl"), str(uuid.uuid4())
    failed = GroupLoanDisbursementFailed(
        group_id=group, group_loan_id=group_loan, member_ids=["c1", "c2", "c3"],
        saga_id=saga, reason="payout of member loan-x failed: wallet blocked",
        payouts_to_recover=[m1, m2])
    await rig.send(failed, key=group)
    await rig.send(failed, key=group)  # told twice: one request each
    await settled(rig)  # both copies consumed
    mine = await open_requests(rig, {m1, m2, m3})
    assert sorted((i["loan_id"], i["amount"], i["status"], i["payout_status"]) for i in mine
                  ) == sorted([(m1, "1000.00", "open", "completed"),
                               (m2, "800.00", "open", "completed")])
    r1 = next(i for i in mine if i["loan_id"] == m1)
    r2 = next(i for i in mine if i["loan_id"] == m2)
    assert r1["msisdn"] == w1 and r1["remaining"] == "1000.00" and r1["proposal"] is None
    assert r1["group_loan_id"] == group_loan and r1["saga_id"] == saga
    # nothing moved by itself: the payouts are still in the members' portfolios
    assert await rig.portfolio(m1) == D("1000.00") and await rig.portfolio(m2) == D("800.00")

    # member 1 pays the money back to the loan; loans refuses it (not active): held
    pid = await pay(rig, w1, "1000.00", m1)
    await rig.send(RepaymentRejected(
        loan_id=m1, client_id="c1", payment_id=pid, amount=D("1000.00"), payer_msisdn=w1,
        reason="loan_not_active", refundable_amount=D("1000.00"),
        detail="the loan is disbursing"), key=m1)
    await status_of(rig, pid, "held")
    await settled(rig)
    assert rig.events.of("RefundIssued", payment_id=pid) == []
    assert await refund_payouts(rig.pool, pid) == []

    maker, checker = rig.auth(sub="op-maker"), rig.auth(sub="op-checker")
    url1 = f"/v1/recoveries/{r1['recovery_id']}"
    missing = await rig.api.post(f"{url1}/outcome/approve", headers={**checker, **key()})
    assert missing.status_code == 409  # nothing proposed yet
    no_evidence = await rig.api.post(f"{url1}/outcome", json={"outcome": "returned"},
                                     headers={**maker, **key()})
    assert no_evidence.status_code == 422, no_evidence.text
    unknown = await rig.api.post(f"{url1}/outcome", json={
        "outcome": "returned", "payment_id": str(uuid.uuid4())}, headers={**maker, **key()})
    assert unknown.status_code == 404, unknown.text
    k = key()
    body = {"outcome": "returned", "payment_id": pid, "note": "member repaid the payout"}
    first = await rig.api.post(f"{url1}/outcome", json=body, headers={**maker, **k})
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "proposed" and first.json()["amount"] == "1000.00"
    again = await rig.api.post(f"{url1}/outcome", json=body, headers={**maker, **k})
    assert again.json() == first.json()
    second = await rig.api.post(f"{url1}/outcome", json={"outcome": "written_off"},
                                headers={**checker, **key()})
    assert second.status_code == 409  # one decision at a time
    listed = (await rig.api.get(url1, headers=rig.auth())).json()
    assert listed["proposal"]["outcome"] == "returned"
    assert listed["proposal"]["proposed_by"] == "op-maker"
    own = await rig.api.post(f"{url1}/outcome/approve", headers={**maker, **key()})
    assert own.status_code == 403, own.text
    assert await rig.portfolio(m1) == D("1000.00")
    ok = await rig.api.post(f"{url1}/outcome/approve", headers={**checker, **key()})
    assert ok.status_code == 202, ok.text
    assert ok.json()["status"] == "recovered" and ok.json()["approved_by"] == "op-checker"
    assert await rig.portfolio(m1) == D("0.00")
    # loans is told, so the member loan owes what the books still hold: nothing
    told = await rig.events.wait("PayoutRecoveryRecorded", loan_id=m1)
    assert (told["outcome"], told["amount"], told["remaining"], told["status"]) == (
        "returned", "1000.00", "0.00", "recovered")
    assert told["saga_id"] == saga and told["recovery_id"] == r1["recovery_id"]
    assert await sides(rig, f"payout_returned:{pid}") == {
        ("suspense", "debit", D("1000.00")), (f"portfolio:{m1}", "credit", D("1000.00"))}
    await status_of(rig, pid, "posted")
    done = (await rig.api.get(url1, headers=rig.auth())).json()
    assert done["status"] == "recovered" and done["recovered"] == "1000.00"
    assert done["returned_payments"] == [{"payment_id": pid, "amount": "1000.00"}]
    assert done["proposal"] is None and done["closed_at"] is not None
    late = await rig.api.post(f"{url1}/outcome", json={"outcome": "written_off"},
                              headers={**maker, **key()})
    assert late.status_code == 409  # closed

    # member 2's payout is lost: written off by two operators
    url2 = f"/v1/recoveries/{r2['recovery_id']}"
    proposed = await rig.api.post(f"{url2}/outcome", json={"outcome": "written_off",
                                                           "note": "member unreachable"},
                                  headers={**maker, **key()})
    assert proposed.status_code == 202, proposed.text
    ok2 = await rig.api.post(f"{url2}/outcome/approve", headers={**checker, **key()})
    assert ok2.status_code == 202, ok2.text
    assert ok2.json()["status"] == "written_off"
    assert await rig.portfolio(m2) == D("0.00")
    told = await rig.events.wait("PayoutRecoveryRecorded", loan_id=m2)
    assert (told["outcome"], told["remaining"], told["status"]) == (
        "written_off", "0.00", "written_off")
    assert (f"portfolio:{m2}", "credit", D("800.00")) in await sides(
        rig, f"payout_write_off:{r2['recovery_id']}")
    assert await open_requests(rig, {m1, m2, m3}) == []
    closed = (await rig.api.get("/v1/recoveries", params={"status": "written_off",
                                                          "limit": 500},
                                headers=rig.auth())).json()["items"]
    assert r2["recovery_id"] in {i["recovery_id"] for i in closed}
    async with rig.pool.acquire() as conn:
        audit = await conn.fetch(
            "SELECT action, actor FROM payout_audit WHERE detail->>'recovery_id' = ANY($1)"
            " ORDER BY id", [r1["recovery_id"], r2["recovery_id"]])
    assert [(a["action"], a["actor"]) for a in audit] == [
        ("recovery_returned_proposed", "op-maker"), ("recovery_returned_approved", "op-checker"),
        ("recovery_written_off_proposed", "op-maker"),
        ("recovery_written_off_approved", "op-checker")]
    # a member not to recover keeps its payout; the books balance
    assert await rig.portfolio(m3) == D("600.00")
    tb = await rig.trial_balance()
    assert tb["balanced"] is True and tb["total_debits"] == tb["total_credits"]


async def test_a_collection_for_a_loan_with_nothing_to_recover_is_refunded(rig: Rig) -> None:
    loan, msisdn = await disbursed(rig, "500.00")
    pid = await pay(rig, msisdn, "100.00", loan)
    await rig.send(RepaymentRejected(
        loan_id=loan, client_id="c1", payment_id=pid, amount=D("100.00"), payer_msisdn=msisdn,
        reason="loan_not_active", refundable_amount=D("100.00")), key=loan)
    issued = await rig.events.wait("RefundIssued", payment_id=pid)
    assert issued["amount"] == "100.00"
