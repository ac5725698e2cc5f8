"""Savings' money through payments: withdrawals paid out (once, refused, in doubt), wallet
deposits to a ``SAV-`` reference credited and, when savings refuses them, refunded; branch
cash, fees and interest booked from ``savings.events``; every account's deposit
liability equal to what savings holds, and the trial balance zero.

The savings service is not running: the tests play its part, publishing its commands
and events on the (prefixed) topics and reading payments' replies with a
:class:`~tests.kafka_facts.TopicReader`. Payments runs with its own schema, topic prefix
and consumer groups (this module's own, because the savings topics must exist before
its consumers start). Deadlines are reached by moving payments' clock, not by waiting.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest

from services.payments.handlers.payouts import settle_from_evidence
from shared.contracts import savings
from shared.envelope import envelope_for
from shared.uow import UnitOfWork
from tests.infra import Infra
from tests.integration.payments.branch_rig import BranchRig, branch_rig
from tests.integration.payments.conftest import Rig, ShiftedClock, new_msisdn
from tests.kafka_facts import until

pytestmark = pytest.mark.integration

PAST_THE_DEADLINE = 200.0  # seconds: the commands' deadline is 120 s away, grace 1 s


class SavingsRig(BranchRig):
    """Payments and the simulator, plus what a test needs to play savings."""

    async def liability(self, account_id: str) -> dict[str, Any]:
        resp = await self.rig.api.get(f"/v1/ledger/savings/{account_id}",
                                      headers=self.rig.auth())
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    async def liability_is(self, account_id: str, amount: str) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            view = await self.liability(account_id)
            return view if view["deposit_liability"] == amount else None
        found = await until(reached, f"deposit liability of {account_id} = {amount}")
        assert found is not None
        return found

    async def cash_deposit(self, account_id: str, amount: str) -> None:
        """Savings took cash at a branch (and tells payments with DepositPosted)."""
        await self.rig.send(savings.DepositPosted(
            account_id=account_id, client_id="client-1", deposit_id=f"dep-{uuid.uuid4().hex}",
            amount=Decimal(amount), channel="branch_cash", ledger_balance=Decimal(amount),
            available_balance=Decimal(amount), value_date=dt.date.today(),
            posted_by="teller-1"), key=account_id)


@pytest.fixture(scope="module")
async def srig(infra: Infra, isolated_schema: Callable[..., Any]) -> AsyncIterator[SavingsRig]:
    """This module's own payments (the savings topics exist before its consumers start)."""
    async with branch_rig(infra, isolated_schema, "payments_sv") as b:
        yield SavingsRig(b.rig, b.app, b.replies, b.bootstrap)


@pytest.fixture
def sclock(srig: SavingsRig) -> Iterator[ShiftedClock]:
    try:
        yield srig.rig.clock
    finally:
        srig.rig.clock.reset()


def new_account() -> str:
    return str(uuid.uuid4())


def withdrawal(account_id: str, msisdn: str, amount: str, *, deadline_s: float = 120
               ) -> savings.PayOutWithdrawal:
    return savings.PayOutWithdrawal(
        withdrawal_id=str(uuid.uuid4()), account_id=account_id, client_id="client-1",
        partner_id="partner-a", amount=Decimal(amount), msisdn=msisdn,
        deadline=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=deadline_s))


async def payout_row(rig: Rig, withdrawal_id: str) -> Any:
    async with rig.pool.acquire() as conn:
        return await conn.fetchrow("SELECT * FROM payouts WHERE saga_id = $1",
                                   f"withdrawal:{withdrawal_id}")


async def wallet_paid(rig: Rig, msisdn: str, amount: str) -> bool:
    return bool((await rig.wallet(msisdn))["payouts"] == amount)


async def assert_balanced(rig: Rig) -> None:
    tb = await rig.trial_balance()
    assert tb["balanced"] is True and tb["total_debits"] == tb["total_credits"]


# -- withdrawals -----------------------------------------------------------------------


