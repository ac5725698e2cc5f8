"""Close-of-business runs: one row per business date, its progress and result.

A service that closes business dates keeps a ``cob_runs`` table in its own schema (its
migrations create it)::

    business_date date PRIMARY KEY, run_id text UNIQUE DEFAULT gen_random_uuid()::text,
    status text ('running' | 'completed' | 'failed'), requested_by text, step text,
    attempts integer DEFAULT 1, error text, started_at timestamptz DEFAULT now(),
    heartbeat_at timestamptz, finished_at timestamptz, stats jsonb DEFAULT '{}'

and a :class:`CobRuns` over it; the statements name no schema, so each service's runs
are its own. The steps of a date are the service's; what is here is the bookkeeping
around them: the lock, claiming a date, progress, completion and failure, and starting
a run in a background task of the process.

A run is alive while its session holds the close-of-business advisory lock (``lock_key
|| current_schema()``: two schemas in one database never block each other; a session
lock dies with the connection, so with the process): whoever holds the lock may mark
every other ``running`` row failed. Whoever takes the lock releases it on every path
(:meth:`CobRuns.unlock`): pooled connections go back to their pool without a
session reset, so a lock left behind would stay with the next borrower.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from shared.db import Conn, unlock_or_terminate
from shared.errors import Conflict

if TYPE_CHECKING:
    from shared.app import Runtime

INTERRUPTED = "interrupted: the process running it stopped before it finished"
COLUMNS = ("run_id, business_date, status, requested_by, step, attempts, error, started_at,"
           " heartbeat_at, finished_at, stats")
LOCK_ATTEMPTS = 5
"""How many times a start tries the lock while no run is seen running (a status check
holding it for a moment, or a run just ending), :data:`LOCK_RETRY_S` apart."""
LOCK_RETRY_S = 0.2
UNLOCK_SQL = "SELECT pg_advisory_unlock(hashtext($1 || current_schema()))"


class Claimed(Protocol):
    """A date claimed under the lock: its run row, and whether it had already completed
    (then nothing is to be run and the lock has been released)."""

    @property
    def run(self) -> asyncpg.Record: ...

    @property
    def done(self) -> object: ...


C = TypeVar("C", bound=Claimed)


@dataclass(frozen=True)
class CobRuns:
    """The ``cob_runs`` table of the connection's schema, and the lock named ``lock_key``."""

    lock_key: str
    name: str
    """What the logs and errors call a run ("close of business")."""
    log: logging.Logger
    running_order: str = "business_date DESC"
    """Which of several ``running`` rows (a date and the missed dates it catches up) is
    the run in progress: the latest date, or ``started_at DESC`` the one started last."""

    async def try_lock(self, conn: Conn) -> bool:
        got: bool = await conn.fetchval(
            "SELECT pg_try_advisory_lock(hashtext($1 || current_schema()))", self.lock_key)
        return got

    async def unlock(self, conn: Conn) -> None:
        """Release the lock held on ``conn``; if that cannot be done (the connection
        broke, the unlock failed or was cancelled) end ``conn``'s session, which drops
        it (then ``conn`` is closed). Raises only cancellation: for ``finally`` blocks."""
        await unlock_or_terminate(conn, UNLOCK_SQL, self.lock_key,
                                  what=f"{self.name} lock")

    async def by_date(self, conn: Conn, business_date: date) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await conn.fetchrow(
            f"SELECT {COLUMNS} FROM cob_runs WHERE business_date = $1", business_date)
        return row

    async def by_id(self, conn: Conn, run_id: str) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await conn.fetchrow(
            f"SELECT {COLUMNS} FROM cob_runs WHERE run_id = $1", run_id)
        return row

    async def running(self, conn: Conn) -> asyncpg.Record | None:
        """The run in progress, if any (see :attr:`running_order`)."""
        row: asyncpg.Record | None = await conn.fetchrow(
            f"SELECT {COLUMNS} FROM cob_runs WHERE status = 'running'"
            f" ORDER BY {self.running_order} LIMIT 1")
        return row

    async def latest_completed(self, conn: Conn) -> date | None:
        latest: date | None = await conn.fetchval(
            "SELECT max(business_date) FROM cob_runs WHERE status = 'completed'")
        return latest

    async def last_completed(self, conn: Conn) -> asyncpg.Record | None:
        """The latest completed run's business date and end."""
        row: asyncpg.Record | None = await conn.fetchrow(
            "SELECT business_date, finished_at FROM cob_runs WHERE status = 'completed'"
            " ORDER BY business_date DESC LIMIT 1")
        return row

    async def completed(self, conn: Conn, business_date: date) -> bool:
        """Whether the date's run has completed."""
        done = await conn.fetchval(
            "SELECT 1 FROM cob_runs WHERE business_date = $1 AND status = 'completed'",
            business_date)
        return done is not None

    async def fail_stale(self, conn: Conn) -> list[date]:
        """Only with the lock held: every ``running`` row belongs to a run that is gone."""
        rows = await conn.fetch(
            "UPDATE cob_runs SET status = 'failed', finished_at = now(), error = $1"
            " WHERE status = 'running' RETURNING business_date", INTERRUPTED)
        return [r["business_date"] for r in rows]

    async def claim(self, conn: Conn, business_date: date, requested_by: str, *,
                    step: str = "starting") -> asyncpg.Record:
        """With the lock held: the date's row, running (a failed one is attempted again;
        its run id never changes)."""
        row = await conn.fetchrow(
            "INSERT INTO cob_runs (business_date, status, requested_by, step, heartbeat_at)"
            " VALUES ($1, 'running', $2, $3, now())"
            " ON CONFLICT (business_date) DO UPDATE SET status = 'running', started_at = now(),"
            "  finished_at = NULL, error = NULL, requested_by = $2, step = $3, stats = '{}',"
            "  heartbeat_at = now(), attempts = cob_runs.attempts + 1"
            f" RETURNING {COLUMNS}", business_date, requested_by, step)
        assert row is not None
        return row

    async def progress(self, conn: Conn, business_date: date, step: str,
                       stats: dict[str, Any]) -> None:
        await conn.execute(
            "UPDATE cob_runs SET step = $2, heartbeat_at = now(), stats = $3"
            " WHERE business_date = $1 AND status = 'running'", business_date, step, stats)

    async def complete(self, conn: Conn, business_date: date, stats: dict[str, Any]) -> None:
        await conn.execute(
            "UPDATE cob_runs SET status = 'completed', finished_at = now(),"
            " heartbeat_at = now(), step = NULL, stats = $2 WHERE business_date = $1",
            business_date, stats)

    async def fail(self, conn: Conn, business_date: date, error: str) -> None:
        await conn.execute(
            "UPDATE cob_runs SET status = 'failed', finished_at = now(), error = $2"
            " WHERE business_date = $1 AND status = 'running'", business_date, error[:1000])

    async def recent(self, conn: Conn, limit: int = 60) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await conn.fetch(
            f"SELECT {COLUMNS} FROM cob_runs ORDER BY business_date DESC LIMIT $1", limit)
        return rows

    async def recover_stale_locked(self, conn: Conn) -> list[date]:
        """With the lock held, no run is alive: any ``running`` row is a dead process's."""
        stale = await self.fail_stale(conn)
        for day in stale:
            self.log.warning("%s %s was left running by a process that stopped; marked"
                             " failed (running the date again resumes it)", self.name, day)
        return stale

    async def recover_stale_runs(self, conn: Conn) -> list[date]:
        """Mark failed the runs a dead process left ``running``; [] while a run is alive."""
        if not await self.try_lock(conn):
            return []
        try:
            return await self.recover_stale_locked(conn)
        finally:
            await self.unlock(conn)

    async def lock_and_claim(
            self, conn: Conn, claim: Callable[[], Awaitable[C]]) -> C:
        """Take the lock (409 while another run holds it) and ``claim`` the date with it
        held. The lock stays held unless this raises or the date had already completed
        (then it is released)."""
        if not await self.try_lock(conn):
            raise Conflict(f"a {self.name} is already running; retry when it ends",
                           field="business_date")
        try:
            claimed = await claim()
        except BaseException:
            await self.unlock(conn)
            raise
        if claimed.done:
            await self.unlock(conn)
        return claimed

    async def start_in_background(
            self, runtime: Runtime, business_date: date, *,
            lock_and_claim: Callable[[Conn], Awaitable[C]],
            running_for_date: Callable[[Conn, asyncpg.Record | None],
                                       Awaitable[asyncpg.Record | None]],
            run: Callable[[asyncpg.Pool, Conn, C], Awaitable[None]],
            task_name: str) -> tuple[asyncpg.Record, bool]:
        """Claim the date now (``lock_and_claim`` on a connection of the background
        pool) and ``run`` it in a background task of the process, which owns that
        connection (it holds the lock) until the run ends.

        Returns the date's run and whether this call started it. A date already
        completed is returned as it is, and so is one already running
        (``running_for_date``, given the run in progress, finds its row); another date
        while one runs is a 409 naming the run in progress.
        """
        async with runtime.pool.acquire() as conn:
            row = await self.by_date(conn, business_date)
        if row is not None and row["status"] == "completed":
            return row, False
        # the run holds its connection for as long as it lasts: a background one, so a
        # long night never takes a connection HTTP requests are waiting for
        pool = runtime.background_pool or runtime.http_pool
        conn = await pool.acquire()
        owned = locked = False
        try:
            for attempt in range(LOCK_ATTEMPTS):
                try:
                    claimed = await lock_and_claim(conn)
                    locked = not claimed.done
                    break
                except Conflict:
                    current = await self.running(conn)
                    mine = await running_for_date(conn, current)
                    if mine is not None:
                        return mine, False
                    if current is None and attempt + 1 < LOCK_ATTEMPTS:
                        await asyncio.sleep(LOCK_RETRY_S)
                        continue
                raise Conflict(
                    f"a {self.name} is already running; retry when it ends"
                    + (f" (business date {current['business_date']}, run"
                       f" {current['run_id']})" if current is not None else ""),
                    field="business_date",
                    running_run_id=None if current is None else current["run_id"]) from None
            if claimed.done:
                return claimed.run, False
            task = asyncio.create_task(self._owning(pool, conn, claimed, run),
                                       name=task_name)
            owned = True
            runtime.tasks[:] = [t for t in runtime.tasks if not t.done()]
            runtime.tasks.append(task)   # cancelled, and so marked failed, at shutdown
            return claimed.run, True
        finally:
            if not owned:
                try:
                    if locked:
                        await self.unlock(conn)
                finally:
                    await pool.release(conn)

    async def _owning(self, pool: asyncpg.Pool, conn: PoolConnectionProxy[asyncpg.Record],
                      claimed: C, run: Callable[[asyncpg.Pool, Conn, C], Awaitable[None]]
                      ) -> None:
        """``run`` the claimed date on ``conn``, then release the lock and give the
        connection back to ``pool``."""
        try:
            await run(pool, conn, claimed)
        finally:
            # unlocked, or — when the run's connection is in no state to run
            # pg_advisory_unlock — terminated: its session ends, and the lock with it
            try:
                await self.unlock(conn)
            finally:
                await pool.release(conn)
