"""Servicing through the public API: business date and calendar, payoff and early
settlement, prepayment rules, rescheduling by maker-checker, TEG."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from tests.infra import Infra
from tests.integration.loans.cob_helpers import close_of_business
from tests.integration.loans.harness import Loans, running_loans, token

pytestmark = pytest.mark.integration

D0 = date(2026, 1, 5)  # due 5 Feb, 5 Mar, 6 Apr (5 Apr is a Sunday), 5 May


async def open_installments(svc: Loans, loan_id: str) -> list[dict]:
    resp = await svc.client.get(f"/v1/loans/{loan_id}/schedule", headers=svc.operator)
    assert resp.status_code == 200, resp.text
    return [i for i in resp.json()["installments"] if i["status"] in ("pending", "overdue")]


async def test_business_date_and_the_holiday_calendar(infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        before = (await svc.client.get("/v1/business-date", headers=svc.partner)).json()
        assert before["last_closed"] is None and before["timezone"] == "Africa/Casablanca"
        assert before["business_date"] == before["calendar_date"]

        listed = (await svc.client.get("/v1/calendar/holidays?from=2026-01-01&to=2026-12-31",
                                       headers=svc.partner)).json()["items"]
        days = {h["date"]: h for h in listed}
        assert {"2026-01-01", "2026-01-11", "2026-01-14", "2026-05-01", "2026-07-30",
                "2026-08-14", "2026-08-20", "2026-08-21", "2026-11-06",
                "2026-11-18"} <= set(days)
        assert days["2026-03-20"]["provisional"] is True       # Aïd al-Fitr, expected
        assert days["2026-05-27"]["provisional"] and days["2026-05-28"]["provisional"]
        assert days["2026-07-30"]["provisional"] is False

        # the Ministry confirms Aïd al-Fitr a day later: moved and confirmed, audited
        moved = await svc.client.put("/v1/calendar/holidays/2026-03-20", headers=svc.operator,
                                     json={"date": "2026-03-21", "provisional": False})
        assert moved.status_code == 200, moved.text
        assert (moved.json()["date"], moved.json()["provisional"]) == ("2026-03-21", False)
        added = await svc.client.post("/v1/calendar/holidays", headers=svc.operator,
                                      json={"date": "2026-02-10", "name": "Jour férié local"})
        assert added.status_code == 201, added.text
        again = await svc.client.post("/v1/calendar/holidays", headers=svc.operator,
                                      json={"date": "2026-02-10", "name": "x"})
        assert again.status_code == 409
        bad = await svc.client.post("/v1/calendar/holidays", headers=svc.operator,
                                    json={"date": "2026-02-30", "name": "x"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"].endswith("date")
        partner = await svc.client.post("/v1/calendar/holidays", headers=svc.partner,
                                        json={"date": "2026-02-11", "name": "x"})
        assert partner.status_code == 403
        gone = await svc.client.delete("/v1/calendar/holidays/2026-02-10", headers=svc.operator)
        assert gone.status_code == 200 and gone.json()["name"] == "Jour férié local"
        audit = (await svc.client.get("/v1/calendar/audit", headers=svc.operator)).json()
        assert [(a["action"], a["subject"], a["by"]) for a in audit["items"]] == [
            ("holiday.delete", "2026-02-10", "op-maker"),
            ("holiday.create", "2026-02-10", "op-maker"),
            ("holiday.move", "2026-03-20", "op-maker")]

        # a loan disbursed on 10 Feb 2026 falls due on 10 Mar, 10 Apr, 10 May (a Sunday ->
        # Monday 11 May)
        product = await svc.create_product()
        loan = await svc.active_loan(product, disbursed_on=date(2026, 2, 10), term=3)
        assert [i["due_date"] for i in await open_installments(svc, loan["id"])] == [
            "2026-03-10", "2026-04-10", "2026-05-11"]

        # close of business advances the business date to the day after the date closed
        await close_of_business(svc.client, svc.operator, "2026-03-01")
        after = (await svc.client.get("/v1/business-date", headers=svc.partner)).json()
        assert (after["business_date"], after["last_closed"]) == ("2026-03-02", "2026-03-01")


async def test_payoff_and_early_settlement_waive_the_interest_not_earned(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        # flat 12 %, actual/365, 1200 over 4: 300 + 12 a month
        product = await svc.create_product()
        loan = await svc.active_loan(product, disbursed_on=D0)
        lid = loan["id"]
        assert (loan["teg"], loan["total_cost_of_credit"]) is not None
        disbursed = (await svc.bus.wait_for("LoanDisbursed", loan_id=lid))[0].payload
        assert disbursed["total_cost_of_credit"] == "48.00"
        assert Decimal(disbursed["teg"]) == Decimal(loan["teg"])
        p1 = await svc.pay(lid, "312.00", on=date(2026, 2, 5))
        await svc.bus.wait_for("RepaymentApplied", payment_id=p1)

        # on 2 Mar: 900 principal + 1200 * 0.12 * 25 / 365 = 9.86 accrued = 909.86;
        # 3 x 12 - 9.86 = 26.14 of interest waived
        quote = await svc.client.get(f"/v1/loans/{lid}/payoff?date=2026-03-02",
                                     headers=svc.partner)
        assert quote.status_code == 200, quote.text
        q = quote.json()
        assert (q["principal"], q["interest"], q["fees"], q["total"], q["interest_waived"]) == (
            "900.00", "9.86", "0.00", "909.86", "26.14")
        assert q["interest_accrued_from"] == "2026-02-05"
        bad = await svc.client.get(f"/v1/loans/{lid}/payoff?date=2026-13-01",
                                   headers=svc.partner)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"].endswith("date")
        early = await svc.client.get(f"/v1/loans/{lid}/payoff?date=2025-12-01",
                                     headers=svc.partner)
        assert early.status_code == 422 and early.json()["errors"][0]["field"] == "date"

        # 1000.00 paid: the loan closes, 90.14 is the only part to refund
        p2 = await svc.pay(lid, "1000.00", on=date(2026, 3, 2))
        applied = (await svc.bus.wait_for("RepaymentApplied", payment_id=p2))[0].payload
        assert (applied["closes_loan"], applied["settled_early"], applied["excess"],
                applied["unallocated"], applied["interest_waived"]) == (
            True, True, "90.14", "90.14", "26.14")
        assert (applied["principal_paid"], applied["interest_paid"]) == ("900.00", "9.86")
        settled = (await svc.bus.wait_for("LoanSettledEarly", loan_id=lid))[0].payload
        assert (settled["payoff_amount"], settled["interest_waived"], settled["excess"],
                settled["settled_on"]) == ("909.86", "26.14", "90.14", "2026-03-02")
        await svc.bus.wait_for("LoanClosed", loan_id=lid)
        body = await svc.wait_status(lid, "closed")
        assert body["outstanding"]["total"] == "0.00"


async def test_a_partial_prepayment_rebuilds_the_schedule_by_the_product_rule(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product(
            name="Declining", interest_method="declining_balance", annual_rate="0.24",
            prepayment_rule="reduce_installment")
        loan = await svc.active_loan(product, disbursed_on=D0)
        lid = loan["id"]
        # installment 1 (291.15 + 24.00) and 300.00 more: 908.85 - 300 = 608.85 over the 3
        # installments left at 2 %: 211.12 a month (see the unit reference test)
        pay = await svc.pay(lid, "615.15", on=date(2026, 2, 5))
        applied = (await svc.bus.wait_for("RepaymentApplied", payment_id=pay))[0].payload
        assert applied["outstanding_principal"] == "608.85" and applied["excess"] == "0.00"
        rebuilt = (await svc.bus.wait_for("LoanScheduleRebuilt", loan_id=lid))[0].payload
        assert (rebuilt["reason"], rebuilt["schedule_version"]) == (
            "prepayment_reduce_installment", 2)
        assert [(i["installment"], i["principal"], i["interest"])
                for i in rebuilt["installments"]] == [
            (2, "198.94", "12.18"), (3, "202.92", "8.20"), (4, "206.99", "4.14")]
        left = await open_installments(svc, lid)
        assert [(i["number"], i["outstanding"]) for i in left] == [
            (2, "211.12"), (3, "211.12"), (4, "211.13")]
        versions = (await svc.client.get(f"/v1/loans/{lid}/schedule/versions",
                                         headers=svc.partner)).json()
        assert versions["current_version"] == 2
        assert [v["reason"] for v in versions["items"]] == ["prepayment_reduce_installment"]
        assert [i["total"] for i in versions["items"][0]["installments"]] == [
            "315.15", "315.15", "315.15", "315.15"]


async def test_a_restructuring_is_previewed_then_approved_by_another_operator(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product(
            name="Declining", interest_method="declining_balance", annual_rate="0.24")
        loan = await svc.active_loan(product, disbursed_on=D0)
        other = await svc.active_loan(product, disbursed_on=D0)
        lid = loan["id"]
        await close_of_business(svc.client, svc.operator, "2026-02-10")  # inst. 1 overdue

        asked = await svc.client.post(f"/v1/loans/{lid}/reschedule", headers=svc.operator,
                                      json={"moratorium": 1, "term": 4, "grace": 1,
                                            "cure_installments": 2, "reason": "harvest lost"})
        assert asked.status_code == 201, asked.text
        request = asked.json()
        preview = request["preview"]
        assert preview["business_date"] == "2026-02-11"
        assert preview["principal_before"] == "1200.00"
        assert len(preview["installments"]) == 4 and preview["teg"]
        assert (await svc.get(lid))["schedule_version"] == 1   # nothing changed yet

        partner = await svc.client.post(f"/v1/loans/{lid}/reschedule", headers=svc.partner,
                                         json={"moratorium": 1})
        assert partner.status_code == 403
        bad = await svc.client.post(f"/v1/loans/{lid}/reschedule", headers=svc.operator,
                                    json={"moratorium": 99})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "moratorium"
        own = await svc.client.post(f"/v1/reschedule-requests/{request['id']}/approve",
                                    headers=svc.operator)
        assert own.status_code == 403
        done = await svc.client.post(f"/v1/reschedule-requests/{request['id']}/approve",
                                     headers=svc.checker)
        assert done.status_code == 200, done.text
        assert (done.json()["status"], done.json()["decided_by"]) == ("approved", "op-checker")
        twice = await svc.client.post(f"/v1/reschedule-requests/{request['id']}/approve",
                                      headers=token("operator", "op-third"))
        assert twice.status_code == 409

        # the schedule is the preview, installment by installment
        left = await open_installments(svc, lid)
        assert [{k: i[k] for k in ("number", "due_date", "principal", "interest", "fees",
                                   "penalties", "total")} for i in left] == [
            {k: str(v) if k not in ("number",) else v for k, v in row.items()}
            for row in preview["installments"]]
        body = await svc.get(lid)
        assert (body["restructured"], body["restructured_on"], body["schedule_version"],
                body["days_in_arrears"]) == (True, "2026-02-11", 2, 0)
        rebuilt = (await svc.bus.wait_for("LoanScheduleRebuilt", loan_id=lid))[0].payload
        assert (rebuilt["reason"], rebuilt["restructured"], rebuilt["approved_by"]) == (
            "restructure", True, "op-checker")

        # a bulk moratorium: one request, one approval, every loan named
        bulk = await svc.client.post("/v1/reschedule-requests/bulk-moratorium",
                                     headers=svc.operator,
                                     json={"partner_id": svc.partner_id, "moratorium": 2,
                                           "reason": "Al Haouz"})
        assert bulk.status_code == 201, bulk.text
        assert bulk.json()["preview"]["loans"] == 2
        applied = await svc.client.post(f"/v1/reschedule-requests/{bulk.json()['id']}/approve",
                                        headers=svc.checker)
        assert applied.status_code == 200, applied.text
        assert sorted(applied.json()["result"]["loans"]) == sorted([lid, other["id"]])
        assert (await svc.get(other["id"]))["restructured"] is True
        assert (await svc.get(lid))["schedule_version"] == 3
