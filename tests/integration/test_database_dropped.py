"""A request whose database connection is killed under it is told 503 (retry), never 500.

When PostgreSQL restarts, a running transaction's connection dies mid-query and the
rollback that follows fails on the dead connection; asyncpg raises that last error
(InterfaceError / InternalClientError) with the real cause on its context chain.
"""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
from fastapi import FastAPI

from shared.http import install_error_handlers
from tests.conftest import SchemaFactory


async def test_a_transaction_killed_mid_query_answers_503_and_commits_nothing(
        isolated_schema: SchemaFactory, admin_pool: asyncpg.Pool) -> None:
    iso = await isolated_schema("dropped")
    pool = await asyncpg.create_pool(iso.dsn, min_size=1, max_size=2)
    assert pool is not None
    started = asyncio.Event()
    backend: list[int] = []
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/transfers")
    async def transfer() -> dict[str, str]:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("CREATE TABLE IF NOT EXISTS transfers (id int)")
            await conn.execute("INSERT INTO transfers VALUES (1)")
            backend.append(await conn.fetchval("SELECT pg_backend_pid()"))
            started.set()
            await conn.execute("SELECT pg_sleep(30)")
        return {"status": "done"}

    async def kill_when_started() -> None:
        await started.wait()
        await admin_pool.execute("SELECT pg_terminate_backend($1)", backend[0])

    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            killer = asyncio.create_task(kill_when_started())
            resp = await asyncio.wait_for(client.post("/transfers"), timeout=20)
            await killer
        assert resp.status_code == 503, resp.text
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.headers["retry-after"] == "1"
        # The pool hands out a fresh connection afterwards; nothing was committed.
        exists = await pool.fetchval("SELECT to_regclass('transfers') IS NOT NULL")
        assert exists is False
    finally:
        await pool.close()
