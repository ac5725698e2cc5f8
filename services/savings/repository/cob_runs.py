"""Close-of-business runs (``cob_runs``): one row per business date, progress and result."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

from services.savings.repository import Conn

LOCK_KEY = "noria.savings.close_of_business"
INTERRUPTED = "interrupted: the process running it stopped before it finished"
_COLS = ("run_id, business_date, status, requested_by, step, attempts, error, started_at,"
         " heartbeat_at, finished_at, stats")


async def try_lock(conn: Conn) -> bool:
    got: bool = await conn.fetchval(
        "SELECT pg_try_advisory_lock(hashtext($1 || current_schema()))", LOCK_KEY)
    return got


async def unlock(conn: Conn) -> None:
    await conn.execute("SELECT pg_advisory_unlock(hashtext($1 || current_schema()))", LOCK_KEY)


async def by_id(conn: Conn, run_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {_COLS} FROM cob_runs WHERE run_id = $1", run_id)
    return row


async def running(conn: Conn) -> asyncpg.Record | None:
    """The run in progress (the latest date, when catching up), if any."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {_COLS} FROM cob_runs WHERE status = 'running'"
        " ORDER BY business_date DESC LIMIT 1")
    return row


async def by_date(conn: Conn, day: date) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {_COLS} FROM cob_runs WHERE business_date = $1", day)
    return row


async def latest_completed(conn: Conn) -> date | None:
    d: date | None = await conn.fetchval(
        "SELECT max(business_date) FROM cob_runs WHERE status = 'completed'")
    return d


async def fail_stale(conn: Conn) -> list[date]:
    """Only with the lock held: every ``running`` row belongs to a run that is gone."""
    rows = await conn.fetch(
        "UPDATE cob_runs SET status = 'failed', finished_at = now(), error = $1"
        " WHERE status = 'running' RETURNING business_date", INTERRUPTED)
    return [r["business_date"] for r in rows]


async def claim(conn: Conn, day: date, requested_by: str, *, step: str = "starting"
                ) -> asyncpg.Record:
    """With the lock held: the date's row, running (a failed one is attempted again)."""
    row = await conn.fetchrow(
        "INSERT INTO cob_runs (business_date, status, requested_by, step, heartbeat_at)"
        " VALUES ($1, 'running', $2, $3, now())"
        " ON CONFLICT (business_date) DO UPDATE SET status = 'running', started_at = now(),"
        "  finished_at = NULL, error = NULL, requested_by = $2, step = $3, stats = '{}',"
        "  heartbeat_at = now(), attempts = cob_runs.attempts + 1"
        f" RETURNING {_COLS}", day, requested_by, step)
    assert row is not None
    return row


async def progress(conn: Conn, day: date, step: str, stats: dict[str, Any]) -> None:
    await conn.execute(
        "UPDATE cob_runs SET step = $2, heartbeat_at = now(), stats = $3"
        " WHERE business_date = $1 AND status = 'running'", day, step, stats)


async def complete(conn: Conn, day: date, stats: dict[str, Any]) -> None:
    await conn.execute(
        "UPDATE cob_runs SET status = 'completed', finished_at = now(), heartbeat_at = now(),"
        " step = NULL, stats = $2 WHERE business_date = $1", day, stats)


async def fail(conn: Conn, day: date, error: str) -> None:
    await conn.execute(
        "UPDATE cob_runs SET status = 'failed', finished_at = now(), error = $2"
        " WHERE business_date = $1 AND status = 'running'", day, error[:1000])


async def recent(conn: Conn, limit: int = 60) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {_COLS} FROM cob_runs ORDER BY business_date DESC LIMIT $1", limit)
    return rows