async def test_a_withdrawal_is_paid_once_whatever_is_redelivered(srig: SavingsRig) -> None:
    rig, account, msisdn = srig.rig, new_account(), new_msisdn()
    await srig.cash_deposit(account, "1000.00")
    await srig.liability_is(account, "1000.00")

    cmd = withdrawal(account, msisdn, "200.00")
    env = envelope_for(cmd, aggregate_id=account)
    await rig.send(cmd, key=account, env=env)
    await rig.send(cmd, key=account, env=env)          # the broker redelivers it
    paid = await srig.reply("WithdrawalPaidOut", withdrawal_id=cmd.withdrawal_id)
    assert paid["account_id"] == account and paid["amount"] == "200.00"
    assert paid["provider"] == "sim" and paid["provider_reference"].startswith("SIM-")
    assert srig.replies.matching("WithdrawalPaidOut", withdrawal_id=cmd.withdrawal_id)[0].key \
        == account
    # savings' resend (its reply lost) is answered with what is known, and pays nothing
    await rig.send(cmd, key=account)
    again = await srig.reply("WithdrawalPaidOut", count=2, withdrawal_id=cmd.withdrawal_id)
    assert again["provider_reference"] == paid["provider_reference"]
    await srig.consumed("payments")

    wallet = await rig.wallet(msisdn)
    assert wallet["payouts"] == "200.00" and wallet["consistent"] is True
    assert len([t for t in rig.world.transactions.values() if t.msisdn == msisdn]) == 1
    assert {(r["account_id"], r["side"], r["amount"])
            for r in await rig.lines(f"withdrawal:{cmd.withdrawal_id}")} == {
        (f"savings:{account}", "debit", Decimal("200.00")),
        ("settlement:sim", "credit", Decimal("200.00"))}
    assert len(srig.replies_of("WithdrawalPaidOut", withdrawal_id=cmd.withdrawal_id)) == 2
    assert not srig.replies_of("WithdrawalPayoutFailed", withdrawal_id=cmd.withdrawal_id)

    # savings settles the hold and charges its fee: the fee is income, once
    done = savings.WithdrawalCompleted(
        account_id=account, client_id="client-1", withdrawal_id=cmd.withdrawal_id,
        amount=Decimal("200.00"), fee=Decimal("5.00"), provider_reference=paid[
            "provider_reference"], ledger_balance=Decimal("795.00"),
        available_balance=Decimal("795.00"), value_date=dt.date.today())
    await rig.send(done, key=account)
    await rig.send(done, key=account)  # published twice (another event id): booked once
    view = await srig.liability_is(account, "795.00")   # = savings' ledger balance
    assert view["withdrawals_in_flight"] == "0.00" and view["exists"] is True
    assert view["payment_reference"] == f"SAV-{account}"
    await srig.consumed("payments-savings")
    assert len(await rig.lines(f"savings_fee:{cmd.withdrawal_id}")) == 2
    assert (await srig.liability(account))["deposit_liability"] == "795.00"
    await assert_balanced(rig)


async def test_a_withdrawal_the_provider_refuses_fails_and_is_reversed(srig: SavingsRig
                                                                        ) -> None:
    rig, account, msisdn = srig.rig, new_account(), new_msisdn()
    await srig.cash_deposit(account, "500.00")
    await srig.liability_is(account, "500.00")
    await rig.configure(msisdn, failure_rate=1.0)
    cmd = withdrawal(account, msisdn, "300.00")
    await rig.send(cmd, key=account)
    failed = await srig.reply("WithdrawalPayoutFailed", withdrawal_id=cmd.withdrawal_id)
    assert failed["account_id"] == account and failed["amount"] == "300.00"
    assert failed["provider"] == "sim" and failed["reason"]
    assert len(await rig.lines(f"reversal:withdrawal:{cmd.withdrawal_id}")) == 2
    view = await srig.liability(account)   # savings releases the hold: 500 on both sides
    assert view["deposit_liability"] == "500.00" and view["withdrawals_in_flight"] == "0.00"
    assert (await rig.wallet(msisdn))["payouts"] == "0.00"
    # a resend is answered failed again, and nothing is reversed twice
    await rig.send(cmd, key=account)
    await srig.reply("WithdrawalPayoutFailed", count=2, withdrawal_id=cmd.withdrawal_id)
    assert len(await rig.lines(f"reversal:withdrawal:{cmd.withdrawal_id}")) == 2
    assert not srig.replies_of("WithdrawalPaidOut", withdrawal_id=cmd.withdrawal_id)
    await assert_balanced(rig)


async def _statement_entry(rig: Rig, saga_id: str) -> dict[str, Any] | None:
    today = dt.datetime.now(dt.UTC).date()
    for day in (today, today - dt.timedelta(days=1)):
        data = (await rig.sim.get(f"/sim/statements/{day.isoformat()}")).json()
        for entry in data["entries"]:
            if entry["requestReference"] == saga_id:
                return dict(entry)
    return None


