"""Payee validation (``ValidatePayee``, before a group's payouts): payments asks the
provider's account-status lookup and answers only on its word — confirmed, refused, or
in doubt and asked again until it answers. A lookup moves no money."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from shared.contracts.payments import ValidatePayee
from tests.integration.payments.conftest import Rig, new_id
from tests.integration.payments.facts import settled
from tests.kafka_facts import until
from tests.rigs import new_msisdn

pytestmark = pytest.mark.integration


def validate(loan_id: str, msisdn: str, saga_id: str | None = None) -> ValidatePayee:
    return ValidatePayee(saga_id=saga_id or str(uuid.uuid4()), loan_id=loan_id,
                         client_id=f"cli-{loan_id}", msisdn=msisdn,
                         amount=Decimal("1000.00"))


async def lookup(rig: Rig, saga_id: str) -> Any:
    async with rig.pool.acquire() as conn:
        return await conn.fetchrow("SELECT * FROM payee_lookups WHERE saga_id = $1", saga_id)


async def nothing_paid(rig: Rig, loan_id: str) -> None:
    async with rig.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM payouts WHERE loan_id = $1",
                                   loan_id) == 0
    assert await rig.portfolio(loan_id) == Decimal("0.00")


async def test_a_wallet_that_can_receive_is_confirmed_and_answered_again(rig: Rig) -> None:
    loan, msisdn = new_id("loan"), new_msisdn()
    cmd = validate(loan, msisdn)
    await rig.send(cmd, key=loan)
    confirmed = await rig.events.wait("PayeeConfirmed", loan_id=loan)
    assert confirmed["saga_id"] == cmd.saga_id and confirmed["msisdn"] == msisdn
    assert confirmed["account_status"] == "available" and confirmed["provider"] == "sim"
    assert rig.world.lookups.count(msisdn) == 1
    # the saga's resend (its reply lost): answered again from what is known, not re-asked
    await rig.send(cmd, key=loan)
    await settled(rig)
    assert len(rig.events.of("PayeeConfirmed", loan_id=loan)) == 2
    assert rig.world.lookups.count(msisdn) == 1
    assert rig.events.of("PayeeRefused", loan_id=loan) == []
    await nothing_paid(rig, loan)


async def test_a_wallet_the_provider_reports_unavailable_is_refused(rig: Rig) -> None:
    loan, msisdn = new_id("loan"), new_msisdn()
    await rig.configure(msisdn, failure_rate=1.0)   # the wallet refuses every payout
    await rig.send(validate(loan, msisdn), key=loan)
    refused = await rig.events.wait("PayeeRefused", loan_id=loan)
    assert "unavailable" in refused["reason"]
    unknown_loan, unknown = new_id("loan"), new_msisdn()
    await rig.configure(unknown, account_status="unknown")
    await rig.send(validate(unknown_loan, unknown), key=unknown_loan)
    refused = await rig.events.wait("PayeeRefused", loan_id=unknown_loan)
    assert "no such wallet" in refused["reason"]
    await settled(rig)
    assert rig.events.of("PayeeConfirmed", loan_id=loan) == []
    row = await lookup(rig, refused["saga_id"])
    assert row["status"] == "refused" and row["decided_at"] is not None
    await nothing_paid(rig, loan)


async def test_a_lookup_without_an_answer_is_in_doubt_and_asked_until_it_answers(
        rig: Rig) -> None:
    loan, msisdn = new_id("loan"), new_msisdn()
    await rig.configure(msisdn, lookup_unanswered=True)
    cmd = validate(loan, msisdn)
    await rig.send(cmd, key=loan)
    doubt = await rig.events.wait("PayeeLookupInDoubt", loan_id=loan)
    assert "no answer" in doubt["reason"]

    async def asked_again() -> Any:
        return rig.world.lookups.count(msisdn) >= 2 or None
    await until(asked_again, "the lookup asked again", 30)
    row = await lookup(rig, cmd.saga_id)
    assert row["status"] == "pending" and row["in_doubt_since"] is not None
    assert rig.events.of("PayeeConfirmed", loan_id=loan) == []
    assert rig.events.of("PayeeRefused", loan_id=loan) == []
    # told once, however many times it was asked
    assert len(rig.events.of("PayeeLookupInDoubt", loan_id=loan)) == 1
    # the provider answers at last
    await rig.configure(msisdn, lookup_unanswered=False)
    await rig.events.wait("PayeeConfirmed", loan_id=loan, timeout_s=60)
    await settled(rig)
    assert len(rig.events.of("PayeeLookupInDoubt", loan_id=loan)) == 1
    await nothing_paid(rig, loan)
