"""POST /v1/repayments and GET /v1/payments/{id}: idempotent, validated, scoped."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.payments.conftest import Rig, new_id, new_msisdn, paid_at_provider

pytestmark = pytest.mark.integration


def body(loan: str, **over: Any) -> dict[str, Any]:
    return {"loan_id": loan, "amount": "250.00", "currency": "MAD",
            "payer_msisdn": new_msisdn(), "external_ref": new_id("wallet-tx"),
            "provider_reference": new_id("SIM-UNKNOWN"), **over}


async def paid(rig: Rig, loan: str, **over: Any) -> dict[str, Any]:
    """A report of a payment the provider did make (its callback lost)."""
    msisdn, reference = await paid_at_provider(rig, loan, "250.00")
    return body(loan, payer_msisdn=msisdn, provider_reference=reference, **over)


async def written(rig: Rig, loan: str) -> tuple[int, int]:
    async with rig.pool.acquire() as conn:
        payments = await conn.fetchval("SELECT count(*) FROM payments WHERE loan_id = $1", loan)
        entries = await conn.fetchval(
            "SELECT count(*) FROM journal_entries WHERE loan_id = $1", loan)
    return payments, entries


async def test_a_wallet_repayment_is_received_once_per_key(rig: Rig) -> None:
    loan, key = new_id("loan"), str(uuid.uuid4())
    headers = {**rig.auth("wallet", "wallet-a"), "Idempotency-Key": key}
    payload = await paid(rig, loan)
    first = await rig.api.post("/v1/repayments", json=payload, headers=headers)
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "received"
    again = await rig.api.post("/v1/repayments", json=payload, headers=headers)
    assert again.status_code == 202 and again.json() == first.json()
    payment_id = first.json()["payment_id"]
    received = await rig.events.wait("RepaymentReceived", payment_id=payment_id)
    assert received["external_ref"] == payload["external_ref"]
    assert await written(rig, loan) == (1, 1)
    view = await rig.api.get(f"/v1/payments/{payment_id}", headers=rig.auth("wallet", "wallet-a"))
    assert view.status_code == 200
    assert view.json()["amount"] == "250.00" and view.json()["loan_id"] == loan
    other = await rig.api.get(f"/v1/payments/{payment_id}",
                              headers=rig.auth("wallet", "wallet-b"))
    assert other.status_code == 404


async def test_a_reused_key_with_another_body_is_refused_and_writes_nothing(rig: Rig) -> None:
    loan, key = new_id("loan"), str(uuid.uuid4())
    headers = {**rig.auth("wallet", "wallet-a"), "Idempotency-Key": key}
    payload = await paid(rig, loan)
    first = await rig.api.post("/v1/repayments", json=payload, headers=headers)
    assert first.status_code == 202
    resp = await rig.api.post("/v1/repayments", json={**payload, "amount": "251.00"},
                              headers=headers)
    assert resp.status_code == 422
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["errors"][0]["field"] == "Idempotency-Key"
    assert await written(rig, loan) == (1, 1)


async def test_the_same_external_ref_for_another_transaction_is_a_conflict(rig: Rig) -> None:
    loan = new_id("loan")
    payload = await paid(rig, loan)
    other = await paid(rig, loan, external_ref=payload["external_ref"])
    for sent, expected in ((payload, 202), (other, 409)):
        headers = {**rig.auth("wallet", "wallet-a"), "Idempotency-Key": str(uuid.uuid4())}
        resp = await rig.api.post("/v1/repayments", json=sent, headers=headers)
        assert resp.status_code == expected, resp.text
    assert resp.json()["errors"][0]["field"] == "external_ref"
    assert await written(rig, loan) == (1, 1)


@pytest.mark.parametrize(("change", "field"), [
    ({"amount": 250.0}, "amount"),
    ({"amount": 250}, "amount"),
    ({"amount": "-5.00"}, "amount"),
    ({"amount": "0.00"}, "amount"),
    ({"amount": "10.001"}, "amount"),
    ({"currency": "EUR"}, "currency"),
    ({"payer_msisdn": "0612345678"}, "payer_msisdn"),
    ({"loan_id": ""}, "loan_id"),
    ({"surprise": "x"}, "surprise"),
    ({"provider_reference": ""}, "provider_reference"),
    ({"provider_reference": "SIM 12"}, "provider_reference"),
    ({"provider": "nowhere"}, "provider"),
])
async def test_bad_input_is_a_problem_naming_the_field_and_writes_nothing(
    rig: Rig, change: dict[str, Any], field: str
) -> None:
    loan, key = new_id("loan"), str(uuid.uuid4())
    headers = {**rig.auth("wallet", "wallet-a"), "Idempotency-Key": key}
    resp = await rig.api.post("/v1/repayments", json=body(loan, **change), headers=headers)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in resp.json()["errors"]]
    assert await written(rig, loan) == (0, 0)
    async with rig.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = $1",
                                   key) == 0


async def test_the_provider_reference_is_required(rig: Rig) -> None:
    loan, key = new_id("loan"), str(uuid.uuid4())
    headers = {**rig.auth("wallet", "wallet-a"), "Idempotency-Key": key}
    payload = body(loan)
    del payload["provider_reference"]
    resp = await rig.api.post("/v1/repayments", json=payload, headers=headers)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert "provider_reference" in [e["field"] for e in resp.json()["errors"]]
    assert await written(rig, loan) == (0, 0)


async def test_a_missing_idempotency_key_is_named(rig: Rig) -> None:
    loan = new_id("loan")
    resp = await rig.api.post("/v1/repayments", json=body(loan),
                              headers=rig.auth("wallet", "wallet-a"))
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "Idempotency-Key"
    assert await written(rig, loan) == (0, 0)


async def test_tokens_and_scopes(rig: Rig) -> None:
    loan = new_id("loan")
    key = {"Idempotency-Key": str(uuid.uuid4())}
    assert (await rig.api.post("/v1/repayments", json=body(loan), headers=key)).status_code == 401
    partner = {**rig.auth("partner", "partner-a"), **key}
    assert (await rig.api.post("/v1/repayments", json=body(loan),
                               headers=partner)).status_code == 403
    for path in ("/v1/ledger/trial-balance", "/v1/accounts/suspense/statement",
                 f"/v1/loans/{loan}/portfolio-balance", "/v1/reconciliation/sim/2026-01-01"):
        resp = await rig.api.get(path, headers=rig.auth("wallet", "wallet-a"))
        assert resp.status_code == 403, path
    assert await written(rig, loan) == (0, 0)


async def test_account_statement_and_unknown_account(rig: Rig) -> None:
    resp = await rig.api.get("/v1/accounts/settlement:sim/statement", headers=rig.auth(),
                             params={"limit": 5})
    assert resp.status_code == 200
    data = resp.json()
    assert data["account"]["kind"] == "provider_settlement"
    assert 1 <= len(data["lines"]) <= 5
    assert all(isinstance(line["amount"], str) for line in data["lines"])
    assert data["lines"][0]["balance_after"] == data["account"]["balance"]
    resp = await rig.api.get("/v1/accounts/nope/statement", headers=rig.auth())
    assert resp.status_code == 404
