"""A loan installment paid from voluntary savings by standing instruction: payments books
it once (Dr the account's deposits / Cr repayment suspense, ``standing_instruction:<id>``),
announces it to loans as a repayment, posts loans' allocation out of suspense, and gives
back to the account what loans does not take. Throughout, the account's deposit
liability (``GET /v1/ledger/savings/{id}``) equals savings' balance.

Savings and loans are played by the test (``savings.events``, ``loans.events``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from services.payments.domain.repayment_ids import payment_uuid
from shared.contracts import loans, savings
from shared.envelope import envelope_for
from tests.infra import Infra
from tests.integration.payments.branch_rig import BranchRig, branch_rig, today
from tests.kafka_facts import until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def brig(infra: Infra, isolated_schema: Callable[..., Any]) -> AsyncIterator[BranchRig]:
    async with branch_rig(infra, isolated_schema, "payments_si") as rig:
        yield rig


async def liability(brig: BranchRig, account_id: str) -> str:
    resp = await brig.rig.api.get(f"/v1/ledger/savings/{account_id}",
                                  headers=brig.rig.auth())
    assert resp.status_code == 200, resp.text
    return str(resp.json()["deposit_liability"])


async def liability_is(brig: BranchRig, account_id: str, amount: str) -> None:
    async def reached() -> bool:
        return await liability(brig, account_id) == amount
    await until(reached, f"deposit liability of {account_id} = {amount}")


async def funded_account(brig: BranchRig, amount: str) -> str:
    """A voluntary account savings credited with cash at a branch."""
    account = str(uuid.uuid4())
    await brig.rig.send(savings.DepositPosted(
        account_id=account, client_id="client-1", deposit_id=f"dep-{uuid.uuid4().hex}",
        amount=Decimal(amount), channel="branch_cash", ledger_balance=Decimal(amount),
        available_balance=Decimal(amount), value_date=today(), posted_by="teller-1"),
        key=account)
    await liability_is(brig, account, amount)
    return account


def paid(account: str, loan_id: str, amount: str, balance_after: str
         ) -> savings.StandingInstructionPayment:
    return savings.StandingInstructionPayment(
        account_id=account, client_id="client-1", payment_id=str(uuid.uuid4()),
        loan_id=loan_id, installment=3, due_date=today(), amount=Decimal(amount),
        amount_due=Decimal(amount), ledger_balance=Decimal(balance_after),
        available_balance=Decimal(balance_after), value_date=today())


def applied(si: savings.StandingInstructionPayment, unallocated: str = "0.00"
            ) -> loans.RepaymentApplied:
    taken = si.amount - Decimal(unallocated)
    return loans.RepaymentApplied(
        loan_id=si.loan_id, client_id=si.client_id, payment_id=si.payment_id,
        amount=si.amount, allocation=[], principal_paid=Decimal("0.00"),
        interest_paid=taken, fees_paid=Decimal("0.00"), penalties_paid=Decimal("0.00"),
        outstanding_principal=Decimal("0.00"), outstanding_total=Decimal("0.00"),
        next_due_date=None, next_due_amount=None, closes_loan=False,
        unallocated=Decimal(unallocated))


async def assert_balanced(brig: BranchRig) -> None:
    tb = await brig.rig.trial_balance()
    assert tb["balanced"] is True and tb["total_debits"] == tb["total_credits"]


async def test_an_installment_paid_from_savings_is_booked_once_and_applied(
        brig: BranchRig) -> None:
    rig, loan_id = brig.rig, str(uuid.uuid4())
    account = await funded_account(brig, "1000.00")
    si = paid(account, loan_id, "420.00", balance_after="580.00")
    env = envelope_for(si, aggregate_id=account)
    await rig.send(si, key=account, env=env)
    await rig.send(si, key=account, env=env)   # redelivered
    await rig.send(si, key=account)            # published again (another event id)
    received = await brig.reply("RepaymentReceived", payment_id=si.payment_id)
    assert received["loan_id"] == loan_id and received["amount"] == "420.00"
    assert received["provider"] == "savings" and received["payer_msisdn"] is None
    await liability_is(brig, account, "580.00")   # = savings' balance after the debit
    await brig.consumed("payments-savings")
    assert len(brig.replies_of("RepaymentReceived", payment_id=si.payment_id)) == 1
    assert await brig.sides(f"standing_instruction:{si.payment_id}") == {
        (f"savings:{account}", "debit", Decimal("420.00")),
        ("suspense", "credit", Decimal("420.00"))}
    assert await liability(brig, account) == "580.00"

    suspense = await brig.balance("suspense")
    await rig.send(applied(si), key=loan_id)
    posted = await brig.reply("RepaymentPosted", payment_id=si.payment_id)
    assert posted["amount"] == "420.00"
    assert await brig.balance("suspense") == suspense - Decimal("420.00")
    async with rig.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT source, provider, status FROM payments WHERE id = $1",
                                  payment_uuid(si.payment_id))
    assert row is not None
    assert dict(row) == {"source": "standing_instruction", "provider": "savings",
                         "status": "posted"}
    assert await liability(brig, account) == "580.00"
    await assert_balanced(brig)


async def test_a_rejected_standing_instruction_payment_goes_back_to_the_account(
        brig: BranchRig) -> None:
    rig, loan_id = brig.rig, str(uuid.uuid4())
    account = await funded_account(brig, "600.00")
    si = paid(account, loan_id, "250.00", balance_after="350.00")
    await rig.send(si, key=account)
    await brig.reply("RepaymentReceived", payment_id=si.payment_id)
    await liability_is(brig, account, "350.00")

    rejection = loans.RepaymentRejected(
        loan_id=loan_id, client_id="client-1", payment_id=si.payment_id, amount=si.amount,
        payer_msisdn=None, reason="loan_closed", refundable_amount=si.amount)
    await rig.send(rejection, key=loan_id)
    await rig.send(rejection, key=loan_id)     # told twice: given back once
    back = await brig.reply("SavingsDepositReceived", payment_id=si.payment_id)
    assert back["account_id"] == account and back["amount"] == "250.00"
    assert back["provider"] == "savings"
    # savings credits it back (a deposit from payments): ledger and savings agree again
    await liability_is(brig, account, "600.00")
    await brig.consumed("payments")
    assert len(brig.replies_of("SavingsDepositReceived", payment_id=si.payment_id)) == 1
    assert not brig.replies_of("RefundFailed", payment_id=str(payment_uuid(si.payment_id)))
    assert await brig.sides(f"standing_instruction_return:{si.payment_id}") == {
        ("suspense", "debit", Decimal("250.00")),
        (f"savings:{account}", "credit", Decimal("250.00"))}
    async with rig.pool.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM payments WHERE id = $1",
                                   payment_uuid(si.payment_id)) == "refunded"
        assert await conn.fetchval("SELECT count(*) FROM payouts WHERE payment_id = $1",
                                   payment_uuid(si.payment_id)) == 0
    await assert_balanced(brig)


async def test_an_excess_loans_does_not_allocate_goes_back_to_the_account(
        brig: BranchRig) -> None:
    rig, loan_id = brig.rig, str(uuid.uuid4())
    account = await funded_account(brig, "500.00")
    si = paid(account, loan_id, "300.00", balance_after="200.00")
    await rig.send(si, key=account)
    await brig.reply("RepaymentReceived", payment_id=si.payment_id)
    await rig.send(applied(si, unallocated="20.00"), key=loan_id)
    posted = await brig.reply("RepaymentPosted", payment_id=si.payment_id)
    assert posted["amount"] == "280.00"
    back = await brig.reply("SavingsDepositReceived", payment_id=si.payment_id)
    assert back["amount"] == "20.00"
    await liability_is(brig, account, "220.00")   # savings credits the 20.00 back too
    await assert_balanced(brig)
