"""Doubt is a state, not a failure: a payout the provider may have executed is never
reversed or failed on our side; only the provider's word (a status query, a late
callback, its statement) or two operators with evidence settle it.

Deadlines are reached by moving the service's clock (``clock`` fixture), not by
waiting; every wait is for a fact (an event, a row, the wallet).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import orjson
import pytest

from services.payments.handlers.payouts import settle_from_evidence
from shared.uow import UnitOfWork
from tests.integration.payments.conftest import (
    Rig,
    ShiftedClock,
    disburse,
    new_id,
    new_msisdn,
    rejected,
)
from tests.integration.payments.test_collections import collect
from tests.kafka_facts import until

pytestmark = pytest.mark.integration

PAST_THE_DEADLINE = 200.0  # seconds: the commands' deadline is 120 s away, grace 1 s


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def payout_of(rig: Rig, ident: str) -> dict[str, Any]:
    resp = await rig.api.get(f"/v1/payments/{ident}", headers=rig.auth())
    assert resp.status_code == 200, resp.text
    return resp.json()


async def row(rig: Rig, saga_id: str) -> Any:
    async with rig.pool.acquire() as conn:
        return await conn.fetchrow("SELECT * FROM payouts WHERE saga_id = $1", saga_id)


async def request_sent(rig: Rig, saga_id: str) -> bool:
    r = await row(rig, saga_id)
    return r is not None and r["request_date"] is not None


async def statement_entry(rig: Rig, saga_id: str) -> dict[str, Any] | None:
    """The provider's statement line of our request (what reconciliation reads)."""
    today = dt.datetime.now(dt.UTC).date()
    for day in (today, today - dt.timedelta(days=1)):
        data = (await rig.sim.get(f"/sim/statements/{day.isoformat()}")).json()
        for entry in data["entries"]:
            if entry["requestReference"] == saga_id:
                return dict(entry)
    return None


async def settle_as_reconciliation(rig: Rig, payout_id: str, reference: str) -> str:
    uow = UnitOfWork(rig.pool, topic_prefix=rig.settings.topic_prefix)
    async with uow:
        settled = await settle_from_evidence(uow, rig.settings, uuid.UUID(payout_id),
                                             "completed", reference, "reconciliation")
        await uow.commit()
    assert settled is not None
    return settled.status.value


def order_of(rig: Rig, saga_id: str) -> list[str]:
    return [e.type for e in rig.events.seen if e.payload.get("saga_id") == saga_id
            and e.type.startswith("Disbursement")]


async def assert_paid_once(rig: Rig, msisdn: str, loan: str, saga_id: str, amount: str
                           ) -> None:
    wallet = await rig.wallet(msisdn)
    assert wallet["payouts"] == amount and wallet["consistent"] is True
    assert len([t for t in rig.world.transactions.values() if t.msisdn == msisdn]) == 1
    assert len(await rig.lines(f"disbursement:{saga_id}")) == 2
    assert await rig.lines(f"reversal:disbursement:{saga_id}") == []
    assert await rig.portfolio(loan) == Decimal(amount)
    assert not rig.events.of("DisbursementFailed", saga_id=saga_id)
    assert (await rig.trial_balance())["balanced"] is True


