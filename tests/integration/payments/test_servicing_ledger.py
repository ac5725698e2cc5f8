"""Loan servicing in the ledger, on a payments service of its own (fresh schema, topic
prefix and consumer group; loans played by publishing its events twice each):

- an early settlement under accrual basis reverses the interest receivable the
  settling payment left (recognised, never earned) to interest waived (7115); under
  cash basis it is a memo only;
- interest capitalised by a restructuring moves from the receivable (and, for what was
  never recognised, into the loan's reserve, 2175) to the loan's portfolio, which then
  equals loans' outstanding principal;
- a write-off proposed and approved by two operators consumes the allowance; late
  charges waived are a memo (penalties are income when paid).

Worked figures: a 1000.00 loan accrues 30.00 of interest; the borrower settles early
paying 1000.00 principal and 20.00 interest: 30.00 - 20.00 = 10.00 of accrued interest
is left and waived (loans says 45.00 was waived in all: 35.00 of it was never
recognised). Restructuring: 1000.00 lent, 250.00 principal repaid (750.00), 30.00
accrued, 40.00 capitalised: portfolio 750.00 + 40.00 = 790.00 (loans' outstanding), of
which 30.00 comes out of the receivable and 10.00 into the reserve."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from services.payments.domain import postings
from shared.clock import today
from shared.contracts.loans import (
    LateChargesWaived,
    LoanScheduleRebuilt,
    LoanSettledEarly,
    LoanWrittenOff,
)
from shared.envelope import Contract, envelope_for
from shared.kafka import make_producer
from tests.infra import Infra
from tests.integration.payments.accounting_rig import READ, Books, books
from tests.integration.payments.facts import consumed_all

pytestmark = pytest.mark.integration
D = Decimal


@pytest.fixture(scope="module")
async def b(infra: Infra, isolated_schema: Callable[..., Any]) -> AsyncIterator[Books]:
    async with books(infra, isolated_schema) as rig:
        await rig.fund("100000.00", today())
        yield rig


async def publish_twice(b: Books, message: Contract, key: str) -> None:
    producer = make_producer(b.settings.kafka_bootstrap, client_id="servicing-test")
    await producer.start()
    try:
        env = envelope_for(message, aggregate_id=key)
        for _ in range(2):
            await producer.send_and_wait(b.settings.topic(message.topic), env.to_bytes(),
                                         key=key.encode(), headers=[("type", env.type.encode())])
        # and once more under a new event id (loans republishing it): still booked once
        again = envelope_for(message, aggregate_id=key)
        await producer.send_and_wait(b.settings.topic(message.topic), again.to_bytes(),
                                     key=key.encode(), headers=[("type", again.type.encode())])
    finally:
        await producer.stop()


async def servicing(b: Books, loan: str, kind: str, timeout_s: float = 30) -> dict[str, Any]:
    for _ in range(int(timeout_s * 10)):
        view: dict[str, Any] = await b.call("GET", f"/v1/loans/{loan}/servicing", READ)
        if any(m["kind"] == kind for m in view["memos"]):
            await consumed_all(b.settings)  # the redeliveries were read too
            view = await b.call("GET", f"/v1/loans/{loan}/servicing", READ)
            return view
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {kind} memo for loan {loan}")


async def gl_lines(b: Books, transfer_id: str) -> set[tuple[str, str, str, Decimal]]:
    async with b.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT l.account_id, l.gl_code, l.side, l.amount FROM journal_lines l JOIN"
            " journal_entries e ON e.id = l.entry_id WHERE e.transfer_id = $1", transfer_id)
    return {(r["account_id"], r["gl_code"], r["side"], r["amount"]) for r in rows}


async def balanced(b: Books) -> None:
    async with b.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT coalesce(sum(amount) FILTER (WHERE side = 'debit'), 0) AS d,"
            " coalesce(sum(amount) FILTER (WHERE side = 'credit'), 0) AS c FROM journal_lines")
    assert row is not None and row["d"] == row["c"]


async def accrued(b: Books, loan: str, amount: str) -> None:
    await b.post(postings.interest_accrual(loan, today(), D(amount)), today())


def settled(loan: str, payment_id: str, interest_paid: str, waived: str) -> LoanSettledEarly:
    return LoanSettledEarly(
        loan_id=loan, client_id="c1", payment_id=payment_id, settled_on=today(),
        payoff_amount=D("1000.00") + D(interest_paid), principal_paid=D("1000.00"),
        interest_paid=D(interest_paid), interest_waived=D(waived))


async def test_early_settlement_reverses_accrued_interest_under_accrual_basis(
        b: Books) -> None:
    await b.call("PUT", "/v1/accounting/settings", json={"accounting_basis": "accrual"})
    try:
        await b.loan("ES1", "b-rabat")
        await b.disburse("ES1", "1000.00", today())
        await accrued(b, "ES1", "30.00")
        payment_id = await b.repay("ES1", today(), principal="1000.00", interest="20.00")
        await publish_twice(b, settled("ES1", payment_id, "20.00", "45.00"), "ES1")
        view = await servicing(b, "ES1", "interest_waived")
    finally:
        await b.call("PUT", "/v1/accounting/settings", json={"accounting_basis": "cash"})
    assert view["interest_receivable"] == "0.00" and view["portfolio_balance"] == "0.00"
    [memo] = view["memos"]
    assert (memo["amount"], memo["booked"], memo["basis"]) == ("45.00", "10.00", "accrual")
    assert await gl_lines(b, f"interest_waiver:{payment_id}") == {
        ("income:interest_waived", "7115", "debit", D("10.00")),
        ("interest_receivable:ES1", "2170", "credit", D("10.00"))}
    await balanced(b)


async def test_early_settlement_under_cash_basis_is_a_memo_only(b: Books) -> None:
    await b.call("PUT", "/v1/accounting/settings", json={"accounting_basis": "cash"})
    await b.loan("ES2", "b-rabat")
    await b.disburse("ES2", "1000.00", today())
    payment_id = await b.repay("ES2", today(), principal="1000.00", interest="20.00")
    await publish_twice(b, settled("ES2", payment_id, "20.00", "45.00"), "ES2")
    view = await servicing(b, "ES2", "interest_waived")
    [memo] = view["memos"]
    assert (memo["amount"], memo["booked"], memo["basis"], memo["transfer_id"]) == (
        "45.00", "0.00", "cash", None)
    assert await gl_lines(b, f"interest_waiver:{payment_id}") == set()


def restructured(loan: str, capitalised: str, outstanding: str) -> LoanScheduleRebuilt:
    return LoanScheduleRebuilt(
        loan_id=loan, client_id="c1", reason="restructure", schedule_version=2,
        business_date=today(), installments=[], outstanding_principal=D(outstanding),
        interest_before=D("90.00"), interest_after=D("120.00"),
        capitalised_interest=D(capitalised), restructured=True, request_id="rq-1",
        approved_by="op-checker")


async def test_capitalised_interest_keeps_the_portfolio_equal_to_loans_principal(
        b: Books) -> None:
    await b.call("PUT", "/v1/accounting/settings", json={"accounting_basis": "accrual"})
    try:
        await b.loan("RS1", "b-fes")
        await b.disburse("RS1", "1000.00", today())
        await accrued(b, "RS1", "30.00")
        await b.repay("RS1", today(), principal="250.00")
        await publish_twice(b, restructured("RS1", "40.00", "790.00"), "RS1")
        view = await servicing(b, "RS1", "interest_capitalised")
    finally:
        await b.call("PUT", "/v1/accounting/settings", json={"accounting_basis": "cash"})
    # the platform invariant: payments' portfolio = loans' outstanding principal
    balance = await b.call("GET", "/v1/loans/RS1/portfolio-balance", READ)
    assert D(balance["portfolio_balance"]) == D("790.00") == D(view["portfolio_balance"])
    assert view["interest_receivable"] == "0.00"
    assert view["capitalised_interest_reserved"] == "10.00"
    assert await gl_lines(b, "capitalisation:RS1:v2") == {
        ("portfolio:RS1", "2100", "debit", D("40.00")),
        ("interest_receivable:RS1", "2170", "credit", D("30.00")),
        ("capitalised_interest:RS1", "2175", "credit", D("10.00"))}
    # cash basis: nothing was accrued, so all of it is reserved
    await b.loan("RS2", "b-fes")
    await b.disburse("RS2", "500.00", today())
    await publish_twice(b, restructured("RS2", "25.00", "525.00"), "RS2")
    view = await servicing(b, "RS2", "interest_capitalised")
    assert view["portfolio_balance"] == "525.00"
    assert view["capitalised_interest_reserved"] == "25.00"
    await balanced(b)


async def test_a_maker_checker_write_off_consumes_the_allowance_and_waivers_are_memos(
        b: Books) -> None:
    await b.loan("WO1", "b-oujda")
    await b.disburse("WO1", "1000.00", today())
    run = await b.call("POST", f"/v1/provisions/{today()}",
                       json={"loans": [{"loan_id": "WO1", "days_in_arrears": 200}]})
    assert D(run["required"]) == D("1000.00")
    await publish_twice(b, LateChargesWaived(
        loan_id="WO1", client_id="c1", request_id="wv-1", amount=D("35.00"),
        installments=[3, 4], proposed_by="op-maker", approved_by="op-checker",
        reason="illness"), "WO1")
    await publish_twice(b, LoanWrittenOff(
        loan_id="WO1", client_id="c1", principal_written_off=D("1000.00"),
        interest_written_off=D("60.00"), fees_written_off=D("0.00"),
        penalties_written_off=D("35.00"), written_off_by="op-checker",
        days_in_arrears=200, proposed_by="op-maker", reason="uncollectible"), "WO1")
    await consumed_all(b.settings)  # every copy of both read
    assert (await b.call("GET", "/v1/loans/WO1/portfolio-balance", READ)
            )["portfolio_balance"] == "0.00"
    assert await gl_lines(b, "write_off:WO1") == {
        ("portfolio:WO1", "2100", "credit", D("1000.00")),
        ("allowance:WO1", "2190", "debit", D("1000.00"))}
    view = await servicing(b, "WO1", "late_charges_waived")
    [memo] = view["memos"]
    assert (memo["amount"], memo["booked"], memo["detail"]["installments"]) == (
        "35.00", "0.00", [3, 4])
    await balanced(b)


async def test_the_reserve_is_released_as_the_principal_is_repaid_and_consumed_by_a_write_off(
        b: Books) -> None:
    """500.00 lent, 25.00 of interest never recognised capitalised (cash basis):
    portfolio 525.00, reserve 25.00. A repayment of 105.00 of principal releases
    25.00 x 105 / 525 = 5.00 to interest income (7110); the write-off of the 420.00 left
    takes the 20.00 still reserved first, the other 400.00 is write-off expense."""
    await b.loan("RS3", "b-fes")
    await b.disburse("RS3", "500.00", today())
    await publish_twice(b, restructured("RS3", "25.00", "525.00"), "RS3")
    view = await servicing(b, "RS3", "interest_capitalised")
    assert (view["portfolio_balance"], view["capitalised_interest_reserved"]) == (
        "525.00", "25.00")
    payment_id = await b.repay("RS3", today(), principal="105.00")
    assert await gl_lines(b, f"repayment:{payment_id}") == {
        ("suspense", "3480", "debit", D("105.00")),
        ("portfolio:RS3", "2100", "credit", D("105.00")),
        ("capitalised_interest:RS3", "2175", "debit", D("5.00")),
        ("income:interest", "7110", "credit", D("5.00"))}
    view = await b.call("GET", "/v1/loans/RS3/servicing", READ)
    assert (view["portfolio_balance"], view["capitalised_interest_reserved"]) == (
        "420.00", "20.00")
    await b.write_off("RS3", "420.00", today())
    assert await gl_lines(b, "write_off:RS3") == {
        ("portfolio:RS3", "2100", "credit", D("420.00")),
        ("capitalised_interest:RS3", "2175", "debit", D("20.00")),
        ("expense:write_off", "6750", "debit", D("400.00"))}
    view = await b.call("GET", "/v1/loans/RS3/servicing", READ)
    assert (view["portfolio_balance"], view["capitalised_interest_reserved"]) == (
        "0.00", "0.00")
    await balanced(b)