async def test_an_executed_but_unanswered_withdrawal_is_in_doubt_until_the_provider_says(
        srig: SavingsRig, sclock: ShiftedClock) -> None:
    rig, account, msisdn = srig.rig, new_account(), new_msisdn()
    await srig.cash_deposit(account, "900.00")
    await srig.liability_is(account, "900.00")
    # executes, never answers, and its status API denies it: only the statement knows
    await rig.configure(msisdn, execute_without_answer=True, status_unknown_s=600)
    cmd = withdrawal(account, msisdn, "400.00")
    await rig.send(cmd, key=account)

    async def sent() -> bool:
        row = await payout_row(rig, cmd.withdrawal_id)
        return row is not None and row["request_date"] is not None
    await until(sent, "the request was sent")
    await until(lambda: wallet_paid(rig, msisdn, "400.00"), "the provider executed it")

    sclock.advance(seconds=PAST_THE_DEADLINE)
    doubt = await srig.reply("WithdrawalPayoutInDoubt", withdrawal_id=cmd.withdrawal_id)
    assert doubt["account_id"] == account and doubt["amount"] == "400.00"
    assert doubt["provider"] == "sim" and doubt["since"]
    # no release on uncertainty: nothing reversed, still in flight, still asked
    row = await payout_row(rig, cmd.withdrawal_id)
    assert row["status"] == "in_doubt" and row["kind"] == "withdrawal"
    assert await rig.lines(f"reversal:withdrawal:{cmd.withdrawal_id}") == []
    view = await srig.liability(account)
    assert view["deposit_liability"] == "500.00" and view["withdrawals_in_flight"] == "400.00"
    await rig.send(cmd, key=account)   # a resend: answered in doubt again
    await srig.reply("WithdrawalPayoutInDoubt", count=2, withdrawal_id=cmd.withdrawal_id)

    # the provider's word — its statement, read by reconciliation — settles it
    entry = await until(lambda: _statement_entry(rig, f"withdrawal:{cmd.withdrawal_id}"),
                        "on the provider's statement")
    assert entry is not None
    uow = UnitOfWork(rig.pool, topic_prefix=rig.settings.topic_prefix)
    async with uow:
        settled = await settle_from_evidence(uow, rig.settings, row["id"], "completed",
                                             entry["transactionReference"], "reconciliation")
        await uow.commit()
    assert settled is not None and settled.status.value == "completed"
    paid = await srig.reply("WithdrawalPaidOut", withdrawal_id=cmd.withdrawal_id)
    assert paid["provider_reference"] == entry["transactionReference"]
    types = [r.type for r in srig.replies.matching(withdrawal_id=cmd.withdrawal_id)]
    assert types == ["WithdrawalPayoutInDoubt", "WithdrawalPayoutInDoubt", "WithdrawalPaidOut"]
    assert (await rig.wallet(msisdn))["payouts"] == "400.00"
    assert len([t for t in rig.world.transactions.values() if t.msisdn == msisdn]) == 1
    assert await rig.lines(f"reversal:withdrawal:{cmd.withdrawal_id}") == []
    view = await srig.liability(account)
    assert view["deposit_liability"] == "500.00" and view["withdrawals_in_flight"] == "0.00"
    await assert_balanced(rig)


# -- wallet deposits ------------------------------------------------------------------------


async def deposit_from_wallet(rig: Rig, reference: str, amount: str, msisdn: str
                              ) -> dict[str, Any]:
    resp = await rig.sim.post("/sim/cash-in", json={"msisdn": msisdn, "amount": "1000.00"})
    assert resp.status_code == 201, resp.text
    resp = await rig.sim.post("/sim/collections", json={
        "msisdn": msisdn, "amount": amount, "reference": reference})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def test_a_wallet_deposit_to_a_savings_reference_is_credited_once(srig: SavingsRig
                                                                        ) -> None:
    rig, account, msisdn = srig.rig, new_account(), new_msisdn()
    await rig.configure(msisdn, duplicate_callbacks=True)
    sent = await deposit_from_wallet(rig, f"sav-{account.upper()}", "250.00", msisdn)
    first, second = sent["callbacks"]
    a, b = orjson.loads(first["response"]), orjson.loads(second["response"])
    assert (a["status"], b["status"]) == ("accepted", "duplicate")
    assert a["payment_id"] == b["payment_id"]
    pid = a["payment_id"]
    received = await srig.reply("SavingsDepositReceived", payment_id=pid)
    assert received["account_id"] == account and received["amount"] == "250.00"
    assert received["payer_msisdn"] == msisdn and received["provider"] == "sim"
    assert received["external_ref"] == sent["transactionReference"]
    assert srig.replies.matching("SavingsDepositReceived", payment_id=pid)[0].key == account
    assert {(r["account_id"], r["side"], r["amount"])
            for r in await rig.lines(f"collection:{pid}")} == {
        ("settlement:sim", "debit", Decimal("250.00")),
        (f"savings:{account}", "credit", Decimal("250.00"))}
    assert not srig.replies_of("RepaymentReceived", payment_id=pid)   # not a loan's

    # savings credits it (DepositPosted, mobile_money): already on the books, posted once
    await rig.send(savings.DepositPosted(
        account_id=account, client_id="client-1", deposit_id=f"payment:{pid}",
        amount=Decimal("250.00"), channel="mobile_money", payment_id=pid,
        ledger_balance=Decimal("250.00"), available_balance=Decimal("250.00"),
        value_date=dt.date.today(), posted_by="payments"), key=account)

    async def posted() -> bool:
        resp = await rig.api.get(f"/v1/payments/{pid}", headers=rig.auth())
        return bool(resp.json()["status"] == "posted")
    await until(posted, "the payment is posted")
    assert len(srig.replies_of("SavingsDepositReceived", payment_id=pid)) == 1
    assert (await srig.liability(account))["deposit_liability"] == "250.00"
    await assert_balanced(rig)


