"""Jobs that must run on one replica at a time: one holder elected by PostgreSQL.

A service runs as several replicas on one database. Most background work is shared
between them (rows claimed with ``FOR UPDATE SKIP LOCKED`` and a lease, Kafka consumer
groups); a few jobs must run on one replica only — a daily scheduler, a sweeper whose
rounds would otherwise collide. :func:`singleton` wraps such a job::

    background=[singleton(saga_sweeper), payout_worker]

Every replica runs the wrapper; the one whose dedicated connection takes the session
advisory lock ``noria.singleton.<schema>.<job>`` runs the job, the others try again
every ``retry_s``. The lock lives as long as that connection's session: a holder that
crashes or is SIGKILLed loses it when its socket closes, and the next replica to try
takes over within ``retry_s``. The holder checks its connection every ``check_s``;
when it is gone (the server restarted, the network dropped it) the job is cancelled
before anything else can happen in it, and the wrapper competes for the lock again.
Between the server dropping a session and the holder noticing, two replicas may
briefly both run the job: singletons are for efficiency and for schedules, and the
jobs wrapped stay correct under a short overlap (row locks, idempotent steps).

``noria_singleton_held{service,job,holder}`` is 1 on the replica holding a job and 0
on the others; :func:`holders` reads who holds it from the database itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import asyncpg
from prometheus_client import Gauge

from shared.db import Conn, DbLimits, server_settings

if TYPE_CHECKING:
    from shared.app import Runtime

log = logging.getLogger("noria.singleton")

SINGLETON_HELD = Gauge(
    "noria_singleton_held",
    "1 on the replica that holds a singleton job (and runs it), 0 on the others",
    ["service", "job", "holder"])

LIMITS = DbLimits(statement_timeout_s=5.0, lock_timeout_s=5.0, idle_in_transaction_s=30.0)
"""The lock connection only takes the lock and checks it is alive."""

TRY_LOCK_SQL = "SELECT pg_try_advisory_lock(hashtextextended($1, 0))"

HOLDERS_SQL = """
SELECT a.pid, a.application_name
  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
 CROSS JOIN (SELECT hashtextextended($1, 0) AS k) key
 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.classid::bigint = ((key.k >> 32) & 4294967295)
   AND l.objid::bigint = (key.k & 4294967295)
"""


def this_replica() -> str:
    """How a replica names itself as a holder: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def lock_name(schema: str, job: str) -> str:
    return f"noria.singleton.{schema}.{job}"


async def holders(conn: Conn, schema: str, job: str) -> list[str]:
    """The sessions holding the job's lock (application names: ``…@host:pid``); at most
    one, unless the server is mid-way through dropping a dead holder."""
    rows = await conn.fetch(HOLDERS_SQL, lock_name(schema, job))
    return [r["application_name"] for r in rows]


class _JobFailed(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class Singleton:
    """The election for one job of one service (see the module docstring)."""

    def __init__(self, job: str, *, service: str, dsn: str, schema: str,
                 retry_s: float = 2.0, check_s: float = 1.0, holder: str | None = None
                 ) -> None:
        self.job = job
        self.service = service
        self.dsn = dsn
        self.schema = schema
        self.retry_s = retry_s
        self.check_s = check_s
        self.holder = holder or this_replica()
        self.key = lock_name(schema, job)
        self.held = False
        self.terms = 0
        """How many times this replica has won the lock."""
        self._set(False)

    def _set(self, held: bool) -> None:
        self.held = held
        SINGLETON_HELD.labels(self.service, self.job, self.holder).set(1 if held else 0)

    async def _connect(self) -> asyncpg.Connection:
        name = f"noria-{self.schema}-singleton:{self.job}@{self.holder}"
        settings = server_settings(self.schema, LIMITS)
        settings["application_name"] = name[:63]
        conn: asyncpg.Connection = await asyncpg.connect(
            self.dsn, server_settings=settings, timeout=10)
        return conn

    async def run(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work()`` while this replica holds the lock; compete again when the lock
        is lost. Returns when ``work()`` returns; raises what ``work()`` raises (the lock
        is released first)."""
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._connect()
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _c, ev=closed: ev.set())
                await self._take(conn)
                self._set(True)
                self.terms += 1
                log.info("singleton %s of %s: held by %s; running it", self.job, self.service,
                         self.holder)
                if await self._hold(conn, closed, work):
                    return
            except asyncio.CancelledError:
                raise
            except _JobFailed as failed:
                raise failed.cause from None
            except Exception as exc:  # the database went away: compete again
                log.info("singleton %s of %s: lock connection lost or unavailable (%s: %s)",
                         self.job, self.service, type(exc).__name__, exc)
            finally:
                was_held = self.held
                self._set(False)
                if conn is not None and not conn.is_closed():
                    conn.terminate()  # the session ends: the lock is released with it
                if was_held:
                    log.info("singleton %s of %s: released by %s", self.job, self.service,
                             self.holder)
            await asyncio.sleep(self.retry_s)

    async def _take(self, conn: asyncpg.Connection) -> None:
        """Wait until this replica's session takes the lock (another replica holds it
        meanwhile: ask again every ``retry_s``)."""
        while True:
            if await conn.fetchval(TRY_LOCK_SQL, self.key):
                return
            await asyncio.sleep(self.retry_s)

    async def _hold(self, conn: asyncpg.Connection, closed: asyncio.Event,
                    work: Callable[[], Awaitable[None]]) -> bool:
        """Run the job while the lock connection lives. True: the job returned; False:
        the lock was lost (the job was cancelled)."""

        async def job() -> None:
            await work()

        task = asyncio.create_task(job(), name=f"singleton-{self.job}")
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(closed.wait()), self.check_s)
                if task.done():
                    if task.cancelled():
                        return False
                    error = task.exception()
                    if error is not None:
                        raise _JobFailed(error)
                    return True
                lost = closed.is_set() or conn.is_closed()
                if not lost:
                    try:
                        await asyncio.wait_for(conn.fetchval("SELECT 1"), self.check_s * 5)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        lost = True
                if lost:
                    log.warning("singleton %s of %s: the lock was lost; stopping the job on %s",
                                self.job, self.service, self.holder)
                    return False
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


def singleton(job: Callable[[Runtime], Awaitable[None]], *, name: str | None = None,
              retry_s: float = 2.0, check_s: float = 1.0
              ) -> Callable[[Runtime], Awaitable[None]]:
    """``job`` as a background job that runs on one replica at a time (its lock is named
    after the job unless ``name`` is given)."""
    job_name = name or job.__name__

    async def run(runtime: Runtime) -> None:
        election = Singleton(job_name, service=runtime.spec.name,
                             dsn=runtime.settings.database_url, schema=runtime.schema,
                             retry_s=retry_s, check_s=check_s)
        runtime.state.setdefault("singletons", {})[job_name] = election
        await election.run(lambda: job(runtime))

    run.__name__ = job.__name__
    run.__qualname__ = f"singleton({job.__qualname__})"
    return run
