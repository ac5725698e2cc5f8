"""A wallet's report of a repayment is confirmed with the provider before anything is
credited, and one provider transaction is credited once, whichever way it reaches us."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
import pytest

from services.payments.handlers.collections import confirm_due
from services.payments.providers.gsma import Providers
from shared.clock import ManualClock
from tests.integration.payments.conftest import Rig, new_id, paid_at_provider, rejected
from tests.kafka_facts import until

pytestmark = pytest.mark.integration


def report(loan: str, amount: str, msisdn: str, reference: str, **over: Any
           ) -> dict[str, Any]:
    return {"loan_id": loan, "amount": amount, "currency": "MAD", "payer_msisdn": msisdn,
            "external_ref": new_id("wallet-tx"), "provider_reference": reference, **over}


async def post_report(rig: Rig, body: dict[str, Any], partner: str = "wallet-c"
                      ) -> dict[str, Any]:
    resp = await rig.api.post("/v1/repayments", json=body, headers={
        **rig.auth("wallet", partner), "Idempotency-Key": str(uuid.uuid4())})
    assert resp.status_code == 202, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def credits(rig: Rig, provider_reference: str) -> tuple[int, int]:
    """(payments of this provider transaction, collection entries posted for them)."""
    async with rig.pool.acquire() as conn:
        ids = [r["id"] for r in await conn.fetch(
            "SELECT id FROM payments WHERE provider = 'sim' AND provider_reference = $1",
            provider_reference)]
        entries = await conn.fetchval(
            "SELECT count(*) FROM journal_entries WHERE transfer_id = ANY($1::text[])",
            [f"collection:{i}" for i in ids])
    return len(ids), entries


async def status_of(rig: Rig, payment_id: str) -> str:
    resp = await rig.api.get(f"/v1/payments/{payment_id}", headers=rig.auth())
    assert resp.status_code == 200, resp.text
    return str(resp.json()["status"])


async def sim_callback(rig: Rig, reference: str) -> tuple[bytes, dict[str, str]]:
    """The callback the simulator would have sent (it was lost), signed afresh."""
    resource = rig.world.transactions[reference].resource()
    return rig.signed(orjson.dumps(resource))


async def test_a_report_the_provider_does_not_know_credits_nothing_and_pays_nothing(
        rig: Rig) -> None:
    loan = new_id("no-such-loan")
    known_msisdn, known_ref = await paid_at_provider(rig, loan, "40.00")
    unknown = await post_report(rig, report(loan, "900.00", known_msisdn, "SIM-NEVER-" +
                                            uuid.uuid4().hex[:12].upper()))
    assert unknown["status"] == "unconfirmed"
    payment_id = unknown["payment_id"]
    assert await status_of(rig, payment_id) == "unconfirmed"
    # loans (or an operator's replay) rejecting it must not pay anything back
    await rig.send(rejected(loan, payment_id, "900.00", known_msisdn), key=loan)
    # a real repayment on the same loan, then rejected: its refund is the barrier (one
    # partition, in order), after which the unknown one has been handled too
    known = await post_report(rig, report(loan, "40.00", known_msisdn, known_ref))
    assert known["status"] == "received"
    await rig.events.wait("RepaymentReceived", payment_id=known["payment_id"])
    await rig.send(rejected(loan, known["payment_id"], "40.00", known_msisdn), key=loan)
    await rig.events.wait("RefundIssued", payment_id=known["payment_id"])
    assert rig.events.of("RepaymentReceived", payment_id=payment_id) == []
    assert rig.events.of("RefundIssued", payment_id=payment_id) == []
    assert await rig.lines(f"collection:{payment_id}") == []
    assert await rig.lines(f"refund:{payment_id}") == []
    async with rig.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM payouts WHERE payment_id = $1",
                                   uuid.UUID(payment_id)) == 0
        # and PostgreSQL refuses a refund payout of it even if code tried
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO payouts (id, kind, saga_id, correlation_id, request_hash,"
                " loan_id, payment_id, msisdn, amount, provider, deadline,"
                " journal_transfer_id) VALUES ($1, 'refund', $2, $3, 'x', $4, $5, $6,"
                " 900, 'sim', now(), 'x')", uuid.uuid4(), f"refund:{payment_id}",
                uuid.uuid4(), loan, uuid.UUID(payment_id), known_msisdn)
    wallet = await rig.wallet(known_msisdn)
    assert Decimal(wallet["refunds"]) == Decimal("40.00")  # the real one only
    # the bounded wait ends, by the clock rather than by waiting
    settings = rig.settings
    later = ManualClock(dt.datetime.now(dt.UTC) + dt.timedelta(
        seconds=settings.wallet_confirm_window_s + 1))
    providers = Providers(settings.providers)
    try:
        await confirm_due(rig.pool, settings, providers, clock=later,
                          only=[uuid.UUID(payment_id)])
    finally:
        await providers.close()
    assert await status_of(rig, payment_id) == "rejected_unconfirmed"
    view = (await rig.api.get(f"/v1/payments/{payment_id}", headers=rig.auth())).json()
    assert "not confirmed by the provider" in view["rejection_reason"]
    assert await rig.lines(f"collection:{payment_id}") == []
    assert (await rig.trial_balance())["balanced"] is True


async def test_a_report_the_provider_contradicts_is_refused_and_writes_nothing(
        rig: Rig) -> None:
    loan = new_id("loan")
    msisdn, reference = await paid_at_provider(rig, loan, "60.00")
    for change, field in (({"amount": "61.00"}, "amount"),
                          ({"loan_id": new_id("loan")}, "loan_id")):
        resp = await rig.api.post(
            "/v1/repayments", json={**report(loan, "60.00", msisdn, reference), **change},
            headers={**rig.auth("wallet", "wallet-c"), "Idempotency-Key": str(uuid.uuid4())})
        assert resp.status_code == 422, resp.text
        assert field in [e["field"] for e in resp.json()["errors"]]
    assert await credits(rig, reference) == (0, 0)


async def test_callback_then_wallet_report_is_credited_once(rig: Rig) -> None:
    loan = new_id("loan")
    msisdn, reference = await paid_at_provider(rig, loan, "120.00", callback=True)
    first = await rig.events.wait("RepaymentReceived", loan_id=loan)
    again = await post_report(rig, report(loan, "120.00", msisdn, reference))
    assert again["payment_id"] == first["payment_id"]
    assert await credits(rig, reference) == (1, 1)
    # the wallet that reported it may read it
    mine = await rig.api.get(f"/v1/payments/{again['payment_id']}",
                             headers=rig.auth("wallet", "wallet-c"))
    assert mine.status_code == 200


async def test_wallet_report_then_callback_is_credited_once(rig: Rig) -> None:
    loan = new_id("loan")
    msisdn, reference = await paid_at_provider(rig, loan, "130.00")
    # a wallet writes the reference its own way: full-width digits, spaces around
    full_width = "".join(chr(0xFF10 + d) for d in range(10))
    spelled = " " + reference.translate(str.maketrans("0123456789", full_width)) + " "
    first = await post_report(rig, report(loan, "130.00", msisdn, spelled))
    assert first["status"] == "received"
    raw, headers = await sim_callback(rig, reference)
    resp = await rig.callback(raw, headers)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": "duplicate", "payment_id": first["payment_id"]}
    assert await credits(rig, reference) == (1, 1)
    await rig.events.wait("RepaymentReceived", payment_id=first["payment_id"])


async def test_an_unconfirmed_report_is_credited_once_by_the_callback(rig: Rig) -> None:
    loan = new_id("loan")
    msisdn, reference = await paid_at_provider(rig, loan, "140.00")
    txn = rig.world.transactions[reference]
    txn.hidden_until = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)  # API denies it
    first = await post_report(rig, report(loan, "140.00", msisdn, reference))
    assert first["status"] == "unconfirmed"
    assert await credits(rig, reference) == (1, 0)
    txn.hidden_until = None  # the provider knows it now, and its callback comes
    raw, headers = await sim_callback(rig, reference)
    resp = await rig.callback(raw, headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["payment_id"] == first["payment_id"]
    assert await credits(rig, reference) == (1, 1)
    assert await status_of(rig, first["payment_id"]) in ("received", "posted")
    await rig.events.wait("RepaymentReceived", payment_id=first["payment_id"])


async def test_callback_and_wallet_report_at_once_are_credited_once(rig: Rig) -> None:
    for _ in range(5):
        loan = new_id("loan")
        msisdn, reference = await paid_at_provider(rig, loan, "150.00")
        raw, headers = await sim_callback(rig, reference)
        body = report(loan, "150.00", msisdn, reference)
        wallet_key = {**rig.auth("wallet", "wallet-c"), "Idempotency-Key": str(uuid.uuid4())}
        by_callback, by_wallet, by_wallet_twice = await asyncio.gather(
            rig.callback(raw, headers),
            rig.api.post("/v1/repayments", json=body, headers=wallet_key),
            rig.api.post("/v1/repayments", json={**body, "external_ref": new_id("again")},
                         headers={**wallet_key, "Idempotency-Key": str(uuid.uuid4())}))
        assert by_callback.status_code == 200, by_callback.text
        assert by_wallet.status_code == 202, by_wallet.text
        assert by_wallet_twice.status_code == 202, by_wallet_twice.text
        ids = {by_callback.json()["payment_id"], by_wallet.json()["payment_id"],
               by_wallet_twice.json()["payment_id"]}
        assert len(ids) == 1
        assert await credits(rig, reference) == (1, 1)
        [payment_id] = ids
        await rig.events.wait("RepaymentReceived", payment_id=payment_id)
    assert (await rig.trial_balance())["balanced"] is True


async def test_the_confirmation_job_credits_a_report_the_provider_confirms_later(
        rig: Rig) -> None:
    loan = new_id("loan")
    msisdn, reference = await paid_at_provider(rig, loan, "160.00")
    txn = rig.world.transactions[reference]
    txn.hidden_until = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    first = await post_report(rig, report(loan, "160.00", msisdn, reference))
    assert first["status"] == "unconfirmed"
    txn.hidden_until = None
    # the service's own job finds it (every wallet_confirm_interval_s)

    async def credited() -> bool:
        return await credits(rig, reference) == (1, 1)

    await until(credited, "the unconfirmed report credited by the confirmation job")
    await rig.events.wait("RepaymentReceived", payment_id=first["payment_id"])

