"""Repayments as payments sends them: RepaymentReceived in, RepaymentApplied/Rejected out."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from tests.infra import Infra
from tests.integration.loans.cob_helpers import close_of_business
from tests.integration.loans.harness import Loans, running_loans

pytestmark = pytest.mark.integration

D0 = date(2026, 1, 5)  # disbursement date: due 5 Feb, 5 Mar, 5 Apr, 5 May


def lines(applied: dict) -> list[tuple[int, str, str]]:
    return [(x["installment"], x["component"], x["amount"]) for x in applied["allocation"]]


async def schedule(svc: Loans, loan_id: str) -> list[dict]:
    resp = await svc.client.get(f"/v1/loans/{loan_id}/schedule", headers=svc.operator)
    assert resp.status_code == 200
    items: list[dict] = resp.json()["installments"]
    return items


async def test_partial_exact_and_early_payments_then_the_loan_closes(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        # flat 12 %: 1200 over 4 months = 300 principal + 12 interest a month,
        # plus a 10.00 fee at disbursement due with the first installment
        product = await svc.create_product(
            fees=[{"kind": "flat", "value": "10.00", "timing": "at_disbursement"}])
        loan = await svc.active_loan(product, disbursed_on=D0)
        lid = loan["id"]

        # partial: fees first, then interest, then principal of installment 1
        p1 = await svc.pay(lid, "100.00", on=date(2026, 2, 1))
        a1 = (await svc.bus.wait_for("RepaymentApplied", payment_id=p1))[0].payload
        assert lines(a1) == [(1, "fees", "10.00"), (1, "interest", "12.00"),
                             (1, "principal", "78.00")]
        assert (a1["principal_paid"], a1["interest_paid"], a1["fees_paid"]) == (
            "78.00", "12.00", "10.00")
        assert a1["outstanding_principal"] == "1122.00"
        assert a1["outstanding_total"] == "1158.00"
        assert (a1["next_due_date"], a1["next_due_amount"]) == ("2026-02-05", "222.00")
        assert a1["closes_loan"] is False

        # exact: the rest of installment 1
        p2 = await svc.pay(lid, "222.00", on=date(2026, 2, 4))
        a2 = (await svc.bus.wait_for("RepaymentApplied", payment_id=p2))[0].payload
        assert lines(a2) == [(1, "principal", "222.00")]
        assert (a2["next_due_date"], a2["next_due_amount"]) == ("2026-03-05", "312.00")
        items = await schedule(svc, lid)
        assert [i["status"] for i in items] == ["paid", "pending", "pending", "pending"]

        # early: one payment covering installment 2 and part of 3, before either is due
        p3 = await svc.pay(lid, "400.00", on=date(2026, 2, 10))
        a3 = (await svc.bus.wait_for("RepaymentApplied", payment_id=p3))[0].payload
        assert lines(a3) == [(2, "interest", "12.00"), (2, "principal", "300.00"),
                             (3, "interest", "12.00"), (3, "principal", "76.00")]
        assert a3["outstanding_principal"] == "524.00"

        # the rest, exactly: the loan closes
        p4 = await svc.pay(lid, "536.00", on=date(2026, 3, 1))
        a4 = (await svc.bus.wait_for("RepaymentApplied", payment_id=p4))[0].payload
        assert a4["closes_loan"] is True and a4["outstanding_total"] == "0.00"
        assert a4["next_due_date"] is None
        closed = (await svc.bus.wait_for("LoanClosed", loan_id=lid))[0].payload
        assert closed["closed_on"] == "2026-03-01" and closed["principal"] == "1200.00"
        body = await svc.wait_status(lid, "closed")
        assert body["outstanding"]["total"] == "0.00"

        # a payment for the closed loan is refused whole
        p5 = await svc.pay(lid, "50.00")
        r5 = (await svc.bus.wait_for("RepaymentRejected", payment_id=p5))[0].payload
        assert r5["reason"] == "loan_closed" and r5["refundable_amount"] == "50.00"
        assert r5["client_id"] == loan["client_id"]


async def test_late_payment_pays_the_penalty_first(infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product(
            penalty={"kind": "flat", "value": "25.00", "tolerance_days": 3})
        loan = await svc.active_loan(product, disbursed_on=D0)
        lid = loan["id"]
        cob = await close_of_business(svc.client, svc.operator, "2026-02-15")
        assert cob["status"] == "succeeded", cob
        body = await svc.get(lid)
        assert body["days_in_arrears"] == 10 and body["arrears_bucket"] == "1-30"
        assert body["outstanding"]["penalties"] == "25.00"

        pay = await svc.pay(lid, "337.00", on=date(2026, 2, 16))
        applied = (await svc.bus.wait_for("RepaymentApplied", payment_id=pay))[0].payload
        assert lines(applied) == [(1, "penalties", "25.00"), (1, "interest", "12.00"),
                                  (1, "principal", "300.00")]
        assert applied["penalties_paid"] == "25.00"
        body = await svc.get(lid)
        assert body["days_in_arrears"] == 0 and body["arrears_bucket"] == "current"
        assert (await schedule(svc, lid))[0]["status"] == "paid"


async def test_an_overpayment_closes_the_loan_and_only_the_excess_is_refundable(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product(overpayment_tolerance="5.00")
        loan = await svc.active_loan(product, disbursed_on=D0)
        lid = loan["id"]
        # every installment is due by 2026-06-01: the payoff is the 1248.00 owed, so a
        # payment of 1298.01 applies 1248.00 and leaves 50.01 to refund (no tolerance
        # matters any more: the whole payment is never refused for being too much)
        pay = await svc.pay(lid, "1298.01", on=date(2026, 6, 1))
        applied = (await svc.bus.wait_for("RepaymentApplied", payment_id=pay))[0].payload
        assert applied["closes_loan"] is True
        assert (applied["unallocated"], applied["excess"]) == ("50.01", "50.01")
        assert sum(Decimal(x["amount"]) for x in applied["allocation"]) == Decimal("1248.00")
        assert applied["interest_waived"] == "0.00" and applied["settled_early"] is False
        body = await svc.wait_status(lid, "closed")
        assert body["outstanding"]["total"] == "0.00"
        assert svc.bus.matching("RepaymentRejected", payment_id=pay) == []


async def test_unknown_and_not_yet_active_loans_are_rejected(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        unknown = await svc.pay("no-such-loan", "100.00")
        r1 = (await svc.bus.wait_for("RepaymentRejected", payment_id=unknown))[0]
        assert r1.payload["reason"] == "unknown_loan" and r1.payload["client_id"] == ""
        assert r1.key == "no-such-loan"

        product = await svc.create_product()
        client_id = await svc.register_client()
        loan = await svc.apply(client_id, product)
        early = await svc.pay(loan["id"], "100.00")
        r2 = (await svc.bus.wait_for("RepaymentRejected", payment_id=early))[0].payload
        assert r2["reason"] == "loan_not_active" and r2["refundable_amount"] == "100.00"


async def test_the_same_payment_twice_is_applied_once(infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()
        loan = await svc.active_loan(product, disbursed_on=D0)
        pid = await svc.pay(loan["id"], "100.00")
        await svc.pay(loan["id"], "100.00", payment_id=pid)  # a second event, same payment
        await svc.bus.wait_for("RepaymentApplied", payment_id=pid)
        # DisbursementCompleted and the two RepaymentReceived events were all consumed
        await svc.wait_until(
            "SELECT count(*) = 3 FROM inbox WHERE topic LIKE '%payments.events'")
        body = await svc.get(loan["id"])
        assert body["outstanding"]["total"] == "1148.00"
        assert len(svc.bus.matching("RepaymentApplied", payment_id=pid)) == 1


async def test_a_loan_reference_in_another_spelling_is_the_same_loan(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product()
        loan = await svc.active_loan(product, disbursed_on=D0)
        # upper case with Arabic-Indic digits: the same UUID once canonical
        arabic = str.maketrans("0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666"
                                             "\u0667\u0668\u0669")
        spelled = loan["id"].upper().translate(arabic)
        assert spelled != loan["id"]
        pid = await svc.pay(spelled, "100.00", on=D0)
        applied = (await svc.bus.wait_for("RepaymentApplied", payment_id=pid))[0]
        assert applied.payload["loan_id"] == loan["id"] and applied.key == loan["id"]
        # a reference with no canonical form is an unknown loan, as any unknown one
        bad = await svc.pay("loan with spaces", "100.00", on=D0)
        rejected = (await svc.bus.wait_for("RepaymentRejected", payment_id=bad))[0]
        assert rejected.payload["reason"] == "unknown_loan"
        assert rejected.payload["loan_id"] == "loan with spaces"
