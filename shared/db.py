"""asyncpg plumbing: a pool per service, connecting as the service's own role."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import orjson

log = logging.getLogger("noria.db")


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
