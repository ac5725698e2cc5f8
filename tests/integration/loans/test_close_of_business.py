"""Close of business on a small portfolio: overdue, penalties, ageing, PAR, events, re-runs."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from services.loans.repository import cob as cob_sql
from tests.infra import Infra
from tests.integration.loans.cob_helpers import close_of_business, wait_for_run
from tests.integration.loans.facts import output_reader, settled
from tests.integration.loans.harness import running_loans

pytestmark = pytest.mark.integration

PENALTY = {"kind": "flat", "value": "50.00", "tolerance_days": 5}


async def test_a_night_on_a_small_portfolio_and_its_rerun(infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        # flat 12 %, 1200 over 4 months: 300 principal + 12 interest = 312 a month
        product = await svc.create_product(penalty=PENALTY)
        a = await svc.active_loan(product, disbursed_on=date(2026, 1, 5))   # nothing paid
        b = await svc.active_loan(product, disbursed_on=date(2026, 1, 5))   # paid 1 of 4
        c = await svc.active_loan(product, disbursed_on=date(2026, 1, 5))   # paid 2 of 4
        d = await svc.active_loan(product, disbursed_on=date(2025, 10, 1))  # nothing paid
        e = await svc.active_loan(product, disbursed_on=date(2026, 2, 23))  # first due 23 Mar
        for loan, amount in ((b, "312.00"), (c, "624.00")):
            pid = await svc.pay(loan["id"], amount, on=date(2026, 2, 4))
            await svc.bus.wait_for("RepaymentApplied", payment_id=pid)

        resp = await svc.client.post("/v1/close-of-business", headers=svc.operator,
                                     json={"business_date": "2026-03-20"})
        assert resp.status_code == 202, resp.text
        assert resp.json()["attempts"] == 1
        run = await wait_for_run(svc.client, svc.operator, resp.headers["location"])
        assert run["status"] == "succeeded", run
        # a: 5 Feb + 5 Mar; b: 5 Mar; d: 1 Nov, 1 Dec, 1 Jan, 1 Feb
        # (d's 1 Nov 2025 is a Saturday: due Monday 3 Nov, so 137 days late on 20 Mar)
        assert run["counts"]["installments_marked_overdue"] == 7
        assert run["counts"]["penalties_applied"] == 7
        assert (run["counts"]["repayment_due_events"], run["counts"]["in_arrears_events"]) == (
            1, 3)

        expected = {a["id"]: (43, "31-60", "100.00"), b["id"]: (15, "1-30", "50.00"),
                    c["id"]: (0, "current", "0.00"), d["id"]: (137, "90+", "200.00"),
                    e["id"]: (0, "current", "0.00")}
        for loan_id, (days, bucket, penalties) in expected.items():
            body = await svc.get(loan_id)
            assert (body["days_in_arrears"], body["arrears_bucket"],
                    body["outstanding"]["penalties"]) == (days, bucket, penalties), loan_id

        portfolio = (await svc.client.get("/v1/portfolio", headers=svc.operator)).json()
        assert portfolio["as_of_business_date"] == "2026-03-20"
        assert portfolio["outstanding_principal"] == "5100.00"
        # PAR(N) = principal of loans more than N days late / 5100:
        # PAR1 = a+b+d = 3300, PAR30 = a+d = 2400, PAR90 = d = 1200
        assert {k: v["ratio"] for k, v in portfolio["par"].items()} == {
            "par1": "0.6471", "par30": "0.4706", "par90": "0.2353"}
        assert portfolio["par"]["par30"]["principal"] == "2400.00"
        assert portfolio["arrears_buckets"] == {
            "current": {"loans": 2, "principal": "1800.00"},
            "1-30": {"loans": 1, "principal": "900.00"},
            "31-60": {"loans": 1, "principal": "1200.00"},
            "61-90": {"loans": 0, "principal": "0.00"},
            "90+": {"loans": 1, "principal": "1200.00"}}
        assert portfolio["last_snapshot"]["par"]["par30"]["ratio"] == "0.4706"
        assert portfolio["last_snapshot"]["arrears_buckets"]["90+"] == {
            "loans": 1, "principal": "1200.00"}

        in_arrears = await svc.bus.wait_for("LoanInArrears", count=3,
                                            business_date="2026-03-20")
        # built in SQL, the envelopes still validate against the contract
        arrears = {m.env.parse().loan_id: m.payload for m in in_arrears}  # type: ignore[attr-defined]
        assert {k: (v["days_in_arrears"], v["bucket"], v["amount_overdue"])
                for k, v in arrears.items()} == {
            a["id"]: (43, "31-60", "724.00"), b["id"]: (15, "1-30", "362.00"),
            d["id"]: (137, "90+", "1448.00")}
        due = (await svc.bus.wait_for("RepaymentDue", business_date="2026-03-20"))[0]
        assert due.key == e["id"] and due.env.parse() is not None
        assert (due.payload["due_date"], due.payload["installment"], due.payload["amount"]) == (
            "2026-03-23", 1, "312.00")

        # the same date again: nothing changes, nothing is sent
        outbox_before = await svc.count("outbox")
        again = await svc.client.post("/v1/close-of-business", headers=svc.operator,
                                      json={"business_date": "2026-03-20"})
        assert again.status_code == 200, again.text
        assert again.json()["run_id"] == run["run_id"] and again.json()["attempts"] == 1
        assert again.json()["counts"]["penalties_applied"] == 7
        assert await svc.count("outbox") == outbox_before
        assert (await svc.get(a["id"]))["outstanding"]["penalties"] == "100.00"

        # the next night: arrears age by a day, no bucket moved, no penalty twice
        nxt = await close_of_business(svc.client, svc.operator, "2026-03-21")
        assert (nxt["counts"]["penalties_applied"], nxt["counts"]["in_arrears_events"]) == (0, 0)
        assert (await svc.get(a["id"]))["days_in_arrears"] == 44
        async with output_reader(svc) as sent:
            await settled(svc, sent)   # all both nights wrote is on Kafka and read
            assert len(sent.matching("LoanInArrears", loan_id=a["id"])) == 1
        history = (await svc.client.get("/v1/portfolio/history", headers=svc.operator)).json()
        assert [(h["business_date"], h["par"]["par90"]["ratio"]) for h in history["items"]] == [
            ("2026-03-21", "0.2353"), ("2026-03-20", "0.2353")]

        # business dates only move forward
        back = await svc.client.post("/v1/close-of-business", headers=svc.operator,
                                     json={"business_date": "2026-03-19"})
        assert back.status_code == 422
        assert back.json()["errors"][0]["field"] == "business_date"


async def test_write_off_after_enough_days_in_arrears(infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema, write_off_min_days_in_arrears=90) as svc:
        product = await svc.create_product(penalty=PENALTY)
        recent = await svc.active_loan(product, disbursed_on=date(2026, 1, 5))
        old = await svc.active_loan(product, disbursed_on=date(2025, 10, 1))
        assert (await close_of_business(svc.client, svc.operator, "2026-03-20"))[
            "status"] == "succeeded"

        too_soon = await svc.client.post(f"/v1/loans/{recent['id']}/write-off",
                                         headers=svc.operator, json={})
        assert too_soon.status_code == 409
        assert too_soon.headers["content-type"] == "application/problem+json"
        assert too_soon.json()["errors"][0]["field"] == "days_in_arrears"

        partner = await svc.client.post(f"/v1/loans/{old['id']}/write-off",
                                        headers=svc.partner, json={})
        assert partner.status_code == 403

        # maker-checker: proposed by one operator, nothing written off until another approves
        proposed = await svc.client.post(f"/v1/loans/{old['id']}/write-off",
                                         headers=svc.operator,
                                         json={"reason": "unreachable since November"})
        assert proposed.status_code == 202, proposed.text
        request_id = proposed.json()["id"]
        assert (proposed.json()["status"], proposed.json()["proposed_by"]) == (
            "pending", "op-maker")
        assert (await svc.get(old["id"]))["status"] == "active"
        twice = await svc.client.post(f"/v1/loans/{old['id']}/write-off", headers=svc.checker,
                                      json={})
        assert twice.status_code == 409
        own = await svc.client.post(f"/v1/loan-requests/{request_id}/approve",
                                    headers=svc.operator)
        assert own.status_code == 403, own.text
        assert (await svc.get(old["id"]))["status"] == "active"
        done = await svc.client.post(f"/v1/loan-requests/{request_id}/approve",
                                     headers=svc.checker)
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "approved"
        assert (await svc.get(old["id"]))["status"] == "written_off"
        event = (await svc.bus.wait_for("LoanWrittenOff", loan_id=old["id"]))[0].payload
        assert (event["principal_written_off"], event["interest_written_off"],
                event["fees_written_off"], event["penalties_written_off"],
                event["days_in_arrears"], event["written_off_by"], event["proposed_by"]) == (
            "1200.00", "48.00", "0.00", "200.00", 137, "op-checker", "op-maker")
        again = await svc.client.post(f"/v1/loans/{old['id']}/write-off", headers=svc.operator,
                                      json={})
        assert again.status_code == 409
        portfolio = (await svc.client.get("/v1/portfolio", headers=svc.operator)).json()
        assert portfolio["outstanding_principal"] == "1200.00"
        assert portfolio["loans_by_status"]["written_off"] == 1

        # money received afterwards is a recovery: applied, the loan stays written off
        pid = await svc.pay(old["id"], "100.00")
        applied = (await svc.bus.wait_for("RepaymentApplied", payment_id=pid))[0].payload
        assert (applied["recovery"], applied["recovered_total"], applied["closes_loan"],
                applied["unallocated"], applied["outstanding_principal"]) == (
            True, "100.00", False, "0.00", "0.00")
        # the oldest installment first, penalties -> fees -> interest -> principal:
        # 50.00 penalty, 12.00 interest, 38.00 principal; 1 448.00 - 100.00 still owed
        assert (applied["penalties_paid"], applied["interest_paid"],
                applied["principal_paid"]) == ("50.00", "12.00", "38.00")
        assert applied["outstanding_total"] == "1348.00"
        loan = await svc.get(old["id"])
        assert (loan["status"], loan["recovered_amount"]) == ("written_off", "100.00")
        # beyond what was written off: the excess alone is left unallocated (refunded)
        pid = await svc.pay(old["id"], "1400.00")
        applied = (await svc.bus.wait_for("RepaymentApplied", payment_id=pid))[0].payload
        assert (applied["recovery"], applied["recovered_total"], applied["unallocated"],
                applied["outstanding_total"]) == (True, "1448.00", "52.00", "0.00")
        assert (await svc.get(old["id"]))["status"] == "written_off"


async def test_a_night_that_failed_after_ageing_tells_each_arrears_once_when_rerun(
        infra: Infra, isolated_schema, monkeypatch: pytest.MonkeyPatch) -> None:
    """LoanInArrears goes out with the ageing, in its transaction: a night whose events
    transaction failed is run again without telling the same arrears a second time, and
    the loan it told is cured once when repaid."""
    original = cob_sql.emit_repayment_due
    failures = [RuntimeError("the events transaction failed")]

    async def failing_once(*args: Any, **kwargs: Any) -> int:
        if failures:
            raise failures.pop()
        return await original(*args, **kwargs)

    monkeypatch.setattr(cob_sql, "emit_repayment_due", failing_once)
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product(penalty=PENALTY)
        late = await svc.active_loan(product, disbursed_on=date(2026, 1, 5))  # due 5 Feb, 5 Mar
        first = await svc.client.post("/v1/close-of-business", headers=svc.operator,
                                      json={"business_date": "2026-03-20"})
        assert first.status_code == 202, first.text
        failed = await wait_for_run(svc.client, svc.operator, first.headers["location"])
        assert failed["status"] == "failed", failed
        again = await svc.client.post("/v1/close-of-business", headers=svc.operator,
                                      json={"business_date": "2026-03-20"})
        assert again.status_code == 202, again.text
        run = await wait_for_run(svc.client, svc.operator, again.headers["location"])
        assert (run["status"], run["attempts"]) == ("succeeded", 2), run
        # the second attempt found the loan already aged and told
        assert (run["counts"]["loans_reaged"], run["counts"]["in_arrears_events"]) == (0, 0)
        body = await svc.get(late["id"])
        assert (body["days_in_arrears"], body["arrears_bucket"]) == (43, "31-60")

        pid = await svc.pay(late["id"], "724.00", on=date(2026, 3, 21))   # both, penalised
        await svc.bus.wait_for("RepaymentApplied", payment_id=pid)
        await close_of_business(svc.client, svc.operator, "2026-03-21")
        async with output_reader(svc) as sent:
            await settled(svc, sent)
            told = sent.matching("LoanInArrears", loan_id=late["id"])
            assert [(m.payload["business_date"], m.payload["bucket"]) for m in told] == [
                ("2026-03-20", "31-60")]
            assert len(sent.matching("LoanArrearsCured", loan_id=late["id"])) == 1