async def test_a_payout_executed_but_never_answered_is_in_doubt_until_the_statement(
        rig: Rig, clock: ShiftedClock) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    # executes, never answers, and its status API denies it: only the statement knows
    await rig.configure(msisdn, execute_without_answer=True, status_unknown_s=600)
    cmd = disburse(loan, msisdn, "5000.00")
    await rig.send(cmd, key=loan)
    await until(lambda: request_sent(rig, cmd.saga_id), "the request was sent")
    await until(lambda: _wallet_payouts(rig, msisdn, "5000.00"), "the provider executed it")

    clock.advance(seconds=PAST_THE_DEADLINE)
    doubt = await rig.events.wait("DisbursementInDoubt", saga_id=cmd.saga_id)
    assert doubt["amount"] == "5000.00" and doubt["provider"] == "sim"
    view = await payout_of(rig, cmd.saga_id)
    assert view["status"] == "in_doubt" and view["in_doubt_since"]
    # nothing reversed, nothing failed; it keeps being asked, at a slower pace
    await until(lambda: _queried(rig, cmd.saga_id, 2), "asked again while in doubt")
    assert (await row(rig, cmd.saga_id))["status"] == "in_doubt"
    assert await rig.lines(f"reversal:disbursement:{cmd.saga_id}") == []

    listed = await rig.api.get("/v1/payouts/in-doubt", params={"limit": 500},
                               headers=rig.auth())
    assert listed.status_code == 200, listed.text
    [item] = [i for i in listed.json()["items"] if i["saga_id"] == cmd.saga_id]
    assert item["age_s"] >= 0 and item["kind"] == "disbursement" and item["queries"] >= 2

    # the saga's resend (a lost reply) is answered with what is known: in doubt
    await rig.send(cmd, key=loan)
    await until(lambda: _count(rig, "DisbursementInDoubt", cmd.saga_id, 2),
                "DisbursementInDoubt answered again")

    # reconciliation finds it on the provider's statement and settles it
    entry = await until(lambda: statement_entry(rig, cmd.saga_id), "on the statement")
    assert await settle_as_reconciliation(rig, view["payout_id"],
                                          entry["transactionReference"]) == "completed"
    done = await rig.events.wait("DisbursementCompleted", saga_id=cmd.saga_id)
    assert done["provider_reference"] == entry["transactionReference"]
    assert (await payout_of(rig, cmd.saga_id))["resolved_by"] == "reconciliation"
    # settling again changes nothing: the first word stands
    assert await settle_as_reconciliation(rig, view["payout_id"], "other") == "completed"
    assert order_of(rig, cmd.saga_id)[:3] == [
        "DisbursementInDoubt", "DisbursementInDoubt", "DisbursementCompleted"]
    await assert_paid_once(rig, msisdn, loan, cmd.saga_id, "5000.00")


async def test_a_payout_answered_after_the_deadline_is_settled_by_the_provider(
        rig: Rig, clock: ShiftedClock) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    # executed at once; the answer, the callback and the status API all come 4 s late
    await rig.configure(msisdn, answer_delay_s=4, status_unknown_s=4)
    cmd = disburse(loan, msisdn, "3500.00")
    await rig.send(cmd, key=loan)
    await until(lambda: request_sent(rig, cmd.saga_id), "the request was sent")
    clock.advance(seconds=PAST_THE_DEADLINE)

    await rig.events.wait("DisbursementInDoubt", saga_id=cmd.saga_id)
    done = await rig.events.wait("DisbursementCompleted", saga_id=cmd.saga_id)
    assert done["provider_reference"].startswith("SIM-")
    view = await payout_of(rig, cmd.saga_id)
    assert view["status"] == "completed" and view["resolved_by"] in ("callback", "poll")
    assert order_of(rig, cmd.saga_id) == ["DisbursementInDoubt", "DisbursementCompleted"]
    await assert_paid_once(rig, msisdn, loan, cmd.saga_id, "3500.00")


