"""Savings close of business on real PostgreSQL: posting twice for a date posts once,
and catching up three missed dates equals three nightly runs.

Each test has its own schemas (close of business covers a whole schema), and drives the
handlers directly with the business dates it chooses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from services.savings.domain.products import VoluntaryTerms
from services.savings.handlers import accounts, products
from services.savings.handlers.close_of_business import run_close_of_business
from services.savings.repository import clients as clients_repo
from shared.auth import Principal
from shared.db import create_pool
from shared.uow import UnitOfWork

MIGRATIONS = Path(__file__).resolve().parents[3] / "services/savings/migrations"
OPERATOR = Principal(sub="operator-1", partner_id=None, scopes=frozenset({"tenant:all"}))
D0 = dt.date(2025, 1, 29)   # 29, 30, 31 January: the 31st ends the month
TODAY = dt.date(2025, 2, 3)


async def schema(isolated_schema: Callable[..., Any]) -> asyncpg.Pool:
    iso = await isolated_schema("savings_cob", MIGRATIONS)
    return await create_pool(iso.dsn, schema=iso.schema, min_size=1, max_size=2)


async def open_account(pool: asyncpg.Pool, opening: str, basis: str = "daily_balance"
                       ) -> str:
    """10 000-style account at 3.65 % (a day earns balance / 10 000 in 2025), 20 % tax."""
    async with UnitOfWork(pool) as uow:
        product = await products.create(uow, "cob", "Épargne", VoluntaryTerms(
            annual_rate=Decimal("0.0365"), interest_basis=basis,  # type: ignore[arg-type]
            withholding_tax_rate=Decimal("0.20")))
        await clients_repo.upsert(uow.conn, "client-1", partner_id="p1", kyc_status="verified")
        account = await accounts.open_account(
            uow, OPERATOR, accounts.OpenRequest("client-1", product.id, Decimal(opening)),
            today=D0, approval_above=Decimal("1000000"))
        await uow.commit()
    return account.id


async def deposit(pool: asyncpg.Pool, account_id: str, amount: str, on: dt.date) -> None:
    async with UnitOfWork(pool) as uow:
        await accounts.deposit(uow, OPERATOR, account_id, amount=Decimal(amount),
                               key=f"k-{on}-{amount}", today=on)
        await uow.commit()


async def cob(pool: asyncpg.Pool, day: dt.date) -> list[dict[str, Any]]:
    result = await run_close_of_business(pool, day, today=TODAY, requested_by="test")
    return result.dates


async def state(pool: asyncpg.Pool, account_id: str) -> dict[str, Any]:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT ledger_balance, accrued_interest, carried_interest, accrued_through,"
            " last_posted_on FROM accounts WHERE id = $1", account_id)
        lines = await conn.fetch(
            "SELECT kind, amount, value_date FROM transactions WHERE account_id = $1"
            " ORDER BY value_date, kind", account_id)
        events = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE type = 'InterestPosted'")
    assert row is not None
    return {**dict(row), "lines": [tuple(r) for r in lines], "interest_events": events}


async def test_catch_up_of_three_missed_dates_equals_three_nightly_runs(
        isolated_schema: Callable[..., Any]) -> None:
    nightly, late = await schema(isolated_schema), await schema(isolated_schema)
    try:
        a = await open_account(nightly, "10000.00")
        # nightly: each date closed when it ends; the deposit on the 30th comes after the
        # 29th was closed
        assert len(await cob(nightly, D0)) == 1
        await deposit(nightly, a, "3650.00", D0 + dt.timedelta(days=1))
        assert len(await cob(nightly, D0 + dt.timedelta(days=1))) == 1
        assert len(await cob(nightly, D0 + dt.timedelta(days=2))) == 1

        b = await open_account(late, "10000.00")
        await deposit(late, b, "3650.00", D0 + dt.timedelta(days=1))
        caught_up = await cob(late, D0 + dt.timedelta(days=2))   # three dates, in order
        assert [d["business_date"] for d in caught_up] == [
            "2025-01-29", "2025-01-30", "2025-01-31"]

        # 29th: 10 000 / 10 000 = 1.0000000000; 30th and 31st: 13 650 -> 1.3650000000 each
        # = 3.7300000000 -> posted 3.73 on the 31st, tax 3.73 * 0.20 = 0.746 -> 0.75
        # ledger = 13 650.00 + 3.73 - 0.75 = 13 652.98
        one, other = await state(nightly, a), await state(late, b)
        assert one["ledger_balance"] == other["ledger_balance"] == Decimal("13652.98")
        assert one["lines"] == other["lines"]
        assert [(k, amt) for k, amt, _ in one["lines"] if k != "deposit"] == [
            ("interest", Decimal("3.73")), ("withholding_tax", Decimal("-0.75"))]
        for key in ("accrued_interest", "carried_interest", "accrued_through",
                    "last_posted_on", "interest_events"):
            assert one[key] == other[key], key
        assert one["interest_events"] == 1
    finally:
        await nightly.close()
        await late.close()


async def test_interest_posting_run_twice_for_a_date_posts_once(
        isolated_schema: Callable[..., Any]) -> None:
    pool = await schema(isolated_schema)
    try:
        a = await open_account(pool, "10000.00", basis="minimum_balance")
        await deposit(pool, a, "5000.00", D0 + dt.timedelta(days=1))
        await cob(pool, D0 + dt.timedelta(days=2))
        first = await state(pool, a)
        # minimum balance of the three days is 10 000: 3 * 1.0000000000 = 3.00, tax 0.60
        assert first["ledger_balance"] == Decimal("15002.40")
        assert await cob(pool, D0 + dt.timedelta(days=2)) == []    # already closed
        async with pool.acquire() as conn:   # a run interrupted after its steps: re-run it
            await conn.execute("UPDATE cob_runs SET status = 'failed'"
                               " WHERE business_date = $1", D0 + dt.timedelta(days=2))
        assert len(await cob(pool, D0 + dt.timedelta(days=2))) == 1
        assert await state(pool, a) == first
        assert first["interest_events"] == 1
    finally:
        await pool.close()
