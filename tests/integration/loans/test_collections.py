"""Late charges, reminders, arrears cure and the accrual feed from close of business (once
per date, and under catch-up of missed nights); waivers by two operators; the due list;
short references (a mistyped one held for review); purpose ceilings."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from tests.infra import Infra
from tests.integration.loans.cob_helpers import close_of_business
from tests.integration.loans.facts import output_reader, settled
from tests.integration.loans.harness import Loans, running_loans

# 2.00 a day once more than 3 days late, at most 10.00 per installment
LATE = {"frequency": "per_day", "calculation": "flat", "value": "2.00", "grace_days": 3,
        "cap_amount": "10.00"}


async def cob(svc: Loans, day: str) -> dict[str, object]:
    run = await close_of_business(svc.client, svc.operator, day)
    assert run["status"] == "succeeded", run
    return run


async def charges(svc: Loans, loan_id: str) -> list[tuple[int, date, Decimal]]:
    async with svc.pool.acquire() as conn:
        rows = await conn.fetch("SELECT number, charged_on, amount FROM late_charges"
                                " WHERE loan_id = $1 ORDER BY charged_on", loan_id)
    return [(r["number"], r["charged_on"], r["amount"]) for r in rows]


async def test_close_of_business_charges_reminds_and_accrues_once_per_date(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product(late_charge=LATE)
        # 1 200.00 flat 12 % over 4 months: 300.00 + 12.00 on the 5th of Feb, Mar, Apr, May
        loan = await svc.active_loan(product, disbursed_on=date(2026, 1, 5))
        lid = loan["id"]
        assert loan["reference"].startswith("L") and len(loan["reference"]) == 10
        await cob(svc, "2026-02-05")            # due today
        await cob(svc, "2026-02-06")            # 1 day late: within the grace
        assert await charges(svc, lid) == []
        await cob(svc, "2026-02-09")            # catches up the 7th and 8th: 2, 3, 4 days late
        assert await charges(svc, lid) == [(1, date(2026, 2, 9), Decimal("2.00"))]
        await cob(svc, "2026-02-14")            # 10th-13th caught up: 2.00 a day to the cap
        got = await charges(svc, lid)
        assert [c[1].day for c in got] == [9, 10, 11, 12, 13]
        assert sum(c[2] for c in got) == Decimal("10.00")        # 5 x 2.00, then capped
        again = await close_of_business(svc.client, svc.operator, "2026-02-14")
        assert again["status"] == "succeeded"
        assert len(await charges(svc, lid)) == 5
        schedule = (await svc.client.get(f"/v1/loans/{lid}/schedule",
                                         headers=svc.operator)).json()
        assert schedule["installments"][0]["penalties"] == "10.00"

        # the due list: unpaid and due on or before the date, with days late
        due = (await svc.client.get("/v1/installments/due", headers=svc.operator,
                                    params={"date": "2026-03-05"})).json()
        mine = [i for i in due["items"] if i["loan_id"] == lid]
        assert [(i["installment"], i["days_late"], i["amount_due"], i["reference"])
                for i in mine] == [(1, 28, "322.00", loan["reference"]),
                                   (2, 0, "312.00", loan["reference"])]

        async with output_reader(svc) as sent:
            await settled(svc, sent)
            today = sent.matching("InstallmentDueToday", loan_id=lid)
            assert [(e.payload["installment"], e.payload["business_date"]) for e in today] == [
                (1, "2026-02-05")]
            late = sent.matching("InstallmentOverdue", loan_id=lid)
            # cadence 1, 3, 7 days late: the 6th, the 8th (caught up) and the 12th, once each
            assert sorted((e.payload["business_date"], e.payload["days_late"]) for e in late) \
                == [("2026-02-06", 1), ("2026-02-08", 3), ("2026-02-12", 7)]
            assert late[0].payload["reference"] == loan["reference"]
            accrued = sent.matching("InterestAccrued")
            days = sorted(e.payload["business_date"] for e in accrued)
            assert days == [f"2026-02-{d:02d}" for d in range(5, 15)]   # once per date
            line = accrued[0].payload["loans"][0]
            # flat: 1 200.00 * 0.12 / 365 = 0.3945... -> 0.39 a day
            assert (line["loan_id"], line["interest"], accrued[0].payload["batches"]) == (
                lid, "0.39", 1)
            assert len(sent.matching("LoanInArrears", loan_id=lid)) == 1

        # paid up: current again, and the next close of business says so, once
        pid = await svc.pay(lid, "322.00", on=date(2026, 2, 15))
        await svc.bus.wait_for("RepaymentApplied", payment_id=pid)
        await cob(svc, "2026-02-15")
        await cob(svc, "2026-02-16")
        async with output_reader(svc) as sent:
            await settled(svc, sent)
            cured = sent.matching("LoanArrearsCured", loan_id=lid)
            assert [e.payload["business_date"] for e in cured] == ["2026-02-15"]


async def test_a_waiver_needs_a_second_operator(infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product(late_charge=LATE)
        loan = await svc.active_loan(product, disbursed_on=date(2026, 1, 5))
        lid = loan["id"]
        await cob(svc, "2026-02-05")
        await cob(svc, "2026-02-11")            # charged the 9th, 10th, 11th: 6.00
        proposed = await svc.client.post(f"/v1/loans/{lid}/waivers", headers=svc.operator,
                                         json={"amount": "4.00", "reason": "hospital stay"})
        assert proposed.status_code == 202, proposed.text
        rid = proposed.json()["id"]
        too_much = await svc.client.post(f"/v1/loans/{lid}/waivers", headers=svc.checker,
                                         json={"amount": "7.00", "reason": "x"})
        assert too_much.status_code == 422 and too_much.json()["errors"][0]["field"] == "amount"
        own = await svc.client.post(f"/v1/loan-requests/{rid}/approve", headers=svc.operator)
        assert own.status_code == 403
        schedule = (await svc.client.get(f"/v1/loans/{lid}/schedule",
                                         headers=svc.operator)).json()
        assert schedule["installments"][0]["penalties"] == "6.00"
        ok = await svc.client.post(f"/v1/loan-requests/{rid}/approve", headers=svc.checker)
        assert ok.status_code == 200 and ok.json()["status"] == "approved"
        schedule = (await svc.client.get(f"/v1/loans/{lid}/schedule",
                                         headers=svc.operator)).json()
        assert schedule["installments"][0]["penalties"] == "2.00"
        waived = (await svc.bus.wait_for("LateChargesWaived", loan_id=lid))[0].payload
        assert (waived["amount"], waived["approved_by"], waived["proposed_by"]) == (
            "4.00", "op-checker", "op-maker")
        # allocation honours what is left: penalties first
        pid = await svc.pay(lid, "10.00", on=date(2026, 2, 12))
        applied = (await svc.bus.wait_for("RepaymentApplied", payment_id=pid))[0].payload
        assert (applied["penalties_paid"], applied["interest_paid"]) == ("2.00", "8.00")


async def test_short_references_and_a_mistyped_one_held(infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()
        loan = await svc.active_loan(product, disbursed_on=date(2026, 1, 5))
        ref = loan["reference"]
        disbursed = (await svc.bus.wait_for("LoanDisbursed", loan_id=loan["id"]))[0].payload
        assert disbursed["reference"] == ref
        # typed in lower case with a dash: the loan it names
        pid = await svc.pay(f"{ref[:5].lower()}-{ref[5:].lower()}", "100.00")
        applied = (await svc.bus.wait_for("RepaymentApplied", payment_id=pid))[0].payload
        assert applied["loan_id"] == loan["id"]
        # one character wrong: the check character fails, the payment is held, not refunded
        wrong = ref[:3] + ("0" if ref[3] != "0" else "1") + ref[4:]
        pid = await svc.pay(wrong, "100.00")
        held = (await svc.bus.wait_for("RepaymentRejected", payment_id=pid))[0].payload
        assert (held["reason"], held["held_for_review"], held["refundable_amount"]) == (
            "reference_check_failed", True, "0.00")
        assert await svc.count("repayments", f"payment_id = '{pid}' AND outcome = 'held'") == 1


async def test_purpose_ceilings(infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema,
                             purpose_ceilings={"consumption": "1000.00"}) as svc:
        product = await svc.create_product()
        client_id = await svc.register_client()
        body = {"client_id": client_id, "product_id": product, "principal": "1200.00",
                "term": 4, "purpose": "consumption"}
        refused = await svc.client.post("/v1/loans", headers=svc.partner, json=body)
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["field"] == "principal"
        body["purpose"] = "equipment"
        ok = await svc.client.post("/v1/loans", headers=svc.partner, json=body)
        assert ok.status_code == 201 and ok.json()["purpose"] == "equipment"
        unknown = await svc.client.post("/v1/loans", headers=svc.partner,
                                        json={**body, "purpose": "yacht"})
        assert unknown.status_code == 422
