"""DisburseLoan → exactly one payout, settled by callback, poll or deadline."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from tests.integration.payments.conftest import Rig, disburse, new_id, new_msisdn

pytestmark = pytest.mark.integration


async def payout_view(rig: Rig, saga_id: str) -> dict:
    resp = await rig.api.get(f"/v1/payments/{saga_id}", headers=rig.auth())
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_a_payout_completed_by_callback_debits_the_loan_portfolio_once(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    cmd = disburse(loan, msisdn, "5000.00")
    await rig.send(cmd, key=loan)
    done = await rig.events.wait("DisbursementCompleted", saga_id=cmd.saga_id)
    assert done["amount"] == "5000.00" and done["msisdn"] == msisdn
    assert done["provider"] == "sim" and done["provider_reference"].startswith("SIM-")
    assert (await payout_view(rig, cmd.saga_id))["resolved_by"] == "callback"
    wallet = await rig.wallet(msisdn)
    assert wallet["payouts"] == "5000.00" and wallet["balance"] == "5000.00"
    assert await rig.portfolio(loan) == Decimal("5000.00")
    assert (await rig.trial_balance())["balanced"] is True


async def test_duplicate_commands_pay_out_once(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    cmd = disburse(loan, msisdn, "1200.00")
    env = await rig.send(cmd, key=loan)
    await rig.send(cmd, key=loan, env=env)            # the same record redelivered
    await rig.send(cmd, key=loan)                     # the saga resending its command
    tampered = cmd.model_copy(update={"amount": Decimal("9999.00")})
    await rig.send(tampered, key=loan)                # same saga id, another body: refused
    await rig.events.wait("DisbursementCompleted", saga_id=cmd.saga_id)
    await asyncio.sleep(2.0)  # let every duplicate be consumed
    assert len(rig.events.of("DisbursementCompleted", saga_id=cmd.saga_id)) == 1
    assert not rig.events.of("DisbursementFailed", saga_id=cmd.saga_id)
    wallet = await rig.wallet(msisdn)
    assert wallet["payouts"] == "1200.00"
    assert await rig.portfolio(loan) == Decimal("1200.00")
    assert len(await rig.lines(f"disbursement:{cmd.saga_id}")) == 2


async def test_a_lost_callback_is_made_up_for_by_polling(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    await rig.configure(msisdn, lose_callbacks=True)
    cmd = disburse(loan, msisdn, "800.00")
    await rig.send(cmd, key=loan)
    await rig.events.wait("DisbursementCompleted", saga_id=cmd.saga_id)
    assert (await payout_view(rig, cmd.saga_id))["resolved_by"] == "poll"
    deliveries = (await rig.sim.get("/sim/callbacks", params={"reference": (
        await payout_view(rig, cmd.saga_id))["provider_reference"]})).json()
    assert [d["lost"] for d in deliveries] == [True]
    assert (await rig.wallet(msisdn))["payouts"] == "800.00"
    assert await rig.portfolio(loan) == Decimal("800.00")


async def test_duplicated_callbacks_settle_the_payout_once(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    await rig.configure(msisdn, duplicate_callbacks=True)
    cmd = disburse(loan, msisdn, "650.00")
    await rig.send(cmd, key=loan)
    await rig.events.wait("DisbursementCompleted", saga_id=cmd.saga_id)
    ref = (await payout_view(rig, cmd.saga_id))["provider_reference"]
    for _ in range(50):
        deliveries = (await rig.sim.get("/sim/callbacks", params={"reference": ref})).json()
        if len(deliveries) == 2:
            break
        await asyncio.sleep(0.1)
    assert [d["status"] for d in deliveries] == [200, 200]
    await asyncio.sleep(0.5)
    assert len(rig.events.of("DisbursementCompleted", saga_id=cmd.saga_id)) == 1
    assert (await rig.wallet(msisdn))["payouts"] == "650.00"


async def test_a_failed_payout_is_reversed_and_reported(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    await rig.configure(msisdn, failure_rate=1.0)
    cmd = disburse(loan, msisdn, "3000.00")
    await rig.send(cmd, key=loan)
    failed = await rig.events.wait("DisbursementFailed", saga_id=cmd.saga_id)
    assert failed["amount"] == "3000.00" and "refused" in failed["reason"]
    assert not rig.events.of("DisbursementCompleted", saga_id=cmd.saga_id)
    assert await rig.portfolio(loan) == Decimal("0.00")
    lines = await rig.lines(f"reversal:disbursement:{cmd.saga_id}")
    assert {(r["account_id"], r["side"]) for r in lines} == {
        (f"portfolio:{loan}", "credit"), ("settlement:sim", "debit")}
    wallet = await rig.wallet(msisdn)
    assert wallet["payouts"] == "0.00" and wallet["balance"] == "0.00"
    assert (await payout_view(rig, cmd.saga_id))["status"] == "failed"
    assert (await rig.trial_balance())["balanced"] is True


async def test_a_provider_that_never_answers_fails_the_payout_at_the_deadline(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    await rig.configure(msisdn, timeout=True)
    cmd = disburse(loan, msisdn, "2000.00", deadline_s=3)
    await rig.send(cmd, key=loan)
    failed = await rig.events.wait("DisbursementFailed", saga_id=cmd.saga_id, timeout_s=40)
    assert "deadline" in failed["reason"]
    view = await payout_view(rig, cmd.saga_id)
    assert view["status"] == "failed" and view["resolved_by"] == "deadline"
    assert await rig.portfolio(loan) == Decimal("0.00")
    assert (await rig.wallet(msisdn))["payouts"] == "0.00"
    assert not rig.events.of("DisbursementCompleted", saga_id=cmd.saga_id)


async def test_an_unknown_provider_fails_without_touching_the_ledger(rig: Rig) -> None:
    loan = new_id("loan")
    cmd = disburse(loan, new_msisdn(), "100.00").model_copy(update={"provider": "nowhere"})
    await rig.send(cmd, key=loan)
    failed = await rig.events.wait("DisbursementFailed", saga_id=cmd.saga_id)
    assert failed["reason"].startswith("unknown_provider")
    assert await rig.lines(f"disbursement:{cmd.saga_id}") == []


async def test_a_command_arriving_after_its_deadline_pays_nothing(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    cmd = disburse(loan, msisdn, "400.00", deadline_s=-1)
    await rig.send(cmd, key=loan)
    failed = await rig.events.wait("DisbursementFailed", saga_id=cmd.saga_id)
    assert "deadline" in failed["reason"]
    assert (await rig.wallet(msisdn))["payouts"] == "0.00"
    assert await rig.portfolio(loan) == Decimal("0.00")
    await asyncio.sleep(0.5)  # a request sent would have been processed by now
    assert [t for t in rig.world.transactions.values() if t.msisdn == msisdn] == []
