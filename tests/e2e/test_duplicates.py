"""Scenario 4: every event delivered twice leaves the bank exactly as a clean run does.

Each service's outbox relay is switched to its duplicate mode (every event is
published twice) by restarting the service with ``NORIA_<SVC>_RELAY_DUPLICATE``.
The same journey — a loan disbursed, two repayments, a third paying more than is
owed (the loan closed, only the excess refunded), the limit grown — runs once in
normal mode and once with every event doubled; what a borrower, the books and an
operator can see must match.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.e2e.bank import Bank, eventually
from tests.identity import scraper

pytestmark = pytest.mark.e2e
D = Decimal
SERVICES = ("clients", "loans", "payments", "notifications")
EXPECTED_SMS = ["kyc_verified", "loan_closed", "loan_disbursed", "refund_issued",
                "repayment_received", "repayment_received"]


async def duplicates_seen(bank: Bank) -> int:
    """Redelivered events the inboxes dropped, summed over the services (from /metrics)."""
    total = 0
    async with httpx.AsyncClient(timeout=5) as http:
        for svc in SERVICES:
            text = (await http.get(bank.url(svc, "/metrics"), headers=scraper())).text
            total += sum(int(float(v)) for v in re.findall(
                r'^noria_messages_consumed_total\{[^}]*outcome="duplicate"[^}]*\} (\S+)$',
                text, re.M))
    return total


async def relay_mode(bank: Bank, duplicate: bool) -> None:
    for svc in SERVICES:
        await bank.platform.kill_and_restart(
            svc, env={f"NORIA_{svc.upper()}_RELAY_DUPLICATE": "true" if duplicate else "false"})
    # A SIGKILLed consumer stays in its group until its session times out; only then do
    # the restarted ones get their partitions. Wait for that, so the journey compares
    # duplicates with a clean run rather than a backlog with live traffic.
    probe = await bank.onboard()

    async def notified() -> bool:
        return bool(await bank.messages(client_id=probe.client_id))

    await eventually(notified, what="the restarted consumers at work again")


async def journey(bank: Bank) -> dict[str, Any]:
    """Scenario 1 closed by an overpayment whose excess alone is refunded; returns what
    can be observed."""
    who = await bank.onboard(language="fr")
    credit_path = f"/v1/clients/{who.client_id}/credit"
    limit_before = D((await bank.call("GET", "clients", credit_path,
                                      headers=bank.maker))["credit_limit"])
    product = await bank.product(annual_rate="0.00", max_term=3)
    loan_id = await bank.apply(who, product, "3000.00", 3)
    await bank.approve(loan_id)
    await bank.wait_status(loan_id, "active")
    await bank.wait_sms(who.client_id, "loan_disbursed")

    await bank.call("POST", "mobile-money-sim", "/sim/cash-in", headers={}, expect=201,
                    json={"msisdn": who.phone, "amount": "500.00"})
    # 3000 at 0 %: 1000 + 1000, then 1500 for the 1000 left -- the loan closes and only the
    # excess, 500, is refunded (issue 14). Wallet: 3000 paid out + 500 cashed in - 3500
    # repaid + 500 refunded = 500.
    for part, (paid, remaining) in enumerate(
            (("1000.00", "2000.00"), ("1000.00", "1000.00"), ("1500.00", "0.00")), start=1):
        await bank.repay_from_wallet(who, loan_id, paid)

        async def repaid_down(remaining: str = remaining) -> bool:
            loan = await bank.loan(loan_id)
            return D(loan["outstanding"]["principal"]) == D(remaining)

        await eventually(repaid_down, what=f"principal down to {remaining} (part {part})")

    loan = await bank.wait_status(loan_id, "closed")
    await bank.wait_sms(who.client_id, "repayment_received", count=2)
    await bank.wait_sms(who.client_id, "refund_issued")  # the excess

    async def closing_sms() -> bool:  # not urgent: in quiet hours it waits, queued
        return any(m["template"] == "loan_closed"
                   for m in await bank.messages(client_id=who.client_id))

    await eventually(closing_sms, what="loan_closed SMS")

    async def limit_grew() -> dict[str, Any] | None:
        credit: dict[str, Any] = await bank.call("GET", "clients", credit_path,
                                                 headers=bank.maker)
        return credit if D(credit["credit_limit"]) > limit_before else None

    credit = await eventually(limit_grew, what="credit limit growth")
    await bank.check_invariants([loan_id])
    # Let any second copy still in flight arrive before counting what it could have doubled.
    await asyncio.sleep(3)
    wallet = await bank.wallet(who.phone)
    sagas = await bank.call("GET", "loans", "/v1/sagas", headers=bank.maker,
                            params={"loan_id": loan_id})
    books = await bank.call("GET", "payments", f"/v1/loans/{loan_id}/portfolio-balance",
                            headers=bank.maker)
    sms = await bank.messages(client_id=who.client_id)
    return {
        "loan": {"status": loan["status"], "outstanding": loan["outstanding"]},
        "wallet": {k: wallet[k] for k in ("balance", "deposits", "payouts", "collections",
                                          "refunds", "consistent")},
        "credit": {"growth": str(D(credit["credit_limit"]) - limit_before),
                   "exposure": credit["exposure"]},
        "sagas": sorted(s["state"] for s in sagas["items"]),
        "portfolio_balance": books["portfolio_balance"] if books["exists"] else "0.00",
        "sms": sorted(m["template"] for m in sms),
        "sms_not_sent": [m["template"] for m in sms
                         if m["status"] in ("failed", "suppressed", "expired")],
    }


@pytest.fixture
async def normal_mode_afterwards(bank: Bank) -> AsyncIterator[None]:
    yield
    await relay_mode(bank, duplicate=False)


async def test_every_event_delivered_twice_ends_as_a_clean_run(
        bank: Bank, normal_mode_afterwards: None) -> None:
    clean = await journey(bank)
    assert clean["sms"] == EXPECTED_SMS
    assert clean["loan"]["status"] == "closed" and clean["sagas"] == ["completed"]
    assert clean["wallet"]["consistent"] is True
    # only the excess came back: 3000 + 500 - 3500 + 500
    assert D(clean["wallet"]["refunds"]) == D("500.00"), clean["wallet"]
    assert D(clean["wallet"]["balance"]) == D("500.00"), clean["wallet"]

    await relay_mode(bank, duplicate=True)
    before = await duplicates_seen(bank)
    doubled = await journey(bank)
    # The relays really did publish everything twice, and the inboxes dropped the copies.
    assert await duplicates_seen(bank) - before >= 10
    assert doubled == clean
