"""asyncpg plumbing: a pool per service, connecting as the service's own role.

Every session the platform opens carries its limits (:class:`DbLimits`):
``statement_timeout``, ``lock_timeout`` and ``idle_in_transaction_session_timeout``,
sent in the connection's start-up packet so no session runs without them. A pool
from :func:`create_pool` also bounds the wait for a connection: past
``acquire_timeout_s`` it raises :class:`ConnectionWaitTimeout`, which the HTTP layer
answers ``503`` with ``Retry-After`` and the inbox waits out. Work that must run
longer than the statement timeout (close of business, a large backfill) says so for
one transaction with :func:`statement_timeout`.

A pooled connection goes back to its pool without a session reset (asyncpg's default
runs ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``, one more round
trip per transaction): see :func:`reset_session`. Whoever gives a pooled session
state beyond its transaction undoes it on every path — a session advisory lock is
released with :func:`unlock_or_terminate`, ``LISTEN`` runs on a dedicated connection
(:func:`listen`), settings are ``SET LOCAL`` (:func:`statement_timeout`), cursors live
inside their transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeAlias

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

log = logging.getLogger("noria.db")

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
"""The connection type repositories accept: a pooled one (a unit of work's) or a plain one."""



class ConnectionWaitTimeout(TimeoutError):
    """No pooled connection became free within the pool's acquire timeout."""


@dataclass(frozen=True)
class DbLimits:
    """A session's limits, in seconds (0: none)."""

    statement_timeout_s: float = 15.0
    lock_timeout_s: float = 5.0
    idle_in_transaction_s: float = 30.0

    def server_settings(self) -> dict[str, str]:
        return {
            "statement_timeout": str(_ms(self.statement_timeout_s)),
            "lock_timeout": str(_ms(self.lock_timeout_s)),
            "idle_in_transaction_session_timeout": str(_ms(self.idle_in_transaction_s)),
        }


def opaque_array(array_param: str) -> str:
    """An array parameter whose length the planner does not see, so that a statement
    using it is planned once per connection instead of on every call.

    PostgreSQL's plan cache plans a prepared statement anew on every call while its
    generic plan is estimated dearer than the custom plans it made. A custom plan knows
    an array parameter's length (for ``id = ANY($1)``, for ``FROM unnest($1, ...)``) and
    the generic one guesses ten, so a statement handling one or two keys always looked
    cheaper planned afresh: payments' ledger lock was planned on every posting
    (``pg_stat_statements``: as many plans as calls, the planning four times the
    execution), loans' installments update on every repayment. Read through a
    sub-select, the length is unknown to both plans, their costs are equal, and from
    the sixth call on the generic plan (the same index scans) is kept. Use it where the
    statement looks rows up by key, whatever the array's length.
    """
    # the elements in their order (a zipped ``unnest`` pairs them by position)
    return (f"ARRAY(SELECT u.e FROM unnest({array_param}) WITH ORDINALITY AS u(e, n)"
            " ORDER BY u.n)")


def any_of(array_param: str) -> str:
    """``ANY (...)`` over an array parameter, planned once per connection
    (:func:`opaque_array`)."""
    return f"ANY ({opaque_array(array_param)})"


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


NO_STATEMENT_TIMEOUT = DbLimits(statement_timeout_s=0, idle_in_transaction_s=0)
"""For migrations: a long DDL statement is allowed; the lock wait stays bounded."""

# The database restarting or out of reach, or no connection free in time: nothing was
# done, the caller may retry (an HTTP client after Retry-After; the inbox waits).
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError, asyncpg.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError, asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.IdleInTransactionSessionTimeoutError,
    ConnectionRefusedError, ConnectionResetError, ConnectionWaitTimeout,
)
# A statement cancelled by statement_timeout, or a lock not granted within lock_timeout:
# the transaction was rolled back, the database is busy. An HTTP request is told 503 and
# may retry; an inbox handler counts it as a failure of its own (bounded retries).
DATABASE_BUSY: tuple[type[Exception], ...] = (
    asyncpg.exceptions.QueryCanceledError, asyncpg.exceptions.LockNotAvailableError,
    # chosen as a deadlock's victim, or a serialisation failure: rolled back, retry
    asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError,
)
# asyncpg's client-side errors once the server has dropped the connection under a query:
# the rollback that follows finds the connection closed or still mid-operation.
_DROPPED_CONNECTION_HINTS = ("connection is closed", "another operation", "connection was closed")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: set[int] = set()
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        out.append(current)
        current = current.__cause__ or current.__context__
    return out


