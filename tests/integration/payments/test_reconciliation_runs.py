"""Reconciliation runs: a provider's business day settled from its statement, and what
does not match raised once as alerts, whatever the number of runs."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from shared.clock import today
from tests.identity import scraper
from tests.integration.payments.conftest import (
    Rig,
    disburse,
    new_id,
    new_msisdn,
    paid_at_provider,
)
from tests.kafka_facts import until

pytestmark = pytest.mark.integration


async def run(rig: Rig, day: dt.date | None = None) -> dict[str, Any]:
    resp = await rig.api.post(f"/v1/reconciliation/sim/{day or today()}", headers=rig.auth())
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def all_alerts(rig: Rig, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 50, **({"cursor": cursor} if cursor else {})}
        resp = await rig.api.get("/v1/reconciliation/alerts", headers=rig.auth(),
                                 params=query)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_a_payout_executed_but_never_answered_is_settled_by_reconciliation(
        rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    # executed, never answered, and the status API denies it until the statement
    await rig.configure(msisdn, execute_without_answer=True, status_unknown_s=600)
    cmd = disburse(loan, msisdn, "2500.00", deadline_s=600)
    await rig.send(cmd, key=loan)

    async def paid() -> bool:
        return Decimal((await rig.wallet(msisdn))["payouts"]) == Decimal("2500.00")

    await until(paid, "the provider executed the payout")
    assert rig.events.of("DisbursementCompleted", saga_id=cmd.saga_id) == []
    report = await run(rig)
    done = await rig.events.wait("DisbursementCompleted", saga_id=cmd.saga_id)
    assert done["amount"] == "2500.00"
    async with rig.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT status, resolved_by, provider_reference FROM payouts"
                                  " WHERE saga_id = $1", cmd.saga_id)
    assert row["status"] == "completed" and row["resolved_by"] == "reconciliation"
    assert row["provider_reference"] in {r["reference"] for r in report["matched"]}
    assert report["run"]["settled_payouts"] >= 1
    assert rig.events.of("DisbursementFailed", saga_id=cmd.saga_id) == []
    assert await rig.lines(f"reversal:disbursement:{cmd.saga_id}") == []
    assert await rig.portfolio(loan) == Decimal("2500.00")
    wallet = await rig.wallet(msisdn)
    assert Decimal(wallet["payouts"]) == Decimal("2500.00")  # exactly one payout
    await rig.configure(msisdn, reset=True)


async def test_mismatches_are_raised_once_across_runs_and_resolved_by_an_operator(
        rig: Rig) -> None:
    loan = new_id("loan")
    _, ours_only = await paid_at_provider(rig, loan, "11.00", callback=True)
    _, mismatched = await paid_at_provider(rig, loan, "12.00", callback=True)
    _, theirs_only = await paid_at_provider(rig, loan, "13.00")  # callback lost, no report
    await rig.events.wait("RepaymentReceived", loan_id=loan, amount="12.00")
    await rig.events.wait("RepaymentReceived", loan_id=loan, amount="11.00")
    # the provider's books disagree with ours
    rig.world.transactions.pop(ours_only)
    rig.world.transactions[mismatched].amount = Decimal("21.00")
    expected = {ours_only: "ours_only", mismatched: "amount_mismatch",
                theirs_only: "theirs_only"}

    first = await run(rig)
    second = await run(rig)
    assert {r["reference"] for r in first["ours_only"]} >= {ours_only}
    assert {r["reference"] for r in second["theirs_only"]} >= {theirs_only}
    mine = [a for a in await all_alerts(rig, provider="sim", date=str(today()))
            if a["reference"] in expected]
    assert sorted((a["reference"], a["mismatch"]) for a in mine) == sorted(expected.items())
    by_ref = {a["reference"]: a for a in mine}
    assert by_ref[mismatched]["ours_amount"] == "12.00"
    assert by_ref[mismatched]["theirs_amount"] == "21.00"
    assert by_ref[theirs_only]["loan_id"] == loan
    assert all(a["status"] == "open" for a in mine)
    # the second run raised none of them again, and announced none again
    assert not set(second["run"]["alerts_raised_ids"]) & {a["id"] for a in mine}
    for reference, mismatch in expected.items():
        event = await rig.events.wait("ReconciliationMismatch", reference=reference)
        assert event["mismatch"] == mismatch and event["provider"] == "sim"
        assert len(rig.events.of("ReconciliationMismatch", reference=reference)) == 1
    metrics = (await rig.api.get("/metrics", headers=scraper())).text
    assert 'noria_payments_reconciliation_alerts_total{mismatch="theirs_only",provider="sim"}' \
        in metrics

    alert_id = by_ref[theirs_only]["id"]
    path = f"/v1/reconciliation/alerts/{alert_id}/resolve"
    no_note = await rig.api.post(path, json={}, headers=rig.auth())
    assert no_note.status_code == 422 and no_note.json()["errors"][0]["field"] == "note"
    wallet = await rig.api.post(path, json={"note": "x"}, headers=rig.auth("wallet", "w"))
    assert wallet.status_code == 403
    done = await rig.api.post(path, json={"note": "credited by hand, ticket 42"},
                              headers=rig.auth())
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "resolved"
    assert done.json()["resolved_by"] == "test-operator"
    assert done.json()["resolution_note"] == "credited by hand, ticket 42"
    again = await rig.api.post(path, json={"note": "twice"}, headers=rig.auth())
    assert again.status_code == 409
    await run(rig)  # a resolved alert is not raised again
    resolved = [a for a in await all_alerts(rig, provider="sim", status="resolved")
                if a["reference"] == theirs_only]
    assert len(resolved) == 1
    assert not [a for a in await all_alerts(rig, provider="sim", status="open")
                if a["reference"] == theirs_only]


async def test_an_unconfirmed_wallet_report_the_statement_lists_is_confirmed(rig: Rig) -> None:
    loan = new_id("loan")
    msisdn, reference = await paid_at_provider(rig, loan, "44.00")
    rig.world.transactions[reference].hidden_until = (
        dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))  # the status API denies it
    resp = await rig.api.post("/v1/repayments", headers={
        **rig.auth("wallet", "wallet-r"), "Idempotency-Key": str(uuid.uuid4())}, json={
        "loan_id": loan, "amount": "44.00", "currency": "MAD", "payer_msisdn": msisdn,
        "external_ref": new_id("tx"), "provider_reference": reference})
    assert resp.json()["status"] == "unconfirmed", resp.text
    report = await run(rig)
    payment_id = resp.json()["payment_id"]
    await rig.events.wait("RepaymentReceived", payment_id=payment_id)
    assert reference in {r["reference"] for r in report["matched"]}
    assert reference not in {a["reference"] for a in await all_alerts(rig, provider="sim")}
    assert len(await rig.lines(f"collection:{payment_id}")) == 2  # one entry, two lines


async def test_alert_listing_and_runs_refuse_bad_input(rig: Rig) -> None:
    for params, field in (({"date": "2026-13-01"}, "date"), ({"status": "lost"}, "status"),
                          ({"cursor": "not-a-cursor"}, "cursor"), ({"limit": 0}, "limit")):
        resp = await rig.api.get("/v1/reconciliation/alerts", headers=rig.auth(),
                                 params=params)
        assert resp.status_code == 422, (params, resp.text)
        assert field in [e["field"] for e in resp.json()["errors"]]
    resp = await rig.api.get("/v1/reconciliation/alerts", headers=rig.auth("wallet", "w"))
    assert resp.status_code == 403
    resp = await rig.api.post("/v1/reconciliation/runs", headers=rig.auth(),
                              json={"provider": "nowhere"})
    assert resp.status_code == 404
    resp = await rig.api.post("/v1/reconciliation/runs", headers=rig.auth(),
                              json={"provider": "sim", "date": "yesterday"})
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "date"
