"""Branch cash through payments: a loan officer's cash collection becomes a repayment
booked to the branch's cash (once per collection, whatever is redelivered or recorded
again), follows the normal repayment saga out of suspense, and a branch's day-end count
books its difference against the branch's cash-difference suspense — in the ledger and
in the trial balance by office, under the cash (1110) and cash-difference (3481) GL
accounts, never the catch-all 3499.

Loans is played by the test: it publishes ``CashCollectionRecorded``,
``BranchCashReconciled`` and its answers (``RepaymentApplied``/``RepaymentRejected``) on
the (prefixed) ``loans.events`` and reads payments' replies.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from services.payments.domain.repayment_ids import payment_uuid
from shared.contracts import loans
from shared.envelope import envelope_for
from tests.infra import Infra
from tests.integration.payments.branch_rig import BranchRig, branch_rig, today
from tests.kafka_facts import until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def brig(infra: Infra, isolated_schema: Callable[..., Any]) -> AsyncIterator[BranchRig]:
    async with branch_rig(infra, isolated_schema, "payments_cash") as rig:
        yield rig


def new_branch() -> str:
    return f"b-{uuid.uuid4().hex[:10]}"


def collection(loan_id: str, branch: str, amount: str, *, sheet_id: str | None = None,
               office_id: str | None = None) -> loans.CashCollectionRecorded:
    day = today()
    sheet_id = sheet_id or f"cs:{day}:officer:off-{uuid.uuid4().hex[:6]}"
    office = office_id or branch
    return loans.CashCollectionRecorded(
        loan_id=loan_id, client_id=f"client-{loan_id[:8]}",
        collection_id=f"csh_{uuid.uuid5(uuid.NAMESPACE_URL, sheet_id + loan_id).hex}",
        sheet_id=sheet_id, amount=Decimal(amount), office_id=office,
        office_path=f"ho/r-souss/{branch}" + ("" if office == branch else f"/{office}"),
        branch_office_id=branch, cash_account=f"cash:branch:{branch}", officer_id="off-1",
        collected_on=day, collected_at=dt.datetime.now(dt.UTC), recorded_by="officer-1")


def applied(c: loans.CashCollectionRecorded) -> loans.RepaymentApplied:
    """Loans' allocation of the whole amount: fees first, the rest interest."""
    fees = min(Decimal("10.00"), c.amount)
    return loans.RepaymentApplied(
        loan_id=c.loan_id, client_id=c.client_id, payment_id=c.collection_id,
        amount=c.amount, allocation=[], principal_paid=Decimal("0.00"),
        interest_paid=c.amount - fees, fees_paid=fees, penalties_paid=Decimal("0.00"),
        outstanding_principal=Decimal("1000.00"), outstanding_total=Decimal("1100.00"),
        next_due_date=None, next_due_amount=None, closes_loan=False)


def reconciled(branch: str, expected: str, declared: str) -> loans.BranchCashReconciled:
    day = today()
    return loans.BranchCashReconciled(
        reconciliation_id=f"cr_{uuid.uuid4().hex}", office_id=branch,
        office_path=f"ho/r-souss/{branch}", business_date=day, expected=Decimal(expected),
        declared=Decimal(declared), difference=Decimal(declared) - Decimal(expected),
        cash_account=f"cash:branch:{branch}",
        suspense_account=f"suspense:cash:branch:{branch}", collections=1,
        declared_by="manager-1")


async def assert_balanced(brig: BranchRig) -> None:
    tb = await brig.rig.trial_balance()
    assert tb["balanced"] is True and tb["total_debits"] == tb["total_credits"]


def gl_rows(statement: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["code"]: row for row in statement["accounts"]}