def database_busy(exc: BaseException) -> bool:
    """True when `exc`, or what it was raised while handling, is a statement or lock
    timeout (see :data:`DATABASE_BUSY`)."""
    return any(isinstance(e, DATABASE_BUSY) for e in _chain(exc))


_SOCKET_ERRORS = (ConnectionRefusedError, ConnectionResetError)


def database_unavailable(exc: BaseException, *, os_errors: bool = True) -> bool:
    """True when `exc`, or what it was raised while handling, means the database went away.

    A restart under a running transaction surfaces as whatever failed last — often the
    rollback on a dead connection (InterfaceError / InternalClientError) with the real
    cause on its context chain — and nothing was committed, so the work may be retried.
    With ``os_errors=False`` a bare socket error does not count: code that also talks
    to other hosts (an inbox handler calling a provider) cannot tell whose socket it was.
    """
    for current in _chain(exc):
        if isinstance(current, _SOCKET_ERRORS) and not os_errors:
            continue
        if isinstance(current, DATABASE_UNAVAILABLE):
            return True
        if isinstance(current, (asyncpg.InterfaceError, asyncpg.InternalClientError)) and any(
                hint in str(current) for hint in _DROPPED_CONNECTION_HINTS):
            return True
    return False


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads,
        schema="pg_catalog",
    )
    await conn.set_type_codec(
        "json", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads,
        schema="pg_catalog",
    )


def server_settings(schema: str | None, limits: DbLimits | None = None,
                    role: str = "") -> dict[str, str]:
    name = f"noria-{schema or 'admin'}" + (f"-{role}" if role else "")
    settings = {"application_name": name[:63]}
    if schema:
        settings["search_path"] = schema
    settings.update((limits or DbLimits()).server_settings())
    return settings


class PooledConnection(asyncpg.Connection):
    """A pool's connection: remembers that :meth:`add_listener` was called on it, so
    that :func:`reset_session` ends its ``LISTEN`` before anyone else borrows it."""

    listened = False

    async def add_listener(self, channel: str, callback: Any) -> None:
        self.listened = True
        await super().add_listener(channel, callback)


async def reset_session(conn: asyncpg.Connection) -> None:
    """The pools' reset on release: nothing, unless the borrower listened on the
    connection (then ``UNLISTEN *``).

    Before it asyncpg has already dropped the connection's listener callbacks and,
    had a transaction been left open, rolled it back; :meth:`BoundedPool.release`
    closes such a connection before that (it is not reused). Session state outside a
    transaction is its holder's to undo (see the module docstring): this is what lets
    a release cost no round trip.
    """
    if getattr(conn, "listened", False):
        conn.listened = False  # type: ignore[attr-defined]
        await conn.execute("UNLISTEN *")


def _in_transaction(conn: Any) -> bool:
    try:
        return not conn.is_closed() and bool(conn.is_in_transaction())
    except (asyncpg.InterfaceError, AttributeError):   # released already, or torn down
        return False


