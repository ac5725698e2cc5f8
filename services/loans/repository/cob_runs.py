"""Close-of-business runs (``cob_runs``): one row per business date, its progress and result.

The bookkeeping is :class:`shared.cob_runs.CobRuns` over the loans schema's table; a
run is alive while its session holds the close-of-business advisory lock, and whoever
holds the lock may mark every other ``running`` row failed. Of several ``running``
rows (a date and the missed dates it catches up, each claimed in turn), the run in
progress is the one started last.
"""

from __future__ import annotations

import logging
from datetime import date

import asyncpg

from services.loans.repository import Conn
from shared.cob_runs import CobRuns

RUNS = CobRuns("noria.loans.close_of_business", "close of business",
               logging.getLogger("noria.loans.cob"), running_order="started_at DESC")
LOCK_KEY = RUNS.lock_key
"""Per schema (``|| current_schema()``): two loans schemas in one database never block
each other."""

try_lock = RUNS.try_lock
unlock = RUNS.unlock
by_date = RUNS.by_date
by_id = RUNS.by_id
running = RUNS.running
latest_completed = RUNS.latest_completed
last_completed = RUNS.last_completed
completed = RUNS.completed
fail_stale = RUNS.fail_stale
claim = RUNS.claim
progress = RUNS.progress
complete = RUNS.complete
fail = RUNS.fail
recent = RUNS.recent


async def snapshot(conn: Conn, business_date: date) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM portfolio_snapshots WHERE business_date = $1", business_date)
    return row
