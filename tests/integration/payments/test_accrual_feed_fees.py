"""Loans' fees in the accrual feed: the fees of an installment falling due that day,
carried by ``InterestAccrued`` (version 2), are accrued when due under the accrual
basis (Dr fees receivable 2171 / Cr fee income) and settled by the repayment's fees,
so the fee income is booked once, on the due date."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from services.payments.repository import gl as gl_repo
from shared.contracts.loans import AccruedLoan, InterestAccrued
from shared.envelope import envelope_for
from shared.kafka import make_producer
from tests.infra import Infra
from tests.integration.payments.accounting_rig import Books, books
from tests.integration.payments.conftest import new_id
from tests.integration.payments.facts import consumed_all
from tests.kafka_facts import until

pytestmark = pytest.mark.integration

D = Decimal
DAY = dt.date(2025, 10, 5)


@pytest.fixture(scope="module")
async def b(infra: Infra, isolated_schema: Callable[..., Any]) -> AsyncIterator[Books]:
    async with books(infra, isolated_schema) as rig:
        yield rig


async def held(b: Books, *accounts: str) -> list[Decimal]:
    async with b.pool.acquire() as conn:
        found = await gl_repo.balances(conn, list(accounts))
    return [found.get(a, D("0.00")) for a in accounts]


async def fee_lines(b: Books, loan: str) -> list[tuple[str, str, Decimal, str | None]]:
    async with b.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT e.kind, l.side, l.amount, l.gl_code FROM journal_lines l"
            " JOIN journal_entries e ON e.id = l.entry_id WHERE e.loan_id = $1"
            " AND (l.account_id = $2 OR l.account_id = 'income:fees')"
            " ORDER BY e.created_at, l.side DESC", loan, f"fee_receivable:{loan}")
    return [(r["kind"], r["side"], r["amount"], r["gl_code"]) for r in rows]


async def test_fees_falling_due_in_the_feed_are_accrued_once_and_settled_by_the_repayment(
        b: Books) -> None:
    await b.call("PUT", "/v1/accounting/settings", json={"accounting_basis": "accrual"})
    loan, plain = new_id("F"), new_id("F")
    await b.fund("2400.00", dt.date(2025, 9, 5))
    for each in (loan, plain):
        await b.loan(each, "b-fes")
        await b.disburse(each, "1200.00", dt.date(2025, 9, 5))
    msg = InterestAccrued(business_date=DAY, batch=0, batches=1, loans=[
        AccruedLoan(loan_id=loan, interest=D("0.39"), days_in_arrears=0, office_id="b-fes",
                    fees_due=D("15.00")),
        AccruedLoan(loan_id=plain, interest=D("0.39"), days_in_arrears=0,
                    office_id="b-fes")])
    producer = make_producer(b.settings.kafka_bootstrap, client_id="acc-fees-test")
    await producer.start()
    try:
        env = envelope_for(msg, aggregate_id=DAY.isoformat())
        assert env.version == 2
        for _ in range(2):  # delivered twice: accrued once
            await producer.send_and_wait(b.settings.topic(msg.topic), env.to_bytes(),
                                         key=DAY.isoformat().encode(),
                                         headers=[("type", b"InterestAccrued")])
    finally:
        await producer.stop()
    await consumed_all(b.settings)
    await until(lambda: b.accruals_posted(DAY), "the date's staged batch posted")
    # the fees due: receivable 15.00; the loan without fees: none; interest as before
    assert await held(b, f"fee_receivable:{loan}", f"interest_receivable:{loan}",
                      f"fee_receivable:{plain}", f"interest_receivable:{plain}") == [
        D("15.00"), D("0.39"), D("0.00"), D("0.39")]
    # the installment paid: 200.00 principal + 0.39 interest + 15.00 fees — the fees and
    # the interest settle the receivables, no second fee income
    await b.repay(loan, DAY + dt.timedelta(days=1), principal="200.00", interest="0.39",
                  fees="15.00")
    assert await held(b, f"fee_receivable:{loan}", f"interest_receivable:{loan}") == [
        D("0.00"), D("0.00")]
    assert await fee_lines(b, loan) == [
        ("fee_accrual", "debit", D("15.00"), "2171"),
        ("fee_accrual", "credit", D("15.00"), await fee_income_gl(b)),
        ("repayment", "credit", D("15.00"), "2171")]
    await b.call("PUT", "/v1/accounting/settings", json={"accounting_basis": "cash"})


async def fee_income_gl(b: Books) -> str | None:
    async with b.pool.acquire() as conn:
        code: str | None = await conn.fetchval(
            "SELECT gl_code FROM accounting_rules WHERE kind = 'fee_income'"
            " AND product_id = '*'")
    return code
