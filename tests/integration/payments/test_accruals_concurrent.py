"""A night's accrual batches posted on several connections at once, as the consumers of
the topic's partitions on several replicas post them: a batch redelivered while another
connection holds it is posted once, two batches sharing loans neither deadlock nor
accrue a loan twice."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from services.payments.handlers import accounting
from services.payments.repository import gl as gl_repo
from tests.integration.payments.conftest import MIGRATIONS, new_id
from tests.kafka_facts import until

pytestmark = pytest.mark.integration

D = Decimal
DAY = dt.date(2025, 10, 2)


@pytest.fixture(scope="module")
async def pool(isolated_schema: Callable[..., Any]) -> AsyncIterator[asyncpg.Pool]:
    iso = await isolated_schema("payments_accc", MIGRATIONS)
    pool = await asyncpg.create_pool(iso.dsn, min_size=3, max_size=4,
                                     server_settings={"search_path": iso.schema})
    assert pool is not None
    async with pool.acquire() as conn:
        await conn.execute("UPDATE accounting_settings SET accounting_basis = 'accrual',"
                           " non_accrual_days = 90")
    try:
        yield pool
    finally:
        await pool.close()


def day_of(*figures: tuple[str, str]) -> list[accounting.LoanDay]:
    return [accounting.LoanDay(loan, D(interest), 0, "p-micro", "b-fes")
            for loan, interest in figures]


async def waiting(pool: asyncpg.Pool, pid: int) -> bool:
    async with pool.acquire() as conn:
        return bool(await conn.fetchval(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid))


async def receivables(pool: asyncpg.Pool, loans: list[str]) -> dict[str, Decimal]:
    async with pool.acquire() as conn:
        held = await gl_repo.balances(conn, [f"interest_receivable:{i}" for i in loans])
    return {i: held.get(f"interest_receivable:{i}", D("0.00")) for i in loans}


async def day_facts(pool: asyncpg.Pool, loans: list[str]) -> tuple[int, list[Decimal]]:
    """(loan_accruals rows of these loans for the day, the day's accrual entries'
    amounts carrying them)."""
    async with pool.acquire() as conn:
        rows = await conn.fetchval(
            "SELECT count(*) FROM loan_accruals WHERE business_date = $1"
            " AND loan_id = ANY($2::text[])", DAY, loans)
        amounts = await conn.fetch(
            "SELECT e.amount FROM journal_entries e WHERE e.transfer_id IN"
            " (SELECT DISTINCT transfer_id FROM loan_accruals WHERE business_date = $1"
            " AND loan_id = ANY($2::text[])) ORDER BY e.amount DESC", DAY, loans)
    return int(rows), [r["amount"] for r in amounts]


async def test_a_batch_redelivered_while_another_connection_holds_it_is_posted_once(
        pool: asyncpg.Pool) -> None:
    a1, a2, a3 = (new_id("A") for _ in range(3))
    items = day_of((a1, "1.10"), (a2, "2.20"), (a3, "0.35"))
    async with pool.acquire() as first, pool.acquire() as second:
        holder = first.transaction()
        await holder.start()
        done = await accounting.run_accruals(first, DAY, items, batch=7, source="test")
        assert done["created"] and done["loans"] == 3

        async def redelivered() -> dict[str, Any]:
            async with second.transaction():
                return await accounting.run_accruals(second, DAY, items, batch=7,
                                                     source="test")

        twin = asyncio.create_task(redelivered())
        pid = second.get_server_pid()
        await until(lambda: waiting(pool, pid), "the redelivered batch waits for the first")
        await holder.commit()
        again = await asyncio.wait_for(twin, 30)
    assert not again["created"] and again["accrued"] == D("3.65")
    assert await receivables(pool, [a1, a2, a3]) == {a1: D("1.10"), a2: D("2.20"),
                                                      a3: D("0.35")}
    assert await day_facts(pool, [a1, a2, a3]) == (3, [D("3.65")])


async def test_two_batches_sharing_loans_posted_at_once_accrue_each_loan_once(
        pool: asyncpg.Pool) -> None:
    b1, b2, b3, b4 = (new_id("B") for _ in range(4))
    # the shared loans in the opposite order in each batch
    one = day_of((b1, "1.00"), (b2, "2.00"), (b3, "3.00"))
    two = day_of((b3, "3.00"), (b2, "2.00"), (b4, "4.00"))
    async with pool.acquire() as first, pool.acquire() as second:
        holder = first.transaction()
        await holder.start()
        await accounting.run_accruals(first, DAY, one, batch=21, source="test")

        async def other() -> dict[str, Any]:
            async with second.transaction():
                return await accounting.run_accruals(second, DAY, two, batch=22,
                                                     source="test")

        task = asyncio.create_task(other())
        pid = second.get_server_pid()
        await until(lambda: waiting(pool, pid), "the second batch waits on the shared loans")
        await holder.commit()
        posted = await asyncio.wait_for(task, 30)
    # batch 22 accrued only its own loan: 4.00
    assert posted["created"] and posted["loans"] == 3
    assert await receivables(pool, [b1, b2, b3, b4]) == {
        b1: D("1.00"), b2: D("2.00"), b3: D("3.00"), b4: D("4.00")}
    # 1.00 + 2.00 + 3.00 in the first batch's entry, 4.00 in the second's
    assert await day_facts(pool, [b1, b2, b3, b4]) == (4, [D("6.00"), D("4.00")])


async def test_batches_posted_concurrently_keep_the_books_balanced(
        pool: asyncpg.Pool) -> None:
    """Six batches on four connections at once, each batch's loans overlapping the
    next one's: no deadlock, every loan accrued once."""
    loans = [new_id("C") for _ in range(12)]
    amount = {loan: D(n + 1) / 4 for n, loan in enumerate(loans)}  # 0.25 … 3.00
    batches = [day_of(*((loan, str(amount[loan])) for loan in loans[k:k + 4]))
               for k in range(0, 12, 2)]

    async def post(n: int, items: list[accounting.LoanDay]) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await accounting.run_accruals(conn, DAY, items[::-1] if n % 2 else items,
                                          batch=100 + n, source="test")

    await asyncio.wait_for(asyncio.gather(*(post(n, b) for n, b in enumerate(batches))), 60)
    assert await receivables(pool, loans) == amount
    rows, entries = await day_facts(pool, loans)
    # 0.25 + 0.50 + … + 3.00 = 0.25 x 78 = 19.50, once
    assert rows == 12 and sum(entries) == D("19.50")
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT sum(debits) = sum(credits) FROM accounts")
