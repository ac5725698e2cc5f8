"""Operators' queues page through everything (oldest first, keyset cursors) and say who
is waiting on what: held refunds with their pending retry proposal, a payout's open
settlement proposal, withdrawals in doubt and in the day's listing, wallet reports not
confirmed yet. Each decision takes its own scope: reconciliation:resolve to close an
alert, payouts:settle to settle a payout in doubt."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from shared.clock import today
from shared.contracts import savings
from tests.identity import mint_token
from tests.integration.payments.conftest import (
    Rig,
    ShiftedClock,
    new_id,
    new_msisdn,
    paid_at_provider,
)
from tests.integration.payments.test_in_doubt import PAST_THE_DEADLINE, request_sent
from tests.integration.payments.test_refund_retry import held_refund, key, propose
from tests.kafka_facts import until

pytestmark = pytest.mark.integration


def token(*scopes: str, sub: str = "op-scoped") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(sub=sub, scopes=scopes)}"}


async def walk(rig: Rig, path: str, items: str = "items", **params: Any) -> list[Any]:
    """Every row of a keyset-paged list, following next_cursor to the end."""
    rows: list[Any] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        resp = await rig.api.get(path, params=query, headers=rig.auth())
        assert resp.status_code == 200, resp.text
        rows += resp.json()[items]
        cursor = resp.json()["next_cursor"]
        if cursor is None:
            return rows


async def test_held_refunds_page_oldest_first_and_show_a_waiting_retry(rig: Rig) -> None:
    held = [(await held_refund(rig, f"{n + 11}.00"))[0] for n in range(3)]
    proposed = await propose(rig, held[1], key(), {"note": "wallet reopened"})
    assert proposed.status_code == 202, proposed.text
    rows = await walk(rig, "/v1/refunds/held", limit=1)
    ids = [r["payment_id"] for r in rows]
    assert len(ids) == len(set(ids))
    assert [i for i in ids if i in held] == held  # oldest first, each once
    mine = {r["payment_id"]: r for r in rows}
    assert mine[held[1]]["retry_proposed"] is True
    assert mine[held[1]]["retry_proposed_by"] == "test-operator"
    assert mine[held[1]]["retry_proposed_at"]
    assert mine[held[0]]["retry_proposed"] is False and mine[held[0]]["retry_proposed_by"] is None
    received = [r["received_at"] for r in rows]
    assert received == sorted(received)
    bad = await rig.api.get("/v1/refunds/held", params={"cursor": "x"}, headers=rig.auth())
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"


async def test_a_withdrawal_in_doubt_is_listed_and_settled_with_payouts_settle(
        rig: Rig, clock: ShiftedClock) -> None:
    msisdn, account = new_msisdn(), str(uuid.uuid4())
    await rig.configure(msisdn, timeout=True)
    cmd = savings.PayOutWithdrawal(
        withdrawal_id=str(uuid.uuid4()), account_id=account, client_id="client-1",
        partner_id="partner-a", amount="75.00", msisdn=msisdn,  # type: ignore[arg-type]
        deadline=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120))
    saga = f"withdrawal:{cmd.withdrawal_id}"
    await rig.send(cmd, key=account)
    await until(lambda: request_sent(rig, saga), "the request was sent")
    clock.advance(seconds=PAST_THE_DEADLINE)
    await rig.events.wait("WithdrawalPayoutInDoubt", withdrawal_id=cmd.withdrawal_id)

    doubts = await walk(rig, "/v1/payouts/in-doubt", kind="withdrawal", limit=2)
    [item] = [d for d in doubts if d["saga_id"] == saga]
    assert {d["kind"] for d in doubts} == {"withdrawal"}
    payout_id = item["payout_id"]
    day = today().isoformat()  # the local day (Africa/Casablanca) payments lists
    listed = await walk(rig, "/v1/payments", date=day, kind="withdrawal", limit=500)
    assert [r["status"] for r in listed if r["id"] == payout_id] == ["in_doubt"]
    assert {r["kind"] for r in listed} == {"withdrawal"}

    url = f"/v1/payouts/{payout_id}/settlement"
    none = await rig.api.get(url, headers=rig.auth())
    assert none.status_code == 404
    body = {"outcome": "failed", "evidence": "the provider's letter: never executed"}
    retry_only = await rig.api.post(url, json=body, headers={
        **token("refunds:retry", "payments:read", "tenant:all"), **key()})
    assert retry_only.status_code == 403
    settle = token("payouts:settle", "tenant:all", sub="op-settler")
    proposed = await rig.api.post(url, json=body, headers={**settle, **key()})
    assert proposed.status_code == 202, proposed.text
    waiting = await rig.api.get(url, headers=rig.auth())
    assert waiting.status_code == 200
    assert waiting.json()["proposal"]["proposed_by"] == "op-settler"
    assert waiting.json()["proposal"]["body"]["outcome"] == "failed"
    assert waiting.json()["payout"]["status"] == "in_doubt"
    approved = await rig.api.post(f"{url}/approve", headers={
        **token("payouts:settle", "tenant:all", sub="op-checker"), **key()})
    assert approved.status_code == 200, approved.text
    await rig.events.wait("WithdrawalPayoutFailed", withdrawal_id=cmd.withdrawal_id)
    assert (await rig.api.get(url, headers=rig.auth())).status_code == 404
    unknown = await rig.api.get(f"/v1/payouts/{uuid.uuid4()}/settlement", headers=rig.auth())
    assert unknown.status_code == 404


async def test_unconfirmed_wallet_reports_are_listed_and_filterable(rig: Rig) -> None:
    loan = new_id("loan")
    msisdn, reference = await paid_at_provider(rig, loan, "33.00")
    rig.world.transactions[reference].hidden_until = (
        dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))  # the provider denies it for now
    resp = await rig.api.post("/v1/repayments", headers={
        **rig.auth("wallet", "wallet-q"), "Idempotency-Key": str(uuid.uuid4())}, json={
        "loan_id": loan, "amount": "33.00", "currency": "MAD", "payer_msisdn": msisdn,
        "external_ref": new_id("tx"), "provider_reference": reference})
    assert resp.json()["status"] == "unconfirmed", resp.text
    day = today().isoformat()  # the local day (Africa/Casablanca) payments lists
    rows = await walk(rig, "/v1/payments", date=day, kind="collection", status="unconfirmed")
    assert resp.json()["payment_id"] in {r["id"] for r in rows}
    assert {r["status"] for r in rows} == {"unconfirmed"}
    for status in ("rejected_unconfirmed",):
        ok = await rig.api.get("/v1/payments", params={"date": day, "status": status},
                               headers=rig.auth())
        assert ok.status_code == 200, ok.text
    bad = await rig.api.get("/v1/payments", params={"kind": "withdrawal", "status": "posted"},
                            headers=rig.auth())
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "status"


async def test_resolving_an_alert_takes_reconciliation_resolve(rig: Rig) -> None:
    async with rig.pool.acquire() as conn:
        alert_id = await conn.fetchval(
            "INSERT INTO reconciliation_alerts (id, provider, business_date, mismatch, reference,"
            " kind, loan_id, theirs_amount) VALUES (gen_random_uuid(), 'sim', '2026-01-05',"
            " 'theirs_only', $1,"
            " 'collection', '', 10) RETURNING id", new_id("SIM-SCOPE"))
    path = f"/v1/reconciliation/alerts/{alert_id}/resolve"
    reader = await rig.api.post(path, json={"note": "x"},
                                headers=token("ledger:read", "payments:read", "tenant:all"))
    assert reader.status_code == 403
    assert "reconciliation:resolve" in reader.text
    done = await rig.api.post(path, json={"note": "credited by hand"},
                              headers=token("reconciliation:resolve", "tenant:all",
                                            sub="op-resolver"))
    assert done.status_code == 200, done.text
    assert done.json()["resolved_by"] == "op-resolver"