class BoundedPool(asyncpg.Pool):
    """A pool whose ``acquire()`` waits at most ``acquire_timeout_s`` unless told
    otherwise, then raises :class:`ConnectionWaitTimeout` (every ``pool.fetch`` too).

    A connection given back inside a transaction (its holder was cancelled or failed
    before it could commit or roll back) is closed, not rolled back and reused: what
    that session did besides its transaction is not known."""

    __slots__ = ("acquire_timeout_s", "role")

    def __init__(self, *args: Any, acquire_timeout_s: float | None = None, role: str = "",
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout_s = acquire_timeout_s
        self.role = role

    async def _acquire(self, wait_s: float | None) -> Any:
        bound = wait_s if wait_s is not None else self.acquire_timeout_s
        try:
            return await super()._acquire(bound)  # type: ignore[misc]
        except TimeoutError as exc:
            raise ConnectionWaitTimeout(
                f"no {self.role or 'database'} connection free within {bound}s") from exc

    async def release(self, connection: Any, *,
                      timeout: float | None = None) -> None:  # noqa: ASYNC109 (asyncpg's)
        if _in_transaction(connection):
            log.warning("a %s connection came back inside a transaction; closed, not"
                        " reused", self.role or "database")
            connection.terminate()
        await super().release(connection, timeout=timeout)


async def create_pool(
    dsn: str, *, schema: str | None = None, min_size: int = 2, max_size: int = 10,
    retry_for_s: float = 30.0, limits: DbLimits | None = None,
    acquire_timeout_s: float | None = None, role: str = "",
) -> asyncpg.Pool:
    """Create a pool, retrying while the server is still starting.

    Its sessions carry ``limits`` (the defaults of :class:`DbLimits` if None) and
    ``acquire()`` waits at most ``acquire_timeout_s`` (None: as long as it takes).
    """
    deadline = asyncio.get_running_loop().time() + retry_for_s
    while True:
        try:
            pool: asyncpg.Pool = await BoundedPool(
                dsn, min_size=min_size, max_size=max_size, init=_init_connection,
                server_settings=server_settings(schema, limits, role),
                max_queries=50000, max_inactive_connection_lifetime=300.0, loop=None,
                connection_class=PooledConnection, record_class=asyncpg.Record,
                reset=reset_session,
                acquire_timeout_s=acquire_timeout_s, role=role,
            )
            return pool
        except (OSError, asyncpg.CannotConnectNowError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.warning("database not reachable yet (%s); retrying", exc)
            await asyncio.sleep(1.0)


async def connect(dsn: str, *, schema: str | None = None, limits: DbLimits | None = None,
                  **kw: Any) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(
        dsn, server_settings=server_settings(schema, limits), **kw)
    await _init_connection(conn)
    return conn


UNLOCK_TIMEOUT_S = 5.0


async def unlock_or_terminate(conn: Conn, sql: str, *args: Any, what: str = "lock",
                              timeout_s: float = UNLOCK_TIMEOUT_S) -> None:
    """Release a session-level lock ``conn`` holds with ``sql`` (e.g. ``SELECT
    pg_advisory_unlock(…)``); when that fails, is cancelled or takes longer than
    ``timeout_s`` (the connection broke, the server is gone), terminate ``conn``
    instead: its session ends and PostgreSQL drops every lock it held. A pooled
    connection so ended goes back to its pool closed, and a new one takes its place.

    Raises nothing but cancellation (after terminating): it belongs in ``finally``.
    """
    try:
        await asyncio.wait_for(conn.execute(sql, *args), timeout_s)
    except BaseException as exc:
        with contextlib.suppress(Exception):   # a proxy already given back refuses it
            conn.terminate()
        if not isinstance(exc, Exception):
            raise
        log.warning("could not release the %s (%s: %s); its connection was closed,"
                    " which releases it", what, type(exc).__name__, exc)


@contextlib.asynccontextmanager
async def statement_timeout(conn: Conn, seconds: float) -> AsyncIterator[None]:
    """Let the statements of the current transaction run up to ``seconds`` (0: no limit).

    ``SET LOCAL``: the session's own limit is back once the transaction ends, so a
    pooled connection never leaves with a raised limit. Must be used inside a
    transaction (close of business's, a backfill's)::

        async with conn.transaction(), statement_timeout(conn, 600):
            ...
    """
    if not conn.is_in_transaction():
        raise RuntimeError("statement_timeout() applies to a transaction: open one first")
    await conn.execute("SELECT set_config('statement_timeout', $1, true)", str(_ms(seconds)))
    yield


async def listen(dsn: str, schema: str, channel: str, wakeup: asyncio.Event) -> None:
    """Set ``wakeup`` on every ``NOTIFY channel``, on a dedicated connection, forever.

    Only a hint for a worker that also polls: the event is set on (re)connecting too,
    since notifications sent while not listening are lost, and the connection is
    checked every 5 s and replaced when it drops. Cancelling it cuts the connection.
    """
    while True:
        conn: asyncpg.Connection | None = None
        try:
            conn = await connect(dsn, schema=schema)
            closed = asyncio.Event()
            conn.add_termination_listener(lambda _c, ev=closed: ev.set())
            await conn.add_listener(channel, lambda *_args: wakeup.set())
            wakeup.set()
            while not closed.is_set() and not conn.is_closed():
                try:
                    await asyncio.wait_for(closed.wait(), 5.0)
                except TimeoutError:
                    await conn.execute("SELECT 1")  # notice a dead server
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("LISTEN %s: connection lost (%s); reconnecting", channel, exc)
        finally:
            if conn is not None and not conn.is_closed():
                conn.terminate()
        await asyncio.sleep(1.0)
