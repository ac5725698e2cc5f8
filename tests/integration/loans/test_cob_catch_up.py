"""Close of business skipped for three nights, then run once, gives exactly what three
nightly runs (and the fourth) would have: installments, penalties, ageing, events."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tests.infra import Infra
from tests.integration.loans.cob_helpers import close_of_business
from tests.integration.loans.facts import all_published
from tests.integration.loans.harness import Loans, running_loans

pytestmark = pytest.mark.integration

PENALTY = {"kind": "flat", "value": "50.00", "tolerance_days": 1}
# first due dates 2, 3, 4 and 6 Mar 2026 (all working days), and one loan long late
DISBURSED = [date(2026, 2, 2), date(2026, 2, 3), date(2026, 2, 4), date(2026, 2, 6),
             date(2025, 12, 4)]


async def portfolio(svc: Loans) -> list[str]:
    product = await svc.create_product(penalty=PENALTY)
    ids = []
    for day in DISBURSED:
        ids.append((await svc.active_loan(product, disbursed_on=day))["id"])
    pid = await svc.pay(ids[1], "100.00", on=date(2026, 2, 20))   # part of installment 1
    await svc.bus.wait_for("RepaymentApplied", payment_id=pid)
    assert (await close_of_business(svc.client, svc.operator, "2026-03-01"))[
        "status"] == "succeeded"
    return ids


async def state(svc: Loans, ids: list[str]) -> dict[str, Any]:
    """Everything close of business decides, loans named by their place in ``ids``."""
    await all_published(svc)
    index = {loan_id: n for n, loan_id in enumerate(ids)}
    async with svc.pool.acquire() as conn:
        inst = await conn.fetch(
            "SELECT loan_id, number, due_date, status, penalties_due, penalty_applied_on"
            " FROM installments ORDER BY loan_id, number")
        loans = await conn.fetch(
            "SELECT id, days_in_arrears, arrears_bucket, arrears_as_of, bucket_changed_on"
            " FROM loans")
        events = await conn.fetch(
            "SELECT type, message_key, envelope->'payload' AS payload FROM outbox"
            " WHERE type IN ('RepaymentDue', 'LoanInArrears')")
        runs = await conn.fetch("SELECT business_date, status, stats FROM cob_runs"
                                " ORDER BY business_date")
        snaps = await conn.fetch("SELECT business_date, loans_active, par1_principal,"
                                 " par30_principal, buckets FROM portfolio_snapshots"
                                 " ORDER BY business_date")
    counts = ("installments_marked_overdue", "penalties_applied", "loans_reaged",
              "repayment_due_events", "in_arrears_events")
    return {
        "installments": sorted((index[r["loan_id"]], r["number"], r["due_date"], r["status"],
                                r["penalties_due"], r["penalty_applied_on"]) for r in inst),
        "loans": sorted((index[r["id"]], r["days_in_arrears"], r["arrears_bucket"],
                         r["arrears_as_of"], r["bucket_changed_on"]) for r in loans),
        "events": sorted((r["type"], index[r["message_key"]],
                          tuple(sorted((k, str(v)) for k, v in r["payload"].items()
                                       if k not in ("loan_id", "client_id"))))
                         for r in events),
        "runs": [(r["business_date"], r["status"], tuple(r["stats"].get(c) for c in counts))
                 for r in runs],
        "snapshots": [tuple(r) for r in snaps],
    }


async def test_three_missed_nights_are_caught_up_as_nightly_runs(
        infra: Infra, isolated_schema) -> None:
    async with running_loans(infra, isolated_schema) as nightly:
        ids = await portfolio(nightly)
        for day in ("2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"):
            await close_of_business(nightly.client, nightly.operator, day)
        expected = await state(nightly, ids)

    async with running_loans(infra, isolated_schema) as late:
        ids = await portfolio(late)
        run = await close_of_business(late.client, late.operator, "2026-03-05")
        assert run["status"] == "succeeded", run
        got = await state(late, ids)
        listed = (await late.client.get("/v1/close-of-business", headers=late.operator)).json()
        by_date = {r["business_date"]: r for r in listed["items"]}
        assert all(by_date[d]["requested_by"] == "op-maker (catch-up)"
                   for d in ("2026-03-02", "2026-03-03", "2026-03-04"))
        bdate = (await late.client.get("/v1/business-date", headers=late.operator)).json()
        assert (bdate["business_date"], bdate["last_closed"]) == ("2026-03-06", "2026-03-05")

    # the nights did something worth comparing
    assert sum(r[2][1] or 0 for r in expected["runs"]) >= 3
    assert any(e[0] == "RepaymentDue" for e in expected["events"])
    assert any(e[0] == "LoanInArrears" for e in expected["events"])
    for key in ("installments", "loans", "events", "runs"):
        assert got[key] == expected[key], key
    assert [s[1:] for s in got["snapshots"]] == [s[1:] for s in expected["snapshots"]]
    assert [s[0] for s in got["snapshots"]] == [s[0] for s in expected["snapshots"]]
