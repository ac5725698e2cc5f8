"""POST /v1/refunds/{id}/retry and .../retry/approve: two operators pay a refund held for
review again (a new payout only after the provider confirmed the last one failed)."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest

from tests.integration.payments.conftest import (
    Rig,
    new_id,
    new_msisdn,
    paid_at_provider,
    rejected,
)
from tests.integration.payments.facts import published_all
from tests.integration.payments.test_collections import collect

pytestmark = pytest.mark.integration


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def propose(rig: Rig, refund_id: str, headers: dict[str, str],
                  body: dict[str, Any] | None = None, role: str = "operator") -> httpx.Response:
    partner = None if role == "operator" else "partner-a"
    return await rig.api.post(f"/v1/refunds/{refund_id}/retry",
                              headers={**rig.auth(role, partner), **headers}, json=body)


async def retry(rig: Rig, refund_id: str, headers: dict[str, str],
                body: dict[str, Any] | None = None, role: str = "operator") -> httpx.Response:
    """A retry as it is made: one operator (``test-operator``) proposes, another
    (``checker``) approves; the approval's answer, or the proposal's if it was refused.
    ``headers`` (the Idempotency-Key) are the approval's."""
    proposed = await propose(rig, refund_id, key(), body, role)
    if proposed.status_code != 202:
        return proposed
    return await rig.api.post(f"/v1/refunds/{refund_id}/retry/approve",
                              headers={**rig.auth(sub="checker"), **headers})


async def held_refund(rig: Rig, amount: str) -> tuple[str, str, str]:
    """A repayment for an unknown loan whose refund the provider fails: held for review."""
    msisdn, loan = new_msisdn(), new_id("no-such-loan")
    sent = await collect(rig, msisdn, loan, amount, cash_in=amount)
    payment_id = orjson.loads(sent["callbacks"][0]["response"])["payment_id"]
    await rig.events.wait("RepaymentReceived", payment_id=payment_id)
    await rig.configure(msisdn, failure_rate=1.0)
    await rig.send(rejected(loan, payment_id, amount, msisdn, reason="unknown_loan"), key=loan)
    await rig.events.wait("RefundFailed", payment_id=payment_id)
    return payment_id, msisdn, loan


async def client_payable_of(rig: Rig, payment_id: str) -> Decimal:
    """What the ledger still owes the payer of this payment (client payable, net)."""
    total = Decimal("0.00")
    for line in await rig.lines(""):
        if payment_id in line["transfer_id"] and line["account_id"] == "client_payable":
            total += line["amount"] if line["side"] == "credit" else -line["amount"]
    return total


async def eventually(check: Any, timeout_s: float = 20) -> None:
    for _ in range(int(timeout_s * 10)):
        if await check():
            return
        await asyncio.sleep(0.1)
    assert await check()


async def test_a_held_refund_is_retried_until_the_provider_pays_it(rig: Rig) -> None:
    payment_id, msisdn, _ = await held_refund(rig, "250.00")
    held = await rig.api.get("/v1/refunds/held", headers=rig.auth())
    assert held.status_code == 200, held.text
    [row] = [r for r in held.json()["items"] if r["payment_id"] == payment_id]
    assert row["amount"] == "250.00" and row["msisdn"] == msisdn and row["retries"] == 0
    assert await client_payable_of(rig, payment_id) == Decimal("250.00")

    # first retry: the provider still fails it → RefundFailed again, money still held
    first = await retry(rig, row["last_payout_id"], key(), {"note": "wallet reopened"})
    assert first.status_code == 202, first.text
    assert first.json()["retry"]["attempt"] == 1
    assert first.json()["retry"]["requested_by"] == "test-operator"
    assert first.json()["retry"]["approved_by"] == "checker"
    assert first.json()["retry"]["mode"] == "new_attempt"  # the provider said it failed
    await eventually(lambda: _count(rig, "RefundFailed", payment_id, 2))
    await eventually(lambda: _reversed(rig, f"refund:{payment_id}:retry:1"))
    assert await client_payable_of(rig, payment_id) == Decimal("250.00")
    assert (await rig.trial_balance())["balanced"] is True

    # second retry once the wallet accepts payouts again → RefundIssued
    await rig.configure(msisdn, failure_rate=0.0)
    headers = key()
    second = await retry(rig, payment_id, headers)
    assert second.status_code == 202, second.text
    approve = f"/v1/refunds/{payment_id}/retry/approve"
    again = await rig.api.post(approve, headers={**rig.auth(sub="checker"), **headers})
    assert again.status_code == 202 and again.json() == second.json()  # same key and body
    other_body = await rig.api.post(approve, headers={**rig.auth(sub="checker"), **headers},
                                    json={"note": "changed"})
    assert other_body.status_code == 422
    assert other_body.json()["errors"][0]["field"] == "Idempotency-Key"
    # a refund that is paying (or paid) is not held: another retry is refused
    twice = await retry(rig, payment_id, key())
    assert twice.status_code == 409, twice.text
    assert twice.headers["content-type"].startswith("application/problem+json")

    issued = await rig.events.wait("RefundIssued", payment_id=payment_id)
    assert issued["amount"] == "250.00" and issued["msisdn"] == msisdn
    wallet = await rig.wallet(msisdn)
    assert wallet["refunds"] == "250.00" and wallet["consistent"] is True
    view = await rig.api.get(f"/v1/payments/{payment_id}", headers=rig.auth())
    assert view.json()["status"] == "refunded"
    assert [r["status"] for r in view.json()["refunds"]] == ["failed", "failed", "completed"]
    assert await client_payable_of(rig, payment_id) == Decimal("0.00")
    assert (await rig.trial_balance())["balanced"] is True
    assert (await retry(rig, payment_id, key())).status_code == 409
    await published_all(rig.pool, rig.events)  # what every answered request emitted
    assert len(rig.events.of("RefundIssued", payment_id=payment_id)) == 1

    audit = await rig.api.get(f"/v1/refunds/{payment_id}/retries", headers=rig.auth())
    assert [(r["attempt"], r["requested_by"], r["approved_by"], r["note"])
            for r in audit.json()["items"]] == [
        (1, "test-operator", "checker", "wallet reopened"), (2, "test-operator", "checker", "")]
    held = await rig.api.get("/v1/refunds/held", headers=rig.auth())
    assert payment_id not in {r["payment_id"] for r in held.json()["items"]}