async def test_a_collection_recorded_twice_is_booked_once_and_follows_the_saga(
        brig: BranchRig) -> None:
    rig, branch, loan_id = brig.rig, new_branch(), str(uuid.uuid4())
    c = collection(loan_id, branch, "350.00")
    env = envelope_for(c, aggregate_id=loan_id)
    await rig.send(c, key=loan_id, env=env)
    await rig.send(c, key=loan_id, env=env)       # the broker redelivers it
    await rig.send(c, key=loan_id)                # the sheet recorded again (another event)
    received = await brig.reply("RepaymentReceived", payment_id=c.collection_id)
    assert received["loan_id"] == loan_id and received["amount"] == "350.00"
    assert received["provider"] == "cash" and received["external_ref"] == c.sheet_id
    assert received["payer_msisdn"] is None
    assert dt.datetime.fromisoformat(received["received_at"]) == c.collected_at
    await brig.consumed("payments")
    assert len(brig.replies_of("RepaymentReceived", payment_id=c.collection_id)) == 1
    assert brig.replies.matching("RepaymentReceived", payment_id=c.collection_id)[0].key \
        == loan_id

    # booked once: Dr the branch's cash / Cr repayment suspense, in the loan's office
    transfer = f"cash_collection:{c.collection_id}"
    assert await brig.sides(transfer) == {(f"cash:branch:{branch}", "debit", Decimal("350.00")),
                                          ("suspense", "credit", Decimal("350.00"))}
    assert await brig.balance(f"cash:branch:{branch}") == Decimal("350.00")
    async with rig.pool.acquire() as conn:
        offices = {r["office_id"] for r in await conn.fetch(
            "SELECT l.office_id FROM journal_lines l JOIN journal_entries e"
            " ON e.id = l.entry_id WHERE e.transfer_id = $1", transfer)}
        payment = await conn.fetchrow("SELECT * FROM payments WHERE id = $1",
                                      payment_uuid(c.collection_id))
    assert offices == {branch} and payment is not None
    assert payment["source"] == "cash" and payment["status"] == "received"
    assert payment["external_ref"] == c.collection_id
    suspense_before = await brig.balance("suspense")

    # loans allocates it: payments moves it out of suspense, as for a wallet's repayment
    await rig.send(applied(c), key=loan_id)
    posted = await brig.reply("RepaymentPosted", payment_id=c.collection_id)
    assert posted["amount"] == "350.00"
    assert await brig.sides(f"repayment:{payment_uuid(c.collection_id)}") == {
        ("suspense", "debit", Decimal("350.00")),
        ("income:fees", "credit", Decimal("10.00")),
        ("income:interest", "credit", Decimal("340.00"))}
    assert await brig.balance("suspense") == suspense_before - Decimal("350.00")
    await rig.send(applied(c), key=loan_id)      # told twice: posted once
    await brig.consumed("payments")
    assert len(brig.replies_of("RepaymentPosted", payment_id=c.collection_id)) == 1
    await assert_balanced(brig)


async def test_a_rejected_cash_collection_is_held_for_the_branch(brig: BranchRig) -> None:
    rig, branch, loan_id = brig.rig, new_branch(), str(uuid.uuid4())
    c = collection(loan_id, branch, "120.00")
    await rig.send(c, key=loan_id)
    await brig.reply("RepaymentReceived", payment_id=c.collection_id)
    rejection = loans.RepaymentRejected(
        loan_id=loan_id, client_id=c.client_id, payment_id=c.collection_id,
        amount=c.amount, payer_msisdn=None, reason="loan_closed",
        refundable_amount=c.amount)
    await rig.send(rejection, key=loan_id)
    await rig.send(rejection, key=loan_id)
    failed = await brig.reply("RefundFailed", loan_id=loan_id)
    assert failed["amount"] == "120.00" and "held in client payable" in failed["reason"]
    await brig.consumed("payments")
    assert len(brig.replies_of("RefundFailed", loan_id=loan_id)) == 1
    uid = payment_uuid(c.collection_id)
    assert await brig.sides(f"refund_due:{uid}") == {
        ("suspense", "debit", Decimal("120.00")),
        ("client_payable", "credit", Decimal("120.00"))}
    async with rig.pool.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM payments WHERE id = $1", uid) \
            == "refund_failed"
        assert await conn.fetchval("SELECT count(*) FROM payouts WHERE payment_id = $1",
                                   uid) == 0
    await assert_balanced(brig)


