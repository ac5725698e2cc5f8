"""What the database sessions were doing during a step: sampled, not guessed.

Every 100 ms one query of ``pg_stat_activity`` lists the sessions of the run's database
that are in a transaction (``active`` or ``idle in transaction``) and what each waits
for: a row lock (``Lock``), the client's next statement (``Client``: the transaction is
open while the service's own process works), the WAL (``LWLock``/``IO``), or nothing
(on CPU). A step's figure is the average number of sessions in each state over its
samples, and the statements most often waiting for a lock. This is how the queue of
postings behind the shared ledger accounts was found (docs/benchmarks.md, Round 6):
the CPU figures alone showed only that the machine was busy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg

INTERVAL_S = 0.1
QUERY = """
SELECT CASE WHEN wait_event_type IS NULL THEN 'cpu'
            WHEN wait_event_type = 'Lock' THEN 'lock:' || wait_event
            WHEN wait_event_type = 'Client' THEN 'client'
            ELSE lower(wait_event_type) || ':' || wait_event END AS what,
       state, left(regexp_replace(query, '\\s+', ' ', 'g'), 80) AS query
  FROM pg_stat_activity
 WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'
   AND state IN ('active', 'idle in transaction')
"""


@dataclass
class Snapshot:
    samples: int
    states: Counter[str] = field(default_factory=Counter)
    locked: Counter[str] = field(default_factory=Counter)


class WaitSampler:
    """Samples in the background from :meth:`start` to :meth:`stop`."""

    def __init__(self, admin_url: str, database: str) -> None:
        self.admin_url = admin_url
        self.database = database
        self._now = Snapshot(0)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        conn = await asyncpg.connect(self.admin_url)
        self._task = asyncio.create_task(self._run(conn))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, conn: asyncpg.Connection) -> None:
        try:
            while True:
                rows = await conn.fetch(QUERY, self.database)
                self._now.samples += 1
                for r in rows:
                    active = r["state"] == "active"
                    self._now.states[r["what"] if active else "idle in transaction"] += 1
                    if r["what"].startswith("lock:"):
                        self._now.locked[r["query"]] += 1
                await asyncio.sleep(INTERVAL_S)
        finally:
            await conn.close()

    def snapshot(self) -> Snapshot:
        return Snapshot(self._now.samples, Counter(self._now.states), Counter(self._now.locked))

    @staticmethod
    def window(before: Snapshot, after: Snapshot) -> dict[str, Any]:
        """Average sessions per state between two snapshots, busiest first."""
        n = after.samples - before.samples
        if n <= 0:
            return {}
        states = after.states - before.states
        locked = after.locked - before.locked
        return {"samples": n,
                "sessions": {k: round(v / n, 2) for k, v in states.most_common()
                             if v / n >= 0.01},
                "waiting_for_a_lock": {q: round(v / n, 2) for q, v in locked.most_common(3)}}


def describe(window: dict[str, Any]) -> str:
    """One line: the three busiest states."""
    sessions = window.get("sessions") or {}
    return ", ".join(f"{v:g} {k}" for k, v in list(sessions.items())[:3]) or "none"