async def test_a_deposit_savings_rejects_is_refunded_once(srig: SavingsRig) -> None:
    rig, account, msisdn = srig.rig, new_account(), new_msisdn()
    sent = await deposit_from_wallet(rig, f"SAV-{account}", "180.00", msisdn)
    pid = orjson.loads(sent["callbacks"][0]["response"])["payment_id"]
    await srig.reply("SavingsDepositReceived", payment_id=pid)
    assert (await srig.liability(account))["deposit_liability"] == "180.00"

    rejected = savings.SavingsDepositRejected(
        account_id=account, client_id="", payment_id=pid, amount=Decimal("180.00"),
        reason="unknown_account")
    await rig.send(rejected, key=account)
    await rig.send(rejected, key=account)   # published again (another event id)
    issued = await srig.reply("RefundIssued", payment_id=pid)
    assert issued["amount"] == "180.00"
    # the SAV- reference stays in loan_id; savings_account_id says it is no loan
    assert issued["loan_id"] == f"SAV-{account}"
    assert issued["savings_account_id"] == account
    await srig.consumed("payments-savings")
    assert len(srig.replies_of("RefundIssued", payment_id=pid)) == 1
    wallet = await rig.wallet(msisdn)
    assert wallet["refunds"] == "180.00" and wallet["consistent"] is True
    assert len(await rig.lines(f"refund_due:{pid}")) == 2
    assert len(await rig.lines(f"refund:{pid}")) == 2
    resp = await rig.api.get(f"/v1/payments/{pid}", headers=rig.auth())
    assert resp.json()["status"] == "refunded"
    assert (await srig.liability(account))["deposit_liability"] == "0.00"
    await assert_balanced(rig)


# -- savings' own movements, the invariant ------------------------------------------------


async def test_interest_and_cash_are_booked_once_and_mirror_savings(srig: SavingsRig) -> None:
    rig, account = srig.rig, new_account()
    savings_balance = Decimal("0.00")   # what savings would hold, movement by movement
    await srig.cash_deposit(account, "1000.00")
    savings_balance += Decimal("1000.00")
    start, end = dt.date(2026, 1, 1), dt.date(2026, 1, 31)
    posted = savings.InterestPosted(
        account_id=account, client_id="client-1", period_start=start, period_end=end,
        gross=Decimal("2.54"), withholding_tax=Decimal("0.51"), net=Decimal("2.03"),
        ledger_balance=Decimal("1002.03"), business_date=end)
    await rig.send(posted, key=account)
    await rig.send(posted, key=account)   # republished: booked once
    savings_balance += posted.net
    await srig.liability_is(account, str(savings_balance))
    await srig.consumed("payments-savings")
    assert (await srig.liability(account))["deposit_liability"] == "1002.03"
    interest = {(r["account_id"], r["side"], r["amount"]) for r in await rig.lines(
        f"savings_interest:{account}:")}
    assert interest == {("expense:savings_interest", "debit", Decimal("2.54")),
                        (f"savings:{account}", "credit", Decimal("2.54"))}
    assert {(r["account_id"], r["side"], r["amount"]) for r in await rig.lines(
        f"savings_tax:{account}:")} == {(f"savings:{account}", "debit", Decimal("0.51")),
                                        ("tax:withholding_payable", "credit", Decimal("0.51"))}
    tb = await rig.trial_balance()
    kinds = {k["kind"] for k in tb["by_kind"]}
    assert {"savings_deposits", "branch_cash", "interest_expense",
            "withholding_tax_payable"} <= kinds
    await assert_balanced(rig)


async def test_an_unknown_account_has_no_liability(srig: SavingsRig) -> None:
    view = await srig.liability(new_account())
    assert view["exists"] is False and view["deposit_liability"] == "0.00"
    assert view["withdrawals_in_flight"] == "0.00"
