"""A night's InterestAccrued batches, staged as payments' consumer stages them, drained
by two replicas' accrual workers at once: every loan accrued once and to the centime,
no batch posted twice, the dates in forward order (provisions included), and a worker
that dies mid-batch leaves the batch to another once its lease expires."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from services.payments.domain import postings
from services.payments.handlers import accrual_batches
from services.payments.handlers.accounting import LoanDay
from services.payments.repository import accrual_batches as repo
from services.payments.repository import gl as gl_repo
from services.payments.repository import ledger as ledger_repo
from services.payments.settings import PaymentsSettings, ProviderConfig
from shared.db import connect, create_pool
from tests.integration.payments.conftest import MIGRATIONS, new_id
from tests.kafka_facts import until

pytestmark = pytest.mark.integration

D = Decimal
NIGHT1, NIGHT2 = dt.date(2025, 11, 3), dt.date(2025, 11, 4)


@dataclasses.dataclass
class Replicas:
    dsn: str
    schema: str
    pools: list[asyncpg.Pool]


@pytest.fixture
async def replicas(isolated_schema: Callable[..., Any]) -> AsyncIterator[Replicas]:
    iso = await isolated_schema("payments_accw", MIGRATIONS)
    # one pool per replica, made as the service makes its background pool
    pools = [await create_pool(iso.dsn, schema=iso.schema, min_size=1, max_size=3,
                               role="background") for _ in range(2)]
    async with pools[0].acquire() as conn:
        await conn.execute("UPDATE accounting_settings SET accounting_basis = 'accrual',"
                           " non_accrual_days = 90")
    try:
        yield Replicas(iso.dsn, iso.schema, pools)
    finally:
        for pool in pools:
            await pool.close()


def settings_for(r: Replicas) -> PaymentsSettings:
    return PaymentsSettings(
        database_url=r.dsn, db_schema=r.schema,
        providers={"sim": ProviderConfig(base_url="http://127.0.0.1:9")},
        callback_base_url="http://127.0.0.1:9", accrual_lease_s=1.0, accrual_poll_s=0.05,
        accrual_retry_s=0.1, accrual_retry_max_s=0.5)


async def stage_night(pool: asyncpg.Pool, day: dt.date, batches: list[list[LoanDay]]
                      ) -> None:
    """Each batch staged in a transaction of its own, as the consumer stages it; the
    first one twice (delivered twice: staged once)."""
    for n, loans in [(0, batches[0]), *enumerate(batches)]:
        async with pool.acquire() as conn, conn.transaction():
            await accrual_batches.stage(conn, day, n, len(batches), loans, f"ev-{day}-{n}")


async def complete(pool: asyncpg.Pool, *days: dt.date) -> bool:
    async with pool.acquire() as conn:
        return not await repo.pending_dates(conn, max(days))


async def test_two_replicas_drain_two_nights_exactly_and_take_over_a_dead_workers_batch(
        replicas: Replicas) -> None:
    first, second = replicas.pools
    loans = [new_id("W") for _ in range(40)]
    late = loans[0]  # past the non-accrual threshold on the second night
    watched = loans[1]  # disbursed, in arrears: its provision follows the nights in order
    interest = {loan: D(n + 1) / 100 for n, loan in enumerate(loans)}  # 0.01 … 0.40

    def night(day: dt.date) -> list[list[LoanDay]]:
        second_night = day == NIGHT2
        figures = [LoanDay(loan, interest[loan],
                           (120 if loan == late and second_night else
                            (45 if second_night else 12) if loan == watched else 0),
                           "p-micro", "b-fes") for loan in loans]
        return [figures[k:k + 5] for k in range(0, len(figures), 5)]  # 8 batches

    async with first.acquire() as conn, conn.transaction():
        await ledger_repo.post(conn, postings.funding("sim", D("1000.00"), "funding:w"))
        await ledger_repo.post(conn, dataclasses.replace(
            postings.disbursement(new_id("saga"), watched, "sim", D("1000.00")),
            business_date=NIGHT1))
    await stage_night(first, NIGHT1, night(NIGHT1))
    await stage_night(second, NIGHT2, night(NIGHT2))

    # a worker claims a batch, posts part of it and dies: its connection is gone in the
    # middle of the transaction, nothing of it committed, its lease still running
    dead = await connect(replicas.dsn, schema=replicas.schema)
    claimed = await repo.claim(dead, 1.0)
    assert claimed is not None and claimed["business_date"] == NIGHT1
    tx = dead.transaction()
    await tx.start()
    assert await accrual_batches.post_claimed(dead, claimed) == "accrued"
    dead.terminate()

    settings = settings_for(replicas)
    workers = [asyncio.create_task(accrual_batches.drain(pool, settings))
               for pool in (first, second)]
    try:
        await until(lambda: complete(first, NIGHT1, NIGHT2), "both nights posted", 60)
    finally:
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async with first.acquire() as conn:
        # every batch posted once and done: one accrual entry and one run per batch
        for day in (NIGHT1, NIGHT2):
            progress = await repo.progress(conn, day)
            assert progress is not None
            assert (progress["batches"], progress["staged"], progress["done"]) == (8, 8, 8)
            runs = await conn.fetch("SELECT batch FROM accrual_runs WHERE business_date = $1"
                                    " ORDER BY batch", day)
            assert [r["batch"] for r in runs] == list(range(8))
            assert await conn.fetchval(
                "SELECT count(*) FROM provision_runs WHERE business_date = $1", day) == 8
            entries = await conn.fetch(
                "SELECT transfer_id FROM journal_entries WHERE kind = 'interest_accrual'"
                " AND business_date = $1", day)
            assert sorted(r["transfer_id"] for r in entries) == sorted(
                f"accrual:{day}:{n}" for n in range(8))
        # to the centime: night 1 accrues every loan (0.01 + … + 0.40 = 8.20), night 2
        # every loan but the late one, whose first night's 0.01 is reversed
        accrued = {r["business_date"]: r["total"] for r in await conn.fetch(
            "SELECT business_date, sum(amount) AS total FROM loan_accruals"
            " WHERE loan_id = ANY($1::text[]) GROUP BY business_date", loans)}
        assert accrued == {NIGHT1: D("8.20"), NIGHT2: D("8.19")}
        held = await gl_repo.balances(conn, [f"interest_receivable:{i}" for i in loans]
                                      + [f"allowance:{watched}"])
        assert {i: held.get(f"interest_receivable:{i}", D("0.00")) for i in loans} == {
            i: D("0.00") if i == late else interest[i] * 2 for i in loans}
        # the watched loan's provision moved with its nights in order: 12 then 45 days
        assert held[f"allowance:{watched}"] == D("250.00")
        # the second night started only once the first was complete
        first_done, second_began = await conn.fetchrow(
            "SELECT (SELECT completed_at FROM accrual_dates WHERE business_date = $1),"
            " (SELECT min(run_at) FROM accrual_runs WHERE business_date = $2)",
            NIGHT1, NIGHT2)
        assert second_began >= first_done
        assert await conn.fetchval("SELECT sum(debits) = sum(credits) FROM accounts")
        # the dead worker's batch was taken over: claimed more than once, posted once
        assert await conn.fetchval("SELECT attempts FROM accrual_batches WHERE id = $1",
                                   claimed["id"]) >= 3


async def test_a_batch_outside_its_dates_count_or_an_older_night_is_refused(
        replicas: Replicas) -> None:
    day = dt.date(2025, 11, 10)
    async with replicas.pools[0].acquire() as conn:
        with pytest.raises(accrual_batches.InconsistentBatch):
            async with conn.transaction():
                await accrual_batches.stage(conn, day, 3, 3, [], "ev-x")
        async with conn.transaction():
            await accrual_batches.stage(conn, day, 0, 2, [], "ev-y")
        with pytest.raises(accrual_batches.InconsistentBatch):
            async with conn.transaction():
                await accrual_batches.stage(conn, day, 1, 3, [], "ev-z")
        assert await repo.pending_dates(conn, day) == [day]
        # a night older than one already staged: refused (nights go forward)
        with pytest.raises(accrual_batches.InconsistentBatch):
            async with conn.transaction():
                await accrual_batches.stage(conn, day - dt.timedelta(days=1), 0, 1, [],
                                            "ev-old")
        # the staged night's own batches still come in
        async with conn.transaction():
            assert await accrual_batches.stage(conn, day, 1, 2, [], "ev-w")
        assert await repo.pending_dates(conn, day) == [day]


async def test_a_worker_still_posting_when_its_lease_runs_out_keeps_its_batch(
        replicas: Replicas) -> None:
    day = dt.date(2025, 11, 20)
    first, second = replicas.pools
    loan = new_id("S")
    await stage_night(first, day, [[LoanDay(loan, D("0.42"), 0, "p-micro", "b-fes")]])
    async with first.acquire() as slow, second.acquire() as other:
        claimed = await repo.claim(slow, 0.2)  # a lease shorter than the posting
        assert claimed is not None and claimed["business_date"] == day
        async with slow.transaction():
            assert await accrual_batches.post_claimed(slow, claimed) == "accrued"
            # the lease has run out: the batch is still held, no other worker takes it
            await until(lambda: lease_over(other, claimed["id"]), "the lease run out")
            assert await repo.claim(other, 5.0) is None
        # committed: the next step (its provisions, the date being all accrued) is free
        again = await repo.claim(other, 5.0)
        assert again is not None and (again["id"], again["status"]) == (claimed["id"],
                                                                         "accrued")
        async with other.transaction():
            assert await accrual_batches.post_claimed(other, again) == "done"
        assert await repo.pending_dates(other, day) == []
        assert await other.fetchval("SELECT sum(amount) FROM loan_accruals WHERE loan_id = $1",
                                    loan) == D("0.42")


async def lease_over(conn: asyncpg.Connection, batch_id: int) -> bool:
    return bool(await conn.fetchval(
        "SELECT lease_until < now() FROM accrual_batches WHERE id = $1", batch_id))


async def test_a_night_of_a_closed_month_is_refused_at_staging_and_holds_nothing_back(
        replicas: Replicas) -> None:
    """Loans published a night before the month was closed and payments had not staged
    it yet: staging refuses it (409 period_closed, dead-lettered by the consumer) and it
    never becomes a batch that every later night would wait for."""
    from services.payments.repository import periods
    from services.payments.repository.ledger import PeriodClosed

    closed_day, next_day = dt.date(2025, 9, 30), dt.date(2025, 10, 1)
    async with replicas.pools[0].acquire() as conn:
        async with conn.transaction():
            await periods.close_period(conn, "2025-09", dt.date(2025, 9, 1), closed_day,
                                       "operator-amina")
        with pytest.raises(PeriodClosed):
            async with conn.transaction():
                await accrual_batches.stage(conn, closed_day, 0, 1, [], "ev-closed")
        assert await repo.pending_dates(conn, next_day) == []
        async with conn.transaction():
            assert await accrual_batches.stage(conn, next_day, 0, 1, [], "ev-next")
        assert await repo.pending_dates(conn, next_day) == [next_day]

