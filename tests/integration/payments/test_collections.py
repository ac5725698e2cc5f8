"""Signed collection callbacks: verified, confirmed with the provider, credited once."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import orjson
import pytest

from tests.integration.payments.conftest import Rig, new_id, new_msisdn, rejected
from tests.integration.payments.facts import published_all, refund_payouts, settled

pytestmark = pytest.mark.integration


async def collect(rig: Rig, msisdn: str, loan: str, amount: str, cash_in: str = "1000.00"
                  ) -> dict[str, Any]:
    resp = await rig.sim.post("/sim/cash-in", json={"msisdn": msisdn, "amount": cash_in})
    assert resp.status_code == 201, resp.text
    resp = await rig.sim.post("/sim/collections",
                              json={"msisdn": msisdn, "amount": amount, "reference": loan})
    assert resp.status_code == 201, resp.text
    return resp.json()


async def payments_for(rig: Rig, ref: str) -> list[Any]:
    async with rig.pool.acquire() as conn:
        return await conn.fetch("SELECT * FROM payments WHERE provider_reference = $1", ref)


def collection_body(ref: str, loan: str, msisdn: str, amount: str) -> dict[str, Any]:
    return {"transactionReference": ref, "type": "merchantpay", "amount": amount,
            "currency": "MAD", "transactionStatus": "completed",
            "debitParty": [{"key": "msisdn", "value": msisdn}],
            "creditParty": [{"key": "accountid", "value": loan}]}


async def test_a_collection_callback_is_confirmed_and_credited_to_suspense(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    sent = await collect(rig, msisdn, loan, "300.00")
    [delivery] = sent["callbacks"]
    assert delivery["status"] == 200, delivery
    payment_id = orjson.loads(delivery["response"])["payment_id"]
    received = await rig.events.wait("RepaymentReceived", payment_id=payment_id)
    assert received["loan_id"] == loan and received["amount"] == "300.00"
    assert received["payer_msisdn"] == msisdn and received["provider"] == "sim"
    assert received["external_ref"] == sent["transactionReference"]
    assert {(r["account_id"], r["side"], r["amount"])
            for r in await rig.lines(f"collection:{payment_id}")} == {
        ("settlement:sim", "debit", Decimal("300.00")), ("suspense", "credit", Decimal("300.00"))}
    resp = await rig.api.get(f"/v1/payments/{payment_id}", headers=rig.auth())
    assert resp.json()["status"] == "received" and resp.json()["source"] == "callback"
    assert (await rig.trial_balance())["balanced"] is True


async def test_duplicate_callbacks_credit_once(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    await rig.configure(msisdn, duplicate_callbacks=True)
    sent = await collect(rig, msisdn, loan, "120.00")
    first, second = sent["callbacks"]
    assert first["webhook_id"] != second["webhook_id"]
    assert (first["status"], second["status"]) == (200, 200)
    a, b = orjson.loads(first["response"]), orjson.loads(second["response"])
    assert (a["status"], b["status"]) == ("accepted", "duplicate")
    assert a["payment_id"] == b["payment_id"]
    await rig.events.wait("RepaymentReceived", payment_id=a["payment_id"])
    await published_all(rig.pool, rig.events)  # both callbacks were answered
    assert len(rig.events.of("RepaymentReceived", external_ref=sent["transactionReference"])) == 1
    assert len(await payments_for(rig, sent["transactionReference"])) == 1
    assert len(await rig.lines(f"collection:{a['payment_id']}")) == 2


async def test_a_replayed_callback_is_refused_and_moves_nothing(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    sent = await collect(rig, msisdn, loan, "75.00")
    [original] = (await rig.sim.get("/sim/callbacks",
                                    params={"reference": sent["transactionReference"]})).json()
    resp = await rig.callback(original["body"].encode(), original["headers"])  # byte for byte
    assert resp.status_code == 409
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["errors"][0]["field"] == "webhook-id"
    assert len(await payments_for(rig, sent["transactionReference"])) == 1
    await published_all(rig.pool, rig.events)  # the replay was answered
    assert len(rig.events.of("RepaymentReceived", external_ref=sent["transactionReference"])) == 1


async def test_a_bad_signature_is_refused_and_writes_nothing(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    await rig.configure(msisdn, lose_callbacks=True)
    sent = await collect(rig, msisdn, loan, "90.00")
    ref = sent["transactionReference"]
    raw, headers = rig.signed(collection_body(ref, loan, msisdn, "90.00"),
                              secret="whsec_d3Jvbmctc2VjcmV0")
    resp = await rig.callback(raw, headers)
    assert resp.status_code == 401
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["errors"][0]["field"] == "webhook-signature"
    # a valid signature over another body does not carry over either
    raw2, headers2 = rig.signed(collection_body(ref, loan, msisdn, "90.00"))
    resp = await rig.callback(raw2.replace(b"90.00", b"9000.00"), headers2)
    assert resp.status_code == 401
    assert await payments_for(rig, ref) == []


async def test_a_stale_timestamp_is_refused(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    await rig.configure(msisdn, lose_callbacks=True)
    sent = await collect(rig, msisdn, loan, "60.00")
    ref = sent["transactionReference"]
    raw, headers = rig.signed(collection_body(ref, loan, msisdn, "60.00"),
                              ts=int(time.time()) - 301)
    resp = await rig.callback(raw, headers)
    assert resp.status_code == 401
    assert resp.json()["errors"][0]["field"] == "webhook-timestamp"
    assert await payments_for(rig, ref) == []
    # the same callback, fresh, is accepted: only the timestamp was wrong
    raw, headers = rig.signed(collection_body(ref, loan, msisdn, "60.00"))
    resp = await rig.callback(raw, headers)
    assert resp.status_code == 200 and resp.json()["status"] == "accepted"


async def test_an_amount_the_provider_does_not_confirm_is_refused(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    await rig.configure(msisdn, lose_callbacks=True)
    sent = await collect(rig, msisdn, loan, "50.00")
    ref = sent["transactionReference"]
    raw, headers = rig.signed(collection_body(ref, loan, msisdn, "5000.00"))
    resp = await rig.callback(raw, headers)
    assert resp.status_code == 422
    body = resp.json()
    assert body["errors"][0]["field"] == "amount" and "amount_mismatch" in body["detail"]
    assert await payments_for(rig, ref) == []
    # a transaction the provider never heard of is refused too
    raw, headers = rig.signed(collection_body("SIM-FORGED0000000", loan, msisdn, "50.00"))
    resp = await rig.callback(raw, headers)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "transactionReference"
    # the genuine amount goes through, once
    raw, headers = rig.signed(collection_body(ref, loan, msisdn, "50.00"))
    resp = await rig.callback(raw, headers, method="PUT")
    assert resp.status_code == 200 and resp.json()["status"] == "accepted"
    [row] = await payments_for(rig, ref)
    assert row["amount"] == Decimal("50.00")


async def test_an_unknown_loan_reference_is_refunded_once(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("no-such-loan")
    sent = await collect(rig, msisdn, loan, "400.00", cash_in="400.00")
    payment_id = orjson.loads(sent["callbacks"][0]["response"])["payment_id"]
    received = await rig.events.wait("RepaymentReceived", payment_id=payment_id)
    assert received["loan_id"] == loan
    assert (await rig.wallet(msisdn))["balance"] == "0.00"
    # loans does not know the loan: it rejects the whole payment
    rejection = rejected(loan, payment_id, "400.00", msisdn)
    env = await rig.send(rejection, key=loan)
    await rig.send(rejection, key=loan, env=env)  # redelivered
    await rig.send(rejection, key=loan)           # sent again
    issued = await rig.events.wait("RefundIssued", payment_id=payment_id)
    assert issued.get("savings_account_id") is None  # a loan's repayment
    assert issued["amount"] == "400.00" and issued["msisdn"] == msisdn
    await settled(rig)  # the redelivered and resent rejections were read
    assert len(rig.events.of("RefundIssued", payment_id=payment_id)) == 1
    assert await refund_payouts(rig.pool, payment_id) == ["completed"]
    wallet = await rig.wallet(msisdn)
    assert wallet["refunds"] == "400.00" and wallet["balance"] == "400.00"
    assert wallet["consistent"] is True
    resp = await rig.api.get(f"/v1/payments/{payment_id}", headers=rig.auth())
    assert resp.json()["status"] == "refunded"
    assert resp.json()["rejection_reason"] == "unknown_loan"
    assert (await rig.trial_balance())["balanced"] is True


async def test_a_refund_the_provider_fails_is_held_for_review(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("closed-loan")
    sent = await collect(rig, msisdn, loan, "200.00", cash_in="200.00")
    payment_id = orjson.loads(sent["callbacks"][0]["response"])["payment_id"]
    await rig.events.wait("RepaymentReceived", payment_id=payment_id)
    await rig.configure(msisdn, failure_rate=1.0)
    await rig.send(rejected(loan, payment_id, "200.00", msisdn, reason="loan_closed"), key=loan)
    failed = await rig.events.wait("RefundFailed", payment_id=payment_id)
    assert failed["amount"] == "200.00" and "review" in failed["reason"]
    assert not rig.events.of("RefundIssued", payment_id=payment_id)
    assert (await rig.wallet(msisdn))["refunds"] == "0.00"
    resp = await rig.api.get(f"/v1/payments/{payment_id}", headers=rig.auth())
    assert resp.json()["status"] == "refund_failed"
    transfers = {r["transfer_id"] for r in await rig.lines("")
                 if payment_id in r["transfer_id"]}
    assert transfers == {f"collection:{payment_id}", f"refund_due:{payment_id}",
                         f"refund:{payment_id}", f"reversal:refund:{payment_id}"}


async def test_the_same_transaction_told_twice_at_once_is_credited_once(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    await rig.configure(msisdn, lose_callbacks=True)
    sent = await collect(rig, msisdn, loan, "33.00")
    ref = sent["transactionReference"]
    calls = [rig.signed(collection_body(ref, loan, msisdn, "33.00")) for _ in range(5)]
    answers = await asyncio.gather(*(rig.callback(raw, headers) for raw, headers in calls))
    assert [a.status_code for a in answers] == [200] * 5
    statuses = sorted(a.json()["status"] for a in answers)
    assert statuses == ["accepted"] + ["duplicate"] * 4
    assert len({a.json()["payment_id"] for a in answers}) == 1
    assert len(await payments_for(rig, ref)) == 1
    await published_all(rig.pool, rig.events)  # all five were answered
    assert len(rig.events.of("RepaymentReceived", external_ref=ref)) == 1
