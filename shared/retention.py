"""Retention: the platform's bookkeeping tables do not grow forever.

Rows older than ``keep_days`` are deleted in batches (one short transaction each):

- ``inbox`` (``processed_at``) — keep it longer than Kafka's retention: an inbox row
  must outlive every redelivery of its event;
- ``idempotency_keys`` (``created_at``) — longer than any client's or provider's retry
  window;
- ``dead_letters`` that were replayed (``created_at``), with their replay records; a
  dead letter nobody has dealt with stays, however old, until an operator does;
- whatever service-owned tables the service declares as (table, timestamp column)
  pairs in ``ServiceSpec.retention`` (webhook and delivery receipts).

The outbox is pruned by its relay. One replica at a time runs the job: it holds a
session-level advisory lock per schema for the whole run, and a replica that does
not get it skips that round. Each table's pruned rows are counted in
``noria_retention_pruned_rows_total``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from shared.db import Conn, unlock_or_terminate
from shared.telemetry import RETENTION_PRUNED

log = logging.getLogger("noria.retention")

RetentionTable = tuple[str, str]
"""(table, timestamp column): rows whose column is older than the age are deleted."""

PLATFORM_TABLES: tuple[RetentionTable, ...] = (
    ("inbox", "processed_at"),
    ("idempotency_keys", "created_at"),
)
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Replayed dead letters past the age, a batch at a time, with their replay records.
DEAD_LETTERS_SQL = """
WITH old AS (
    SELECT id FROM dead_letters
     WHERE replayed_at IS NOT NULL AND created_at < now() - make_interval(secs => $1)
     ORDER BY id LIMIT $2
), replays AS (
    DELETE FROM dead_letter_replays r USING old WHERE r.dead_letter_id = old.id
)
DELETE FROM dead_letters d USING old WHERE d.id = old.id
"""


def _batch_sql(table: str, column: str) -> str:
    for name in (table, column):
        if not _IDENT.match(name):
            raise ValueError(f"retention: {name!r} is not a plain lower-case SQL identifier")
    return (f'DELETE FROM "{table}" WHERE ctid IN (SELECT ctid FROM "{table}"'
            f' WHERE "{column}" < now() - make_interval(secs => $1) LIMIT $2)')


@dataclass
class RetentionJob:
    pool: asyncpg.Pool
    service: str
    schema: str
    keep_days: float = 14.0
    interval_s: float = 3600.0
    batch_size: int = 5000
    extra: Sequence[RetentionTable] = ()

    def __post_init__(self) -> None:
        self.statements: list[tuple[str, str]] = [
            (table, _batch_sql(table, column))
            for table, column in (*PLATFORM_TABLES, *self.extra)]
        self.statements.append(("dead_letters", DEAD_LETTERS_SQL))
        self.lock_key = f"noria.retention.{self.schema}"

    async def run_once(self) -> dict[str, int] | None:
        """Prune every table; the rows deleted per table, or None when another replica
        holds the job."""
        async with self.pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))",
                                       self.lock_key):
                log.debug("retention of %s is running elsewhere; skipped", self.schema)
                return None
            try:
                pruned: dict[str, int] = {}
                for table, sql in self.statements:
                    pruned[table] = await self._prune(conn, table, sql)
                return pruned
            finally:
                # pooled connections are not reset on release: never give one back
                # holding the lock (unlocked, or its session ended)
                await unlock_or_terminate(conn, "SELECT pg_advisory_unlock(hashtext($1))",
                                          self.lock_key, what="retention lock")

    async def _prune(self, conn: Conn, table: str, sql: str) -> int:
        total = 0
        age_s = self.keep_days * 86400.0
        while True:
            status = await conn.execute(sql, age_s, self.batch_size)
            deleted = int(status.split()[-1])
            if deleted:
                RETENTION_PRUNED.labels(self.service, table).inc(deleted)
                total += deleted
            if deleted < self.batch_size:
                break
        if total:
            log.info("retention: pruned %d rows of %s.%s older than %.1f days", total,
                     self.schema, table, self.keep_days)
        return total

    async def run(self) -> None:
        """Forever: a round now, then one every ``interval_s``; an error waits a round."""
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("retention of %s failed (%s: %s); next round in %.0fs",
                            self.schema, type(exc).__name__, exc, self.interval_s)
            await asyncio.sleep(self.interval_s)
