"""Open -> deposit -> withdraw through the saga, with payments' replies played by the test."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from shared.contracts import savings
from shared.envelope import envelope_for
from tests.integration.savings.conftest import Rig, paid_out
from tests.kafka_facts import until


async def opened(rig: Rig, deposit: str = "1000.00", **terms: object) -> str:
    product = await rig.product(**terms)
    account = await rig.account(product, await rig.client(), opening=deposit)
    assert account["ledger_balance"] == deposit
    return str(account["id"])


async def test_deposit_is_idempotent_and_the_statement_runs_the_balance(rig: Rig) -> None:
    product = await rig.product()
    account = await rig.account(product, await rig.client(), opening="250.00")
    assert account["status"] == "active" and account["ledger_balance"] == "250.00"
    key = uuid.uuid4().hex
    first = await rig.deposit(account["id"], "500.00", key)
    again = await rig.deposit(account["id"], "500.00", key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert first.json()["ledger_balance"] == "750.00"
    other = await rig.deposit(account["id"], "600.00", key)
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "Idempotency-Key"
    st = await rig.statement(account["id"])
    assert [line["balance"] for line in st["lines"]] == ["250.00", "750.00"]
    assert st["closing_balance"] == st["ledger_balance"] == "750.00"
    await rig.reader.wait_for("DepositPosted", topic=savings.EVENTS, account_id=account["id"],
                              count=2)


async def test_withdrawal_is_paid_once_whatever_is_redelivered(rig: Rig) -> None:
    account_id = await opened(rig)
    resp = await rig.withdraw(account_id, "300.00")
    assert resp.status_code == 202, resp.text
    withdrawal = resp.json()
    assert withdrawal["status"] == "pending"
    held = await rig.get(account_id)
    assert (held["ledger_balance"], held["held_balance"], held["available_balance"]) == (
        "1000.00", "300.00", "700.00")
    (command,) = await rig.reader.wait_for("PayOutWithdrawal", topic="payments.commands",
                                           withdrawal_id=withdrawal["id"])
    assert command.key == account_id and command.payload["amount"] == "300.00"

    reply = paid_out(command.payload)
    env = envelope_for(reply, aggregate_id=account_id)
    await rig.send(reply, account_id, env)
    await rig.send(reply, account_id, env)          # the same event redelivered
    await rig.send(reply, account_id)               # and published again by payments
    await rig.withdrawal_status(withdrawal["id"], "paid")
    await rig.consumed()

    after = await rig.get(account_id)
    assert (after["ledger_balance"], after["held_balance"], after["available_balance"]) == (
        "700.00", "0.00", "700.00")
    st = await rig.statement(account_id)
    assert sum(Decimal(line["amount"]) for line in st["lines"]) == Decimal("700.00")
    assert [line["kind"] for line in st["lines"]] == ["deposit", "withdrawal"]
    assert len(rig.reader.matching("PayOutWithdrawal", withdrawal_id=withdrawal["id"])) == 1
    assert len(rig.reader.matching("WithdrawalCompleted", withdrawal_id=withdrawal["id"])) == 1
    # the same request again answers the first response and pays nothing more
    key = uuid.uuid4().hex
    first = await rig.withdraw(account_id, "10.00", key)
    second = await rig.withdraw(account_id, "10.00", key)
    assert first.json()["id"] == second.json()["id"]
    await rig.reader.wait_for("PayOutWithdrawal", withdrawal_id=first.json()["id"])
    await rig.consumed()
    assert len(rig.reader.matching("PayOutWithdrawal", withdrawal_id=first.json()["id"])) == 1


async def test_a_refused_payout_releases_the_hold(rig: Rig) -> None:
    account_id = await opened(rig, "400.00")
    withdrawal = (await rig.withdraw(account_id, "400.00")).json()
    assert (await rig.get(account_id))["available_balance"] == "0.00"
    await rig.reader.wait_for("PayOutWithdrawal", withdrawal_id=withdrawal["id"])
    await rig.send(savings.WithdrawalPayoutFailed(
        account_id=account_id, withdrawal_id=withdrawal["id"], amount=Decimal("400.00"),
        reason="wallet_limit_exceeded", provider="sim"), account_id)
    released = await rig.withdrawal_status(withdrawal["id"], "released")
    assert released["reason"] == "wallet_limit_exceeded"
    after = await rig.get(account_id)
    assert (after["ledger_balance"], after["held_balance"], after["available_balance"]) == (
        "400.00", "0.00", "400.00")
    await rig.reader.wait_for("WithdrawalReleased", withdrawal_id=withdrawal["id"])
    assert [line["kind"] for line in (await rig.statement(account_id))["lines"]] == ["deposit"]


async def test_an_in_doubt_payout_keeps_the_hold_visible_until_payments_knows(rig: Rig) -> None:
    account_id = await opened(rig, "500.00")
    withdrawal = (await rig.withdraw(account_id, "120.00")).json()
    (command,) = await rig.reader.wait_for("PayOutWithdrawal", withdrawal_id=withdrawal["id"])
    await rig.send(savings.WithdrawalPayoutInDoubt(
        account_id=account_id, withdrawal_id=withdrawal["id"], amount=Decimal("120.00"),
        provider="sim", reason="no answer before the deadline",
        since=dt.datetime.now(dt.UTC)), account_id)
    await rig.withdrawal_status(withdrawal["id"], "in_doubt")
    await rig.consumed()
    doubt = await rig.get(account_id)
    assert (doubt["held_balance"], doubt["available_balance"]) == ("120.00", "380.00")
    listed = await rig.api.get("/v1/savings/withdrawals", params={"status": "in_doubt"},
                               headers=rig.auth())
    assert withdrawal["id"] in {w["id"] for w in listed.json()["items"]}
    # the provider's word, later: it was paid
    await rig.send(paid_out(command.payload), account_id)
    await rig.withdrawal_status(withdrawal["id"], "paid")
    after = await rig.get(account_id)
    assert (after["ledger_balance"], after["held_balance"]) == ("380.00", "0.00")


async def test_a_withdrawal_above_the_available_balance_is_refused_and_nothing_moves(
        rig: Rig) -> None:
    account_id = await opened(rig, "100.00", min_balance="20.00", min_opening_balance="20.00",
                              withdrawal_fee="5.00")
    before = await rig.get(account_id)
    resp = await rig.withdraw(account_id, "80.01")
    assert resp.status_code == 409, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["errors"][0]["field"] == "amount"
    assert await rig.get(account_id) == before
    listed = await rig.api.get(f"/v1/savings/accounts/{account_id}/withdrawals",
                               headers=rig.auth())
    assert listed.json()["items"] == []
    # the month's first withdrawal is not free here: 75.00 + 5.00 fee fits exactly
    ok = await rig.withdraw(account_id, "75.00")
    assert ok.status_code == 202 and ok.json()["fee"] == "5.00"
    assert (await rig.get(account_id))["available_balance"] == "20.00"


async def test_bad_input_is_a_problem_naming_the_field(rig: Rig) -> None:
    account_id = await opened(rig, "50.00")
    as_number = await rig.api.post(f"/v1/savings/accounts/{account_id}/deposits",
                                   json={"amount": 10.5}, headers=rig.keyed())
    assert as_number.status_code == 422 and as_number.json()["errors"][0]["field"] == "amount"
    no_key = await rig.api.post(f"/v1/savings/accounts/{account_id}/deposits",
                                json={"amount": "10.00"}, headers=rig.auth())
    assert no_key.status_code == 422
    assert no_key.json()["errors"][0]["field"] == "Idempotency-Key"
    bad_rate = await rig.api.post("/v1/savings/products", headers=rig.auth(), json={
        "name": "x", "kind": "voluntary", "annual_rate": "1.5"})
    assert bad_rate.status_code == 422 and bad_rate.json()["errors"][0]["field"] == "annual_rate"
    term = await rig.api.post("/v1/savings/products", headers=rig.auth(), json={
        "name": "DAT", "kind": "term_deposit", "annual_rate": "0.04"})
    assert term.status_code == 422 and term.json()["errors"][0]["field"] == "term_months"


async def test_opening_needs_kyc_and_a_large_opening_waits_for_a_checker(rig: Rig) -> None:
    product = await rig.product()
    pending_kyc = await rig.client(verified=False)
    refused = await rig.api.post("/v1/savings/accounts", headers=rig.keyed(), json={
        "client_id": pending_kyc, "product_id": product})
    assert refused.status_code == 409 and refused.json()["errors"][0]["field"] == "client_id"
    big = await rig.account(product, await rig.client(), opening="20000.00")
    assert big["status"] == "pending_approval" and big["ledger_balance"] == "0.00"
    same = await rig.api.post(f"/v1/savings/accounts/{big['id']}/approve", headers=rig.auth())
    assert same.status_code == 403
    approved = await rig.api.post(f"/v1/savings/accounts/{big['id']}/approve",
                                  headers=rig.auth(sub="checker-2"))
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "active"
    assert approved.json()["ledger_balance"] == "20000.00"


async def test_partners_see_only_their_accounts_and_blocks_stop_withdrawals(rig: Rig) -> None:
    account_id = await opened(rig, "300.00")
    stranger = await rig.api.get(f"/v1/savings/accounts/{account_id}",
                                 headers=rig.auth("p", READ, partner="partner-b"))
    assert stranger.status_code == 404
    owner = await rig.api.get(f"/v1/savings/accounts/{account_id}",
                              headers=rig.auth("p", READ, partner="partner-a"))
    assert owner.status_code == 200
    blocked = await rig.api.post(f"/v1/savings/accounts/{account_id}/block",
                                 json={"reason": "saisie judiciaire"}, headers=rig.auth())
    assert blocked.status_code == 200 and blocked.json()["blocked"]
    refused = await rig.withdraw(account_id, "10.00")
    assert refused.status_code == 409
    assert (await rig.deposit(account_id, "10.00")).status_code == 201
    close = await rig.api.post(f"/v1/savings/accounts/{account_id}/close",
                               json={"reason": "client leaves"}, headers=rig.auth())
    assert close.status_code == 409   # the balance must be paid out first


READ = ("savings:read",)


async def test_a_wallet_deposit_from_payments_is_credited_once(rig: Rig) -> None:
    account_id = await opened(rig, "10.00")
    payment_id = f"pay-{uuid.uuid4().hex[:10]}"
    message = savings.SavingsDepositReceived(
        account_id=account_id, payment_id=payment_id, amount=Decimal("250.00"),
        external_ref="SAV-REF", received_at=dt.datetime.now(dt.UTC))
    await rig.send(message, account_id)
    await rig.send(message, account_id)   # payments publishes it twice: one credit

    async def credited() -> bool:
        return bool((await rig.get(account_id))["ledger_balance"] == "260.00")
    await until(credited, "the wallet deposit credited")
    await rig.consumed()
    assert (await rig.get(account_id))["ledger_balance"] == "260.00"
    unknown = savings.SavingsDepositReceived(
        account_id="no-such-account", payment_id=f"pay-{uuid.uuid4().hex[:10]}",
        amount=Decimal("5.00"), external_ref="X", received_at=dt.datetime.now(dt.UTC))
    await rig.send(unknown, "no-such-account")
    await rig.reader.wait_for("SavingsDepositRejected", payment_id=unknown.payment_id,
                              reason="unknown_account")