async def test_a_day_end_shortage_is_in_the_ledger_and_the_branch_trial_balance(
        brig: BranchRig) -> None:
    rig, branch = brig.rig, new_branch()
    sheet = f"cs:{today()}:officer:off-{uuid.uuid4().hex[:6]}"
    first, second = (collection(str(uuid.uuid4()), branch, amount, sheet_id=sheet)
                     for amount in ("300.00", "200.00"))
    for c in (first, second):
        await rig.send(c, key=c.loan_id)
    for c in (first, second):
        await brig.reply("RepaymentReceived", payment_id=c.collection_id)

    # counted 480.00 against 500.00 on the sheets: a shortage of 20.00
    count = reconciled(branch, "500.00", "480.00")
    await rig.send(count, key=branch)
    await rig.send(count, key=branch)     # published again (another event id): booked once
    cash = f"cash:branch:{branch}"
    suspense = f"suspense:cash:branch:{branch}"

    async def booked() -> bool:
        return bool(await brig.sides(f"cash_difference:{count.reconciliation_id}"))
    await until(booked, "the difference is booked")
    await brig.consumed("payments")
    assert await brig.sides(f"cash_difference:{count.reconciliation_id}") == {
        (suspense, "debit", Decimal("20.00")), (cash, "credit", Decimal("20.00"))}
    assert await brig.balance(cash) == Decimal("480.00")     # what was counted
    assert await brig.balance(suspense) == Decimal("20.00")  # to recover
    async with rig.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT l.account_id, l.gl_code, l.office_id FROM journal_lines l"
            " JOIN journal_entries e ON e.id = l.entry_id WHERE l.account_id = ANY($1)",
            [cash, suspense])
    assert {(r["account_id"], r["gl_code"], r["office_id"]) for r in rows} == {
        (cash, "1110", branch), (suspense, "3481", branch)}

    # the branch's trial balance: its cash under 1110, the shortage under 3481, no 3499
    tb = await brig.statement("trial-balance", office_id=branch)
    rows_by_code = gl_rows(tb)
    assert "3499" not in rows_by_code
    assert Decimal(rows_by_code["1110"]["balance"]) == Decimal("480.00")
    assert Decimal(rows_by_code["3481"]["debits"]) == Decimal("20.00")
    assert Decimal(rows_by_code["3480"]["credits"]) == Decimal("500.00")   # suspense
    assert tb["balanced"] is True
    await assert_balanced(brig)


async def test_an_overage_credits_the_suspense_and_a_match_books_nothing(
        brig: BranchRig) -> None:
    rig, branch, quiet = brig.rig, new_branch(), new_branch()
    c = collection(str(uuid.uuid4()), branch, "250.00")
    await rig.send(c, key=c.loan_id)
    await brig.reply("RepaymentReceived", payment_id=c.collection_id)
    over = reconciled(branch, "250.00", "255.50")
    same = reconciled(quiet, "0.00", "0.00")
    await rig.send(over, key=branch)
    await rig.send(same, key=quiet)

    async def booked() -> bool:
        return bool(await brig.sides(f"cash_difference:{over.reconciliation_id}"))
    await until(booked, "the overage is booked")
    await brig.consumed("payments")
    assert await brig.sides(f"cash_difference:{over.reconciliation_id}") == {
        (f"cash:branch:{branch}", "debit", Decimal("5.50")),
        (f"suspense:cash:branch:{branch}", "credit", Decimal("5.50"))}
    assert await brig.balance(f"cash:branch:{branch}") == Decimal("255.50")
    assert await brig.sides(f"cash_difference:{same.reconciliation_id}") == set()
    tb = gl_rows(await brig.statement("trial-balance", office_id=branch))
    assert Decimal(tb["3481"]["credits"]) == Decimal("5.50") and "3499" not in tb
    await assert_balanced(brig)


async def test_the_chart_maps_the_branch_cash_roles(brig: BranchRig) -> None:
    resp = await brig.rig.api.get("/v1/products/*/accounting", headers=brig.rig.auth())
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert {"branch_office_cash", "branch_cash_suspense"} <= set(body["roles"])
    assert "cash_collection" in body["posting_kinds"]
    async with brig.rig.pool.acquire() as conn:
        rules = {r["kind"]: r["gl_code"] for r in await conn.fetch(
            "SELECT kind, gl_code FROM accounting_rules WHERE product_id = '*'")}
    assert rules["branch_office_cash"] == "1110"
    assert rules["branch_cash_suspense"] == "3481"