async def test_a_lost_disbursement_completed_is_answered_again(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    cmd = disburse(loan, msisdn, "700.00")
    await rig.send(cmd, key=loan)
    first = await rig.events.wait("DisbursementCompleted", saga_id=cmd.saga_id)
    await rig.send(cmd, key=loan)  # the saga's resend at its deadline
    await until(lambda: _count(rig, "DisbursementCompleted", cmd.saga_id, 2),
                "DisbursementCompleted published again")
    again = rig.events.of("DisbursementCompleted", saga_id=cmd.saga_id)[1]
    assert again["provider_reference"] == first["provider_reference"]
    assert again["amount"] == "700.00"
    await assert_paid_once(rig, msisdn, loan, cmd.saga_id, "700.00")


async def test_a_lost_disbursement_failed_is_answered_again(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    await rig.configure(msisdn, failure_rate=1.0)
    cmd = disburse(loan, msisdn, "300.00")
    await rig.send(cmd, key=loan)
    first = await rig.events.wait("DisbursementFailed", saga_id=cmd.saga_id)
    await rig.send(cmd, key=loan)
    await until(lambda: _count(rig, "DisbursementFailed", cmd.saga_id, 2),
                "DisbursementFailed published again")
    assert rig.events.of("DisbursementFailed", saga_id=cmd.saga_id)[1]["reason"] == \
        first["reason"]
    assert len(await rig.lines(f"reversal:disbursement:{cmd.saga_id}")) == 2  # one entry
    assert not rig.events.of("DisbursementCompleted", saga_id=cmd.saga_id)


async def test_an_operator_settlement_needs_evidence_and_a_second_operator(
        rig: Rig, clock: ShiftedClock) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    await rig.configure(msisdn, timeout=True)  # never answers (and never executes)
    cmd = disburse(loan, msisdn, "900.00")
    await rig.send(cmd, key=loan)
    await until(lambda: request_sent(rig, cmd.saga_id), "the request was sent")
    clock.advance(seconds=PAST_THE_DEADLINE)
    await rig.events.wait("DisbursementInDoubt", saga_id=cmd.saga_id)
    payout_id = (await payout_of(rig, cmd.saga_id))["payout_id"]
    url = f"/v1/payouts/{payout_id}/settlement"
    maker, checker = rig.auth(sub="op-maker"), rig.auth(sub="op-checker")

    bad = await rig.api.post(url, headers={**maker, **key()},
                             json={"outcome": "maybe", "evidence": "x"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "outcome"
    no_ref = await rig.api.post(url, headers={**maker, **key()},
                                json={"outcome": "completed", "evidence": "phone call"})
    assert no_ref.status_code == 422
    assert no_ref.json()["errors"][0]["field"] == "provider_reference"
    assert (await rig.api.post(url, headers={**rig.auth("partner", "partner-a"), **key()},
                               json={"outcome": "failed", "evidence": "x"})).status_code == 403

    body = {"outcome": "failed",
            "evidence": "provider operations confirmed in writing: never executed"}
    headers = {**maker, **key()}
    proposed = await rig.api.post(url, headers=headers, json=body)
    assert proposed.status_code == 202, proposed.text
    assert proposed.json()["proposal"]["proposed_by"] == "op-maker"
    again = await rig.api.post(url, headers=headers, json=body)  # same key and body
    assert again.status_code == 202 and again.json() == proposed.json()
    twice = await rig.api.post(url, headers={**maker, **key()}, json=body)
    assert twice.status_code == 409  # one open proposal at a time
    listed = await rig.api.get("/v1/payouts/in-doubt", params={"limit": 500},
                               headers=rig.auth())
    [item] = [i for i in listed.json()["items"] if i["payout_id"] == payout_id]
    assert item["proposal"]["body"]["outcome"] == "failed"

    same = await rig.api.post(f"{url}/approve", headers={**maker, **key()})
    assert same.status_code == 403, same.text
    assert same.headers["content-type"].startswith("application/problem+json")
    assert (await row(rig, cmd.saga_id))["status"] == "in_doubt"  # nothing applied

    approved = await rig.api.post(f"{url}/approve", headers={**checker, **key()},
                                  json={"note": "checked the provider's letter"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["payout"]["status"] == "failed"
    assert approved.json()["payout"]["resolved_by"] == "operator"
    failed = await rig.events.wait("DisbursementFailed", saga_id=cmd.saga_id)
    assert "never executed" in failed["reason"]
    assert await rig.portfolio(loan) == Decimal("0.00")  # reversed, on the operators' word
    assert (await rig.wallet(msisdn))["payouts"] == "0.00"

    audit = await rig.api.get(f"/v1/payouts/{payout_id}/audit", headers=rig.auth())
    assert [(a["action"], a["actor"]) for a in audit.json()["items"]] == [
        ("settlement_proposed", "op-maker"), ("settlement_approved", "op-checker")]
    # only an in-doubt payout can be settled
    late = await rig.api.post(url, headers={**maker, **key()}, json=body)
    assert late.status_code == 409
    assert late.headers["content-type"].startswith("application/problem+json")


async def test_a_provider_honouring_expiry_fails_what_it_never_received(
        rig: Rig, clock: ShiftedClock) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    resp = await rig.orange.post("/sim/config", json={
        "msisdn": msisdn, "timeout": True, "honours_expiry": True})
    assert resp.status_code == 200, resp.text
    cmd = disburse(loan, msisdn, "400.00").model_copy(update={"provider": "orange"})
    await rig.send(cmd, key=loan)
    await until(lambda: request_sent(rig, cmd.saga_id), "the request was sent")
    clock.advance(seconds=PAST_THE_DEADLINE)
    # unreachable at the deadline: in doubt; then the provider does not know it and
    # refuses anything after the expiry, so it is a failure, reversed
    await rig.events.wait("DisbursementInDoubt", saga_id=cmd.saga_id)
    failed = await rig.events.wait("DisbursementFailed", saga_id=cmd.saga_id)
    assert "honours expiry" in failed["reason"]
    assert await rig.portfolio(loan) == Decimal("0.00")


async def test_a_timed_out_refund_retried_by_two_operators_is_paid_once(
        rig: Rig, clock: ShiftedClock) -> None:
    msisdn, loan = new_msisdn(), new_id("no-such-loan")
    sent = await collect(rig, msisdn, loan, "120.00", cash_in="120.00")
    payment_id = orjson.loads(sent["callbacks"][0]["response"])["payment_id"]
    await rig.events.wait("RepaymentReceived", payment_id=payment_id)
    await rig.configure(msisdn, execute_without_answer=True, status_unknown_s=600)
    await rig.send(rejected(loan, payment_id, "120.00", msisdn), key=loan)
    saga_id = f"refund:{payment_id}"
    await until(lambda: request_sent(rig, saga_id), "the refund request was sent")
    await until(lambda: _wallet_refunds(rig, msisdn, "120.00"), "the provider executed it")

    clock.advance(seconds=rig.settings.refund_deadline_s + PAST_THE_DEADLINE)
    doubt = await rig.events.wait("RefundInDoubt", payment_id=payment_id)
    assert doubt["amount"] == "120.00"
    first = await row(rig, saga_id)
    assert first["status"] == "in_doubt"
    held = await rig.api.get("/v1/refunds/held", headers=rig.auth())
    assert payment_id not in {r["payment_id"] for r in held.json()["items"]}

    url = f"/v1/refunds/{payment_id}/retry"
    proposed = await rig.api.post(url, headers={**rig.auth(sub="op-a"), **key()},
                                  json={"note": "client says nothing arrived"})
    assert proposed.status_code == 202, proposed.text
    assert proposed.json()["status"] == "proposed"
    assert proposed.json()["proposal"]["body"]["mode"] == "resend"
    same = await rig.api.post(f"{url}/approve", headers={**rig.auth(sub="op-a"), **key()})
    assert same.status_code == 403, same.text
    approved = await rig.api.post(f"{url}/approve", headers={**rig.auth(sub="op-b"), **key()})
    assert approved.status_code == 202, approved.text
    body = approved.json()
    # the ORIGINAL request, asked (and sent) again: same payout, same correlation id
    assert body["payout_id"] == str(first["id"]) and body["status"] == "in_doubt"
    assert body["retry"]["mode"] == "resend"
    assert (body["retry"]["requested_by"], body["retry"]["approved_by"]) == ("op-a", "op-b")
    await until(lambda: _resent(rig, saga_id), "the same request was sent again")
    async with rig.pool.acquire() as conn:
        refunds = await conn.fetch("SELECT correlation_id FROM payouts WHERE payment_id = $1",
                                   uuid.UUID(payment_id))
    assert [r["correlation_id"] for r in refunds] == [first["correlation_id"]]
    assert not rig.events.of("RefundFailed", payment_id=payment_id)

    entry = await until(lambda: statement_entry(rig, saga_id), "on the statement")
    assert await settle_as_reconciliation(rig, str(first["id"]),
                                          entry["transactionReference"]) == "completed"
    await rig.events.wait("RefundIssued", payment_id=payment_id)
    assert (await payout_of(rig, payment_id))["status"] == "refunded"
    wallet = await rig.wallet(msisdn)
    assert wallet["refunds"] == "120.00" and wallet["consistent"] is True
    refunds_at_provider = [t for t in rig.world.transactions.values()
                           if t.msisdn == msisdn and t.purpose == "refund"]
    assert len(refunds_at_provider) == 1
    assert (await rig.trial_balance())["balanced"] is True
    # paid: nothing more to retry
    assert (await rig.api.post(url, headers={**rig.auth(sub="op-a"), **key()})
            ).status_code == 409


async def _wallet_payouts(rig: Rig, msisdn: str, amount: str) -> bool:
    return bool((await rig.wallet(msisdn))["payouts"] == amount)


async def _wallet_refunds(rig: Rig, msisdn: str, amount: str) -> bool:
    return bool((await rig.wallet(msisdn))["refunds"] == amount)


async def _queried(rig: Rig, saga_id: str, n: int) -> bool:
    r = await row(rig, saga_id)
    return bool(r["doubt_queries"] >= n)


async def _resent(rig: Rig, saga_id: str) -> bool:
    r = await row(rig, saga_id)
    return bool(not r["resend_requested"] and r["doubt_queries"] >= 1)


async def _count(rig: Rig, type_: str, saga_id: str, n: int) -> bool:
    return len(rig.events.of(type_, saga_id=saga_id)) >= n
