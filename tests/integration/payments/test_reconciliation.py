"""Ledger vs the provider's statement of a business day (read only)."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest

from shared.clock import today as business_today
from tests.integration.payments.conftest import Rig, disburse, new_id, new_msisdn

pytestmark = pytest.mark.integration


async def test_reconciliation_matches_what_both_sides_know_and_flags_the_rest(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    cmd = disburse(loan, msisdn, "700.00")
    await rig.send(cmd, key=loan)
    done = await rig.events.wait("DisbursementCompleted", saga_id=cmd.saga_id)
    seen = await rig.sim.post("/sim/collections",
                              json={"msisdn": msisdn, "amount": "70.00", "reference": loan})
    assert orjson.loads(seen.json()["callbacks"][0]["response"])["status"] == "accepted"
    lost_msisdn = new_msisdn()
    await rig.configure(lost_msisdn, lose_callbacks=True)
    await rig.sim.post("/sim/cash-in", json={"msisdn": lost_msisdn, "amount": "30.00"})
    lost = await rig.sim.post("/sim/collections",
                              json={"msisdn": lost_msisdn, "amount": "30.00",
                                    "reference": loan})
    today = business_today()  # the institution's day (Africa/Casablanca)
    resp = await rig.api.get(f"/v1/reconciliation/sim/{today}", headers=rig.auth())
    assert resp.status_code == 200, resp.text
    report = resp.json()
    matched = {r["reference"]: r["amount"] for r in report["matched"]}
    assert matched[done["provider_reference"]] == "700.00"
    assert matched[seen.json()["transactionReference"]] == "70.00"
    theirs_only = {r["reference"]: r["amount"] for r in report["theirs_only"]}
    assert theirs_only[lost.json()["transactionReference"]] == "30.00"
    assert report["summary"]["reconciled"] is False
    assert not any(r["reference"] == done["provider_reference"]
                   for r in report["ours_only"] + report["amount_mismatch"])
    yesterday = today - dt.timedelta(days=1)
    resp = await rig.api.get(f"/v1/reconciliation/sim/{yesterday}", headers=rig.auth())
    assert resp.json()["matched"] == []
    resp = await rig.api.get(f"/v1/reconciliation/nowhere/{today}", headers=rig.auth())
    assert resp.status_code == 404
