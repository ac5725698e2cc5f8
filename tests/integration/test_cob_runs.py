"""The close-of-business run bookkeeping (shared.cob_runs) over a schema's own
``cob_runs`` table: a date claimed, progressed and completed; a second run refused while
the lock is held; the runs of a process that died marked failed by the next holder."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date

import asyncpg
import pytest

from shared.cob_runs import INTERRUPTED, CobRuns
from shared.db import create_pool
from shared.errors import Conflict
from tests.conftest import SchemaFactory
from tests.kafka_facts import until

pytestmark = pytest.mark.integration

TABLE = """
CREATE TABLE cob_runs (
    business_date   date        PRIMARY KEY,
    run_id          text        NOT NULL DEFAULT gen_random_uuid()::text UNIQUE,
    status          text        NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    requested_by    text,
    step            text,
    attempts        integer     NOT NULL DEFAULT 1,
    error           text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    heartbeat_at    timestamptz,
    finished_at     timestamptz,
    stats           jsonb       NOT NULL DEFAULT '{}'
)"""

RUNS = CobRuns("noria.tests.close_of_business", "test close of business",
               logging.getLogger("noria.tests.cob"))
D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)


@dataclass(frozen=True)
class Claim:
    run: asyncpg.Record
    done: bool


@pytest.fixture
async def pool(isolated_schema: SchemaFactory) -> AsyncIterator[asyncpg.Pool]:
    iso = await isolated_schema("cobruns")
    pool = await create_pool(iso.dsn, schema=iso.schema, max_size=3)
    async with pool.acquire() as conn:
        await conn.execute(TABLE)
    yield pool
    await pool.close()


async def test_a_date_is_claimed_progressed_and_completed_and_a_rerun_keeps_its_id(
        pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        run = await RUNS.claim(conn, D1, "nadia")
        assert (run["status"], run["step"], run["attempts"]) == ("running", "starting", 1)
        assert (await RUNS.running(conn))["run_id"] == run["run_id"]
        await RUNS.progress(conn, D1, "accruals", {"accruals": 3})
        row = await RUNS.by_id(conn, run["run_id"])
        assert (row["step"], row["stats"]) == ("accruals", {"accruals": 3})
        await RUNS.fail(conn, D1, "boom")
        assert (await RUNS.by_date(conn, D1))["status"] == "failed"
        again = await RUNS.claim(conn, D1, "amina", step="waiting")
        assert (again["run_id"], again["attempts"], again["step"], again["error"]) == (
            run["run_id"], 2, "waiting", None)
        await RUNS.complete(conn, D1, {"accruals": 3, "seconds": 0.1})
        assert await RUNS.completed(conn, D1)
        assert not await RUNS.completed(conn, D2)
        assert await RUNS.latest_completed(conn) == D1
        assert (await RUNS.last_completed(conn))["business_date"] == D1
        assert await RUNS.running(conn) is None
        assert [r["business_date"] for r in await RUNS.recent(conn)] == [D1]


async def test_the_run_in_progress_is_the_latest_date_or_the_one_started_last(
        pool: asyncpg.Pool) -> None:
    last_started = CobRuns(RUNS.lock_key, RUNS.name, RUNS.log,
                           running_order="started_at DESC")
    async with pool.acquire() as conn:
        await RUNS.claim(conn, D3, "nadia")
        await conn.execute("UPDATE cob_runs SET started_at = now() - interval '1 minute'")
        await RUNS.claim(conn, D2, "nadia (catch-up)")
        assert (await RUNS.running(conn))["business_date"] == D3
        assert (await last_started.running(conn))["business_date"] == D2


async def test_one_run_at_a_time_and_a_dead_holders_runs_are_marked_failed(
        pool: asyncpg.Pool) -> None:
    async def claim_d1(conn: asyncpg.Connection) -> Claim:
        row = await RUNS.by_date(conn, D1)
        if row is not None and row["status"] == "completed":
            return Claim(row, True)
        return Claim(await RUNS.claim(conn, D1, "nadia"), False)

    holder = await pool.acquire()
    async with pool.acquire() as other:
        claimed = await RUNS.lock_and_claim(holder, lambda: claim_d1(holder))
        assert claimed.run["status"] == "running"
        with pytest.raises(Conflict):
            await RUNS.lock_and_claim(other, lambda: claim_d1(other))
        assert await RUNS.recover_stale_runs(other) == []   # the run is alive
        # the holder's session ends without finishing (as when its process dies): the
        # server drops its lock, and the next holder marks its run failed
        holder.terminate()
        await pool.release(holder)
        assert await until(lambda: RUNS.recover_stale_runs(other),
                           "the dead holder's run marked failed") == [D1]
        row = await RUNS.by_date(other, D1)
        assert (row["status"], row["error"]) == ("failed", INTERRUPTED)
        # a completed date is returned as it is, and the lock is not kept
        again = await RUNS.lock_and_claim(other, lambda: claim_d1(other))
        await RUNS.complete(other, D1, {})
        await RUNS.unlock(other)
        done = await RUNS.lock_and_claim(other, lambda: claim_d1(other))
        assert done.done and done.run["run_id"] == again.run["run_id"]
        assert await RUNS.try_lock(other)
        await RUNS.unlock(other)
