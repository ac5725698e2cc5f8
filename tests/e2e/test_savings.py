"""Savings end to end: a client saves from a wallet and withdraws to it, through the real
savings, payments and notifications processes and the mobile-money simulator.

After every step the savings balance equals payments' deposit liability for the account
plus the withdrawals payments has recorded and not settled
(``GET /v1/ledger/savings/{id}``), and the trial balance is zero.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from shared.auth import ROLE_SCOPES
from shared.clock import today
from tests.e2e.bank import Bank, Borrower, eventually
from tests.identity import mint_token

pytestmark = pytest.mark.e2e
D = Decimal
SAVINGS_SCOPES = ("savings:read", "savings:write", "savings:approve", "products:write",
                  "cob:run")


def savings_operator(sub: str) -> dict[str, str]:
    token = mint_token(sub=sub, scopes=sorted({*ROLE_SCOPES["operator"], *SAVINGS_SCOPES}))
    return {"Authorization": f"Bearer {token}"}


MAKER = savings_operator("operator-nadia")


async def send(bank: Bank, method: str, service: str, path: str, **kw: Any
               ) -> httpx.Response:
    """One request whatever its answer (``bank.call`` asserts the status)."""
    return await bank.http.request(method, bank.url(service, path), **kw)


def keyed() -> dict[str, str]:
    return {**MAKER, "Idempotency-Key": uuid.uuid4().hex}


async def account(bank: Bank, account_id: str) -> dict[str, Any]:
    body: dict[str, Any] = await bank.call("GET", "savings", f"/v1/savings/accounts/{account_id}",
                                           headers=MAKER)
    return body


async def open_account(bank: Bank, who: Borrower, opening: str) -> dict[str, Any]:
    product = await bank.call("POST", "savings", "/v1/savings/products", expect=201,
                              headers=MAKER, json={
                                  "name": f"Épargne libre {uuid.uuid4().hex[:4]}",
                                  "kind": "voluntary", "annual_rate": "0.0365",
                                  "withholding_tax_rate": "0.20"})
    body = {"client_id": who.client_id, "product_id": product["id"],
            "opening_deposit": opening}

    async def opened() -> dict[str, Any] | None:
        # savings learns of the client (and of its KYC) from clients.events a moment later
        resp = await send(bank, "POST", "savings", "/v1/savings/accounts", json=body,
                                  headers=keyed())
        if resp.status_code == 201:
            return dict(resp.json())
        assert resp.status_code in (404, 409), resp.text
        return None

    return await eventually(opened, timeout_s=30, what="savings account opened")


async def books_agree(bank: Bank, account_id: str, *, in_flight: str | None = "0.00"
                      ) -> dict[str, Any]:
    """Savings' balance = payments' deposit liability + withdrawals in flight (and, when
    ``in_flight`` is given, that many in flight), and the trial balance is zero."""
    async def agree() -> dict[str, Any] | None:
        mine = await account(bank, account_id)
        books = await bank.call("GET", "payments", f"/v1/ledger/savings/{account_id}",
                                headers=bank.maker)
        liability = D(books["deposit_liability"]) if books["exists"] else D("0.00")
        flying = D(books["withdrawals_in_flight"])
        if in_flight is not None and flying != D(in_flight):
            return None
        if D(mine["ledger_balance"]) != liability + flying:
            return None
        return {"account": mine, "books": books}

    found = await eventually(agree, what=f"savings = deposit liability for {account_id}")
    assert found["books"]["payment_reference"].lower() == f"sav-{account_id}"
    trial = await bank.call("GET", "payments", "/v1/ledger/trial-balance", headers=bank.maker)
    assert trial["balanced"] is True, trial
    return found


async def balance_is(bank: Bank, account_id: str, ledger: str, available: str | None = None
                     ) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        a = await account(bank, account_id)
        ok = D(a["ledger_balance"]) == D(ledger) and (
            available is None or D(a["available_balance"]) == D(available))
        return a if ok else None

    return await eventually(reached, what=f"{account_id} at {ledger}")


async def test_save_from_a_wallet_withdraw_refused_and_paid_and_close_the_day(
        bank: Bank) -> None:
    salma = await bank.onboard(language="fr")
    opened = await open_account(bank, salma, "100.00")     # cash at the branch
    account_id = opened["id"]
    assert opened["payment_reference"] == f"SAV-{account_id}" and account_id == (
        account_id.lower())
    await books_agree(bank, account_id)

    # 1. a deposit from the wallet to SAV-<account id>
    await bank.save_from_wallet(salma.phone, opened["payment_reference"], "400.00")
    await balance_is(bank, account_id, "500.00", "500.00")
    await books_agree(bank, account_id)

    # 2. above the available balance: 409, nothing held, nothing asked of payments
    wallet_before = await bank.wallet(salma.phone)
    refused = await send(bank, "POST", "savings",
                                 f"/v1/savings/accounts/{account_id}/withdrawals",
                                 json={"amount": "500.01"}, headers=keyed())
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"][0]["field"] == "amount"
    after = await account(bank, account_id)
    assert (after["ledger_balance"], after["held_balance"]) == ("500.00", "0.00")
    withdrawals = await bank.call("GET", "savings",
                                  f"/v1/savings/accounts/{account_id}/withdrawals",
                                  headers=MAKER)
    assert withdrawals["items"] == []
    await books_agree(bank, account_id)
    assert (await bank.wallet(salma.phone))["payouts"] == wallet_before["payouts"]

    # 3. the provider refuses the payout: the hold is released, the balance restored
    await bank.sim_config(msisdn=salma.phone, failure_rate=1.0)
    try:
        pending = await bank.call("POST", "savings",
                                  f"/v1/savings/accounts/{account_id}/withdrawals",
                                  expect=202, headers=keyed(), json={"amount": "200.00"})
        assert pending["status"] == "pending"

        async def released() -> dict[str, Any] | None:
            w = await bank.call("GET", "savings", f"/v1/savings/withdrawals/{pending['id']}",
                                headers=MAKER)
            return w if w["status"] == "released" else None

        await eventually(released, timeout_s=90, what="the refused withdrawal released")
    finally:
        await bank.sim_config(msisdn=salma.phone, reset=True)
    restored = await balance_is(bank, account_id, "500.00", "500.00")
    assert restored["held_balance"] == "0.00"
    await books_agree(bank, account_id)
    assert D((await bank.wallet(salma.phone))["payouts"]) == D(wallet_before["payouts"])

    # 4. a withdrawal paid: while in flight, savings = liability + in flight; then equal
    paid = await bank.call("POST", "savings", f"/v1/savings/accounts/{account_id}/withdrawals",
                           expect=202, headers=keyed(), json={"amount": "150.00"})
    await books_agree(bank, account_id, in_flight=None)

    async def completed() -> dict[str, Any] | None:
        w = await bank.call("GET", "savings", f"/v1/savings/withdrawals/{paid['id']}",
                            headers=MAKER)
        return w if w["status"] == "paid" else None

    await eventually(completed, timeout_s=90, what="the withdrawal paid out")
    await balance_is(bank, account_id, "350.00", "350.00")
    await books_agree(bank, account_id)
    wallet = await bank.wallet(salma.phone)
    assert D(wallet["payouts"]) == D(wallet_before["payouts"]) + D("150.00")

    # 5. close of business for today, twice: the second run posts nothing again
    date = today().isoformat()
    first = await send(bank, "POST", "savings", "/v1/savings/close-of-business",
                               headers=MAKER, json={"business_date": date})
    assert first.status_code in (200, 202), first.text
    run = first.json()

    async def succeeded() -> dict[str, Any] | None:
        got = await bank.call("GET", "savings", first.headers["location"], headers=MAKER)
        assert got["status"] != "failed", got
        return got if got["status"] == "succeeded" else None

    await eventually(succeeded, timeout_s=120, what="the savings close of business")
    statement = await bank.call("GET", "savings",
                                f"/v1/savings/accounts/{account_id}/statement", headers=MAKER)
    second = await send(bank, "POST", "savings", "/v1/savings/close-of-business",
                                headers=MAKER, json={"business_date": date})
    assert second.status_code == 200 and second.json()["run_id"] == run["run_id"], second.text
    again = await bank.call("GET", "savings", f"/v1/savings/accounts/{account_id}/statement",
                            headers=MAKER)
    assert again["lines"] == statement["lines"]
    interest = [ln for ln in again["lines"] if ln["kind"] == "interest"]
    assert len(interest) <= 1      # posted once at most (only when today ends a month)
    await books_agree(bank, account_id)


async def test_a_wallet_deposit_sends_the_sms(bank: Bank) -> None:
    templates = await bank.call("GET", "notifications", "/v1/templates", headers=bank.maker)
    if "deposit_received" not in {t["name"] for t in templates}:
        pytest.skip("notifications has no deposit_received template yet: the savings SMS "
                    "is notifications' to add (savings publishes DepositPosted with the "
                    "balance)")
    karim = await bank.onboard(language="ar")
    opened = await open_account(bank, karim, "0.00")
    await bank.save_from_wallet(karim.phone, opened["payment_reference"], "250.00")
    await balance_is(bank, opened["id"], "250.00")
    [sms] = await bank.wait_sms(karim.client_id, "deposit_received")
    assert sms["language"] == "ar"
    await books_agree(bank, opened["id"])
