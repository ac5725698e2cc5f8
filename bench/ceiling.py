"""The physical limit the sagas share: PostgreSQL's commit rate for small writes.

Each worker runs single-row INSERT transactions (one commit, one WAL flush each)
on its own connection for ``seconds``; the figure is commits per second.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

from bench.progress import Progress


async def commit_rate(admin_url: str, concurrency: int, seconds: float) -> dict[str, Any]:
    setup = await asyncpg.connect(admin_url)
    await setup.execute("CREATE SCHEMA IF NOT EXISTS bench")
    await setup.execute("DROP TABLE IF EXISTS bench.ceiling")
    await setup.execute(
        "CREATE TABLE bench.ceiling (id bigserial PRIMARY KEY, k uuid NOT NULL,"
        " amount numeric(14,2) NOT NULL, at timestamptz NOT NULL DEFAULT now())")
    await setup.close()
    conns = [await asyncpg.connect(admin_url) for _ in range(concurrency)]
    counts = [0] * concurrency
    stop_at = time.monotonic() + seconds
    progress = Progress(f"ceiling c={concurrency}", seconds)

    async def worker(i: int) -> None:
        conn = conns[i]
        stmt = await conn.prepare(
            "INSERT INTO bench.ceiling (k, amount) VALUES (gen_random_uuid(), 100.00)")
        while time.monotonic() < stop_at:
            await stmt.fetch()
            counts[i] += 1

    async def report() -> None:
        while time.monotonic() < stop_at:
            await asyncio.sleep(1)
            progress.update(seconds - max(stop_at - time.monotonic(), 0),
                            f"{sum(counts):,} commits")

    started = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(concurrency)), report())
    elapsed = time.monotonic() - started
    for conn in conns:
        await conn.close()
    cleanup = await asyncpg.connect(admin_url)
    await cleanup.execute("DROP TABLE IF EXISTS bench.ceiling")
    await cleanup.close()
    total = sum(counts)
    progress.done(f"{total / elapsed:,.0f} commits/s")
    return {"concurrency": concurrency, "seconds": round(elapsed, 2), "commits": total,
            "commits_per_s": round(total / elapsed, 1)}


SETTINGS = ("server_version", "fsync", "synchronous_commit", "wal_sync_method", "commit_delay",
            "shared_buffers", "work_mem", "max_connections", "max_parallel_workers_per_gather")


async def server_settings(admin_url: str) -> dict[str, str]:
    """The settings that decide the ceiling, recorded next to it."""
    conn = await asyncpg.connect(admin_url)
    try:
        rows = await conn.fetch(
            "SELECT name, current_setting(name) AS value FROM pg_settings"
            " WHERE name = ANY($1::text[])", list(SETTINGS))
    finally:
        await conn.close()
    return {r["name"]: r["value"] for r in rows}
