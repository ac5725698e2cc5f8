"""The compulsory savings step of the disbursement saga on the real broker and database:
the test plays clients, savings and payments."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from shared.contracts.clients import CreditReleased
from shared.contracts.savings import (
    CompulsorySavingsHeld,
    CompulsorySavingsInsufficient,
    CompulsorySavingsReleased,
)
from tests.infra import Infra
from tests.integration.loans.facts import output_reader, settled
from tests.integration.loans.harness import Loans, running_loans

pytestmark = pytest.mark.integration


async def _approved_and_reserved(svc: Loans) -> tuple[str, str, str]:
    product = await svc.create_product()
    resp = await svc.client.put(f"/v1/products/{product}/compulsory-savings",
                                headers=svc.operator,
                                json={"share_of_principal": "0.10",
                                      "savings_product_id": "sav-prd-1"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["example"] == {"principal": "10000.00", "required": "1000.00"}
    client_id = await svc.register_client()
    loan = await svc.apply(client_id, product, "1200.00", 4)
    saga_id = await svc.approve(loan["id"])
    await svc.bus.wait_for("ReserveCredit", saga_id=saga_id)
    await svc.reserve(saga_id, loan["id"], client_id)
    return loan["id"], saga_id, client_id


async def test_the_payout_waits_for_the_compulsory_savings_and_goes_on_once_held(
        infra: Infra, isolated_schema: Any) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        loan_id, saga_id, client_id = await _approved_and_reserved(svc)
        hold = (await svc.bus.wait_for("HoldCompulsorySavings", saga_id=saga_id))[0]
        assert hold.topic == "savings.commands" and hold.key == loan_id
        assert hold.payload["required"] == "120.00"
        assert hold.payload["principal"] == "1200.00"
        await svc.bus.send(CompulsorySavingsInsufficient(
            saga_id=saga_id, loan_id=loan_id, client_id=client_id,
            required=Decimal("120.00"), held=Decimal("20.00"), shortfall=Decimal("100.00"),
            account_ids=["acc-1"], reason="insufficient_balance"), key=loan_id)
        await svc.wait_until(
            f"SELECT 1 FROM saga_timeline WHERE saga_id = '{saga_id}'"
            " AND event = 'CompulsorySavingsInsufficient'")
        async with output_reader(svc) as sent:
            await settled(svc, sent)
            assert sent.matching("DisburseLoan", saga_id=saga_id) == []
        assert (await svc.get(loan_id))["status"] == "approved"
        saga = (await svc.client.get(f"/v1/sagas/{saga_id}", headers=svc.operator)).json()
        assert saga["state"] == "holding_savings"
        assert saga["data"]["savings_shortfall"] == "100.00"

        # a deposit later: savings answers Held for the same saga
        await svc.bus.send(CompulsorySavingsHeld(
            saga_id=saga_id, loan_id=loan_id, client_id=client_id,
            required=Decimal("120.00"), held=Decimal("120.00"), account_ids=["acc-1"]),
            key=loan_id)
        disburse = (await svc.bus.wait_for("DisburseLoan", saga_id=saga_id))[0]
        assert disburse.payload["amount"] == "1200.00"
        await svc.complete(saga_id, loan_id, client_id, "1200.00")
        await svc.wait_status(loan_id, "active")
        async with output_reader(svc) as sent:
            await settled(svc, sent)
            assert sent.matching("ReleaseCompulsorySavings", saga_id=saga_id) == []


async def test_still_short_at_the_deadline_releases_credit_and_savings_visibly(
        infra: Infra, isolated_schema: Any) -> None:
    async with running_loans(infra, isolated_schema, saga_savings_wait_s=1.5) as svc:
        loan_id, saga_id, client_id = await _approved_and_reserved(svc)
        await svc.bus.wait_for("HoldCompulsorySavings", saga_id=saga_id)
        await svc.bus.send(CompulsorySavingsInsufficient(
            saga_id=saga_id, loan_id=loan_id, client_id=client_id,
            required=Decimal("120.00"), held=Decimal("0.00"), shortfall=Decimal("120.00"),
            account_ids=[], reason="no_account"), key=loan_id)
        release = (await svc.bus.wait_for("ReleaseCompulsorySavings", saga_id=saga_id))[0]
        assert release.key == loan_id and "shortfall of 120.00" in release.payload["reason"]
        await svc.bus.wait_for("ReleaseCredit", saga_id=saga_id)
        failed = (await svc.bus.wait_for("LoanDisbursementFailed", loan_id=loan_id))[0]
        assert "compulsory savings" in failed.payload["reason"]
        await svc.wait_status(loan_id, "disbursement_failed")
        await svc.bus.send(CreditReleased(client_id=client_id, reservation_id=saga_id,
                                          saga_id=saga_id, loan_id=loan_id,
                                          amount=Decimal("1200.00")), key=client_id)
        await svc.bus.send(CompulsorySavingsReleased(
            saga_id=saga_id, loan_id=loan_id, client_id=client_id, reason="released"),
            key=loan_id)
        for _ in range(100):
            saga = (await svc.client.get(f"/v1/sagas/{saga_id}",
                                         headers=svc.operator)).json()
            if saga["state"] == "compensated":
                break
            await asyncio.sleep(0.1)
        assert saga["state"] == "compensated", saga
        async with output_reader(svc) as sent:
            await settled(svc, sent)
            assert sent.matching("DisburseLoan", saga_id=saga_id) == []
