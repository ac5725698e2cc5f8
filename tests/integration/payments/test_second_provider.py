"""A second mobile-money provider is configuration, not code."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from tests.integration.payments.conftest import ORANGE_SECRET, Rig, disburse, new_id, new_msisdn

pytestmark = pytest.mark.integration


async def settlement(rig: Rig, provider: str) -> Decimal:
    resp = await rig.api.get(f"/v1/accounts/settlement:{provider}/statement",
                             headers=rig.auth(), params={"limit": 1})
    return Decimal(resp.json()["account"]["balance"])


async def test_payouts_and_collections_through_a_second_provider(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    before = await settlement(rig, "orange")
    cmd = disburse(loan, msisdn, "900.00").model_copy(update={"provider": "orange"})
    await rig.send(cmd, key=loan)
    done = await rig.events.wait("DisbursementCompleted", saga_id=cmd.saga_id)
    assert done["provider"] == "orange" and done["provider_reference"].startswith("ORANGE-")
    assert (await rig.orange.get(f"/sim/wallets/{msisdn}")).json()["payouts"] == "900.00"
    assert (await rig.wallet(msisdn))["payouts"] == "0.00"  # not through the other one
    assert await settlement(rig, "orange") == before - Decimal("900.00")

    resp = await rig.orange.post("/sim/collections",
                                 json={"msisdn": msisdn, "amount": "100.00", "reference": loan})
    [delivery] = resp.json()["callbacks"]
    assert delivery["status"] == 200
    payment_id = orjson.loads(delivery["response"])["payment_id"]
    received = await rig.events.wait("RepaymentReceived", payment_id=payment_id)
    assert received["provider"] == "orange"
    assert await settlement(rig, "orange") == before - Decimal("800.00")


async def test_each_provider_verifies_with_its_own_secret(rig: Rig) -> None:
    body = {"transactionReference": "ORANGE-X", "type": "merchantpay", "amount": "1.00",
            "currency": "MAD"}
    raw, headers = rig.signed(body)  # signed with the other provider's secret
    resp = await rig.api.post("/v1/mobile-money/orange/callbacks", content=raw, headers=headers)
    assert resp.status_code == 401
    raw, headers = rig.signed(body, secret=ORANGE_SECRET)
    resp = await rig.api.post("/v1/mobile-money/sim/callbacks", content=raw, headers=headers)
    assert resp.status_code == 401
    resp = await rig.api.post("/v1/mobile-money/nowhere/callbacks", content=raw,
                              headers=headers)
    assert resp.status_code == 404
