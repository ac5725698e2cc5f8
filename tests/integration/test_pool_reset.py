"""Pools give connections back without asyncpg's session reset (``shared.db``), and the
guarantees that reset gave still hold: a release sends nothing to the server; a
connection given back inside a transaction is not reused; a listener does not follow
its connection to the next borrower; close of business releases its session lock on
every path — after a run that succeeded, after a run whose connection died mid-run,
and when its live connection cannot run the unlock — so the next run, from any
process, takes it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import asyncpg
import pytest

from services.loans.repository import cob as cob_sql
from services.loans.repository import cob_runs as loans_runs
from shared.cob_runs import CobRuns
from shared.db import connect, create_pool
from tests.conftest import SchemaFactory
from tests.infra import Infra
from tests.integration.loans.cob_helpers import close_of_business, wait_for_run
from tests.integration.loans.harness import running_loans
from tests.kafka_facts import until

pytestmark = pytest.mark.integration

RUNS = CobRuns("noria.tests.pool_reset", "test close of business",
               logging.getLogger("noria.tests.pool_reset"))
PENALTY = {"kind": "flat", "value": "50.00", "tolerance_days": 5}


@pytest.fixture
async def schema(isolated_schema: SchemaFactory) -> Any:
    return await isolated_schema("poolreset")


async def _lock_free(dsn: str, schema: str, key: str) -> bool:
    """Whether another session can take the session lock ``key`` of ``schema`` now (it
    lets it go again at once)."""
    other = await connect(dsn, schema=schema)
    try:
        got = await other.fetchval(
            "SELECT pg_try_advisory_lock(hashtext($1 || current_schema()))", key)
        if got:
            await other.execute(
                "SELECT pg_advisory_unlock(hashtext($1 || current_schema()))", key)
        return bool(got)
    finally:
        await other.close()


async def test_a_release_sends_nothing_to_the_server(schema: Any, admin_pool: asyncpg.Pool
                                                     ) -> None:
    pool = await create_pool(schema.dsn, schema=schema.schema, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            await conn.execute("SELECT 'the last statement before the release'")
        async with pool.acquire() as conn:   # the same connection, taken again
            assert await conn.fetchval("SELECT pg_backend_pid()") == pid
            assert not conn.is_in_transaction()
        # what the server last ran on that session is the borrower's statement: no
        # reset statement followed the first release
        last = await admin_pool.fetchval(
            "SELECT query FROM pg_stat_activity WHERE pid = $1", pid)
        assert last == "SELECT pg_backend_pid()"
    finally:
        await pool.close()


async def test_a_connection_given_back_inside_a_transaction_is_not_reused(
        schema: Any) -> None:
    key = "noria.tests.pool_reset.dirty"
    pool = await create_pool(schema.dsn, schema=schema.schema, min_size=1, max_size=1)
    try:
        conn = await pool.acquire()
        dirty_pid = await conn.fetchval("SELECT pg_backend_pid()")
        tx = conn.transaction()
        await tx.start()
        # a holder that fails half-way: a transaction open, a session lock taken in it
        await conn.execute("CREATE TABLE half_done (id int)")
        await conn.execute("SELECT pg_advisory_lock(hashtext($1 || current_schema()))", key)
        await pool.release(conn)

        async with pool.acquire() as fresh:
            assert await fresh.fetchval("SELECT pg_backend_pid()") != dirty_pid
            assert not fresh.is_in_transaction()
            assert await fresh.fetchval("SELECT to_regclass('half_done')") is None
        # the session that held the lock has ended, and the lock with it
        assert await until(lambda: _lock_free(schema.dsn, schema.schema, key),
                           "the lock of the closed session dropped")
    finally:
        await pool.close()


@pytest.mark.filterwarnings("ignore:.*active notification listener:asyncpg.InterfaceWarning")
async def test_a_listener_does_not_leak_to_the_next_borrower(schema: Any) -> None:
    channel = f"{schema.schema}_wake"
    first_heard: list[str] = []
    next_heard: list[str] = []
    pool = await create_pool(schema.dsn, schema=schema.schema, min_size=1, max_size=1)
    notifier = await connect(schema.dsn, schema=schema.schema)
    try:
        async with pool.acquire() as conn:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            await conn.add_listener(channel, lambda *args: first_heard.append(args[3]))
            assert await conn.fetchval("SELECT count(*) FROM pg_listening_channels()") == 1
            # given back still listening (the borrower forgot remove_listener)

        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") == pid
            assert await conn.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0
            await conn.add_listener(channel, lambda *args: next_heard.append(args[3]))
            await notifier.execute("SELECT pg_notify($1, 'for the next borrower')", channel)
            await until(lambda: _heard(next_heard), "the next borrower's listener heard")
            await conn.remove_listener(channel, lambda *args: None)
        # a session receives its notifications in order: had the first callback still been
        # registered, it would have been called before the second
        assert first_heard == []
        assert next_heard == ["for the next borrower"]
    finally:
        await notifier.close()
        await pool.close()


async def _heard(heard: list[str]) -> bool:
    return bool(heard)


@pytest.fixture
async def runs_pool(schema: Any) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(schema.dsn, schema=schema.schema, min_size=1, max_size=2)
    async with pool.acquire() as conn:
        await conn.execute(
            "CREATE TABLE cob_runs (business_date date PRIMARY KEY,"
            " run_id text NOT NULL DEFAULT gen_random_uuid()::text UNIQUE,"
            " status text NOT NULL, requested_by text, step text,"
            " attempts integer NOT NULL DEFAULT 1, error text,"
            " started_at timestamptz NOT NULL DEFAULT now(), heartbeat_at timestamptz,"
            " finished_at timestamptz, stats jsonb NOT NULL DEFAULT '{}')")
    yield pool
    await pool.close()


async def test_a_live_connection_that_cannot_unlock_is_ended_and_the_lock_with_it(
        schema: Any, runs_pool: asyncpg.Pool) -> None:
    conn = await runs_pool.acquire()
    try:
        assert await RUNS.try_lock(conn)
        # the run's transaction failed and is still open: no statement runs on it
        tx = conn.transaction()
        await tx.start()
        with pytest.raises(asyncpg.DivisionByZeroError):
            await conn.execute("SELECT 1 / 0")
        await RUNS.unlock(conn)
    finally:
        await runs_pool.release(conn)
    assert await until(lambda: _lock_free(schema.dsn, schema.schema, RUNS.lock_key),
                       "the lock of the ended session dropped")
    async with runs_pool.acquire() as fresh:   # the pool opened another connection
        assert await fresh.fetchval("SELECT 1") == 1


async def test_a_cancelled_unlock_ends_the_session(schema: Any, runs_pool: asyncpg.Pool
                                                   ) -> None:
    conn = await runs_pool.acquire()
    try:
        assert await RUNS.try_lock(conn)
        # the task giving the lock back is cancelled under the unlock (the service
        # stopping): the session is ended instead
        unlocking = asyncio.create_task(RUNS.unlock(conn))
        await asyncio.sleep(0)   # the unlock is under way
        unlocking.cancel()
        with pytest.raises(asyncio.CancelledError):
            await unlocking
    finally:
        await runs_pool.release(conn)
    assert await until(lambda: _lock_free(schema.dsn, schema.schema, RUNS.lock_key),
                       "the lock of the ended session dropped")


async def test_after_a_run_another_process_takes_the_lock(
        infra: Infra, isolated_schema: SchemaFactory) -> None:
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product(penalty=PENALTY)
        await svc.active_loan(product, disbursed_on=date(2026, 1, 5))
        run = await close_of_business(svc.client, svc.operator, "2026-03-20")
        assert run["status"] == "succeeded", run
        # the run's pooled connection let the lock go: another process (the command
        # line, another replica) can take it
        assert await until(lambda: _lock_free(svc.settings.database_url,
                                              svc.settings.db_schema, loans_runs.LOCK_KEY),
                           "the close-of-business lock free after the run")


async def test_a_run_whose_connection_dies_mid_run_lets_the_next_run_take_the_lock(
        infra: Infra, isolated_schema: SchemaFactory, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    original = cob_sql.mark_overdue
    killed: list[int] = []

    async def dying_mark_overdue(conn: Any, business_date: date) -> tuple[int, int]:
        if not killed:   # the first run's session is cut under it
            killed.append(await conn.fetchval("SELECT pg_backend_pid()"))
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return await original(conn, business_date)

    monkeypatch.setattr(cob_sql, "mark_overdue", dying_mark_overdue)
    async with running_loans(infra, isolated_schema) as svc:
        product = await svc.create_product(penalty=PENALTY)
        late = await svc.active_loan(product, disbursed_on=date(2026, 1, 5))
        resp = await svc.client.post("/v1/close-of-business", headers=svc.operator,
                                     json={"business_date": "2026-03-20"})
        assert resp.status_code == 202, resp.text
        failed = await wait_for_run(svc.client, svc.operator, resp.headers["location"])
        assert failed["status"] == "failed" and killed, failed
        assert await until(lambda: _lock_free(svc.settings.database_url,
                                              svc.settings.db_schema, loans_runs.LOCK_KEY),
                           "the close-of-business lock free after the dead run")

        again = await close_of_business(svc.client, svc.operator, "2026-03-20")
        assert (again["status"], again["attempts"]) == ("succeeded", 2), again
        assert again["run_id"] == failed["run_id"]
        assert (await svc.get(late["id"]))["days_in_arrears"] == 43