async def test_only_a_held_refund_can_be_retried(rig: Rig) -> None:
    msisdn, loan = new_msisdn(), new_id("loan")
    sent = await collect(rig, msisdn, loan, "40.00")
    payment_id = orjson.loads(sent["callbacks"][0]["response"])["payment_id"]
    await rig.events.wait("RepaymentReceived", payment_id=payment_id)
    before = await rig.trial_balance()
    resp = await retry(rig, payment_id, key())  # a repayment nobody rejected
    assert resp.status_code == 409, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert (await rig.trial_balance())["total_debits"] == before["total_debits"]
    assert (await retry(rig, str(uuid.uuid4()), key())).status_code == 404
    assert (await retry(rig, "not-an-id", key())).status_code == 404


async def test_a_retry_needs_two_operators_and_an_idempotency_key(rig: Rig) -> None:
    payment_id, _, _ = await held_refund(rig, "15.00")
    missing = await propose(rig, payment_id, {})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "Idempotency-Key"
    proposed = await propose(rig, payment_id, key(), {"note": "one operator alone"})
    assert proposed.status_code == 202, proposed.text
    approve = f"/v1/refunds/{payment_id}/retry/approve"
    alone = await rig.api.post(approve, headers={**rig.auth(), **key()})  # the proposer
    assert alone.status_code == 403, alone.text
    assert alone.headers["content-type"].startswith("application/problem+json")
    assert (await propose(rig, payment_id, key())).status_code == 409  # one at a time
    async with rig.pool.acquire() as conn:  # nothing moved
        assert await conn.fetchval("SELECT count(*) FROM payouts WHERE payment_id = $1",
                                   uuid.UUID(payment_id)) == 1
    assert (await retry(rig, payment_id, key(), role="partner")).status_code == 403
    assert (await retry(rig, payment_id, key(), role="wallet")).status_code == 403
    wrong = await retry(rig, payment_id, key(), {"msisdn": "+212600000000"})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "msisdn"
    held = await rig.api.get("/v1/refunds/held", headers=rig.auth())
    assert payment_id in {r["payment_id"] for r in held.json()["items"]}  # nothing changed


async def test_a_refund_with_no_payer_wallet_is_paid_to_the_wallet_the_operator_gives(
        rig: Rig) -> None:
    loan = new_id("no-such-loan")
    payer, reference = await paid_at_provider(rig, loan, "75.00")
    resp = await rig.api.post(
        "/v1/repayments", headers={**rig.auth("wallet", "wallet-nw"), **key()},
        json={"loan_id": loan, "amount": "75.00", "currency": "MAD",
              "payer_msisdn": payer, "external_ref": new_id("tx"),
              "provider_reference": reference})
    assert resp.json()["status"] == "received", resp.text
    payment_id = resp.json()["payment_id"]
    async with rig.pool.acquire() as conn:  # as a wallet that reported no payer would
        await conn.execute("UPDATE payments SET payer_msisdn = NULL WHERE id = $1",
                           uuid.UUID(payment_id))
    await rig.send(rejected(loan, payment_id, "75.00", None), key=loan)
    await rig.events.wait("RefundFailed", payment_id=payment_id)
    no_wallet = await propose(rig, payment_id, key())
    assert no_wallet.status_code == 422 and no_wallet.json()["errors"][0]["field"] == "msisdn"
    msisdn = new_msisdn()
    given = await retry(rig, payment_id, key(), {"msisdn": msisdn, "note": "payer called"})
    assert given.status_code == 202, given.text
    issued = await rig.events.wait("RefundIssued", payment_id=payment_id)
    assert issued["msisdn"] == msisdn and issued["amount"] == "75.00"
    assert await client_payable_of(rig, payment_id) == Decimal("0.00")
    assert (await rig.trial_balance())["balanced"] is True


async def _count(rig: Rig, type_: str, payment_id: str, n: int) -> bool:
    return len(rig.events.of(type_, payment_id=payment_id)) >= n


async def _reversed(rig: Rig, transfer_id: str) -> bool:
    return bool(await rig.lines(f"reversal:{transfer_id}"))
