"""asyncpg plumbing: a pool per service, connecting as the service's own role."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, TypeAlias

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

log = logging.getLogger("noria.db")

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
"""The connection type repositories accept: a pooled one (a unit of work's) or a plain one."""

# The database restarting or out of reach: nothing was done, the caller may retry.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError, asyncpg.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError, asyncpg.exceptions.CannotConnectNowError,
    ConnectionRefusedError, ConnectionResetError,
)
# asyncpg's client-side errors once the server has dropped the connection under a query:
# the rollback that follows finds the connection closed or still mid-operation.
_DROPPED_CONNECTION_HINTS = ("connection is closed", "another operation", "connection was closed")


def database_unavailable(exc: BaseException) -> bool:
    """True when `exc`, or what it was raised while handling, means the database went away.

    A restart under a running transaction surfaces as whatever failed last — often the
    rollback on a dead connection (InterfaceError / InternalClientError) with the real
    cause on its context chain — and nothing was committed, so the work may be retried.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DATABASE_UNAVAILABLE):
            return True
        if isinstance(current, (asyncpg.InterfaceError, asyncpg.InternalClientError)) and any(
                hint in str(current) for hint in _DROPPED_CONNECTION_HINTS):
            return True
        current = current.__cause__ or current.__context__
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


def server_settings(schema: str | None) -> dict[str, str]:
    settings = {"application_name": f"noria-{schema or 'admin'}"}
    if schema:
        settings["search_path"] = schema
    return settings


async def create_pool(
    dsn: str, *, schema: str | None = None, min_size: int = 2, max_size: int = 10,
    retry_for_s: float = 30.0,
) -> asyncpg.Pool:
    """Create a pool, retrying while the server is still starting."""
    deadline = asyncio.get_running_loop().time() + retry_for_s
    while True:
        try:
            pool = await asyncpg.create_pool(
                dsn, min_size=min_size, max_size=max_size, init=_init_connection,
                server_settings=server_settings(schema),
            )
            assert pool is not None
            return pool
        except (OSError, asyncpg.CannotConnectNowError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.warning("database not reachable yet (%s); retrying", exc)
            await asyncio.sleep(1.0)


async def connect(dsn: str, *, schema: str | None = None, **kw: Any) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(
        dsn, server_settings=server_settings(schema), **kw)
    await _init_connection(conn)
    return conn


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
