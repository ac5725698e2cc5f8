"""DisburseLoan → exactly one payout, settled by callback or poll; in doubt (never failed)
when the provider has not said by the deadline."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from tests.integration.payments.conftest import (
    Rig,
    ShiftedClock,
    disburse,
    new_id,
    new_msisdn,
)
from tests.integration.payments.facts import published_all, settled
from tests.kafka_facts import until

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
    first = await rig.events.wait("DisbursementCompleted", saga_id=cmd.saga_id)
    await settled(rig)  # every duplicate consumed, what it emitted read back
    # a resend consumed after completion is answered again, with the same payout
    assert {e["provider_reference"] for e in rig.events.of(
        "DisbursementCompleted", saga_id=cmd.saga_id)} == {first["provider_reference"]}
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
    await published_all(rig.pool, rig.events)  # both callbacks answered: their events out
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


async def test_a_provider_that_never_answers_leaves_the_payout_in_doubt_not_failed(
        rig: Rig, clock: ShiftedClock) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    await rig.configure(msisdn, timeout=True)
    cmd = disburse(loan, msisdn, "2000.00")
    await rig.send(cmd, key=loan)
    await until(lambda: _sent(rig, cmd.saga_id), "the request was sent")
    clock.advance(seconds=200)  # past the deadline and its grace
    doubt = await rig.events.wait("DisbursementInDoubt", saga_id=cmd.saga_id)
    assert "deadline" in doubt["reason"]
    view = await payout_view(rig, cmd.saga_id)
    assert view["status"] == "in_doubt" and view["resolved_by"] is None
    # the money may have left: nothing reversed, nothing failed
    assert await rig.portfolio(loan) == Decimal("2000.00")
    assert await rig.lines(f"reversal:disbursement:{cmd.saga_id}") == []
    assert not rig.events.of("DisbursementFailed", saga_id=cmd.saga_id)
    assert not rig.events.of("DisbursementCompleted", saga_id=cmd.saga_id)


async def _sent(rig: Rig, saga_id: str) -> bool:
    async with rig.pool.acquire() as conn:
        return bool(await conn.fetchval(
            "SELECT request_date IS NOT NULL FROM payouts WHERE saga_id = $1", saga_id))


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
    # the payout is final and was never sent: the worker has nothing left to send
    async with rig.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT status, request_date FROM payouts"
                                  " WHERE saga_id = $1", cmd.saga_id)
    assert row is not None and (row["status"], row["request_date"]) == ("failed", None)
    assert [t for t in rig.world.transactions.values() if t.msisdn == msisdn] == []
