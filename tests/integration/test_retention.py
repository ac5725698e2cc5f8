"""Retention: old inbox, idempotency, dead-letter and declared service rows are pruned,
young ones and unhandled dead letters stay, and one replica at a time does it."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from prometheus_client import REGISTRY

from shared.db import DbLimits, create_pool
from shared.retention import RetentionJob
from tests.conftest import SchemaFactory
from tests.kafka_facts import until

pytestmark = pytest.mark.integration

OLD = "now() - interval '20 days'"
YOUNG = "now() - interval '2 days'"


async def seed(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "CREATE TABLE webhook_receipts (id text PRIMARY KEY, received_at timestamptz)")
    for age, n in ((OLD, 5), (YOUNG, 3)):
        for _ in range(n):
            await conn.execute(
                f"INSERT INTO inbox (consumer, event_id, processed_at) VALUES ('c', $1, {age})",
                uuid.uuid4())
            await conn.execute(
                "INSERT INTO idempotency_keys (scope, key, request_hash, created_at)"
                f" VALUES ('s', $1, 'h', {age})", uuid.uuid4().hex)
            await conn.execute(
                f"INSERT INTO webhook_receipts VALUES ($1, {age})", uuid.uuid4().hex)
    # dead letters: old and replayed (goes, with its audit), old and never dealt with
    # (stays), young and replayed (stays)
    for offset, (age, replayed) in enumerate(((OLD, True), (OLD, False), (YOUNG, True))):
        dl = await conn.fetchval(
            "INSERT INTO dead_letters (consumer, topic, kafka_partition, kafka_offset, value,"
            " reason, error, created_at, replayed_at) VALUES ('c', 't', 0, $1, '\\x00',"
            f" 'handler_failed', 'e', {age}, CASE WHEN $2 THEN now() END) RETURNING id",
            offset, replayed)
        if replayed:
            await conn.execute("INSERT INTO dead_letter_replays (dead_letter_id, replayed_by,"
                               " outcome) VALUES ($1, 'op', 'applied')", dl)


def pruned_metric(service: str, table: str) -> float:
    return REGISTRY.get_sample_value("noria_retention_pruned_rows_total",
                                     {"service": service, "table": table}) or 0.0


async def counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in (
        "inbox", "idempotency_keys", "webhook_receipts", "dead_letters", "dead_letter_replays")}


async def test_old_rows_only_are_pruned_in_batches_and_counted(
        isolated_schema: SchemaFactory) -> None:
    iso = await isolated_schema("retain")
    pool = await create_pool(iso.dsn, schema=iso.schema, max_size=2)
    service = f"svc-{iso.schema}"
    try:
        async with pool.acquire() as conn:
            await seed(conn)
        job = RetentionJob(pool, service=service, schema=iso.schema, keep_days=14,
                           batch_size=2, extra=[("webhook_receipts", "received_at")])
        pruned = await job.run_once()
        assert pruned == {"inbox": 5, "idempotency_keys": 5, "webhook_receipts": 5,
                          "dead_letters": 1}
        async with pool.acquire() as conn:
            assert await counts(conn) == {
                "inbox": 3, "idempotency_keys": 3, "webhook_receipts": 3,
                "dead_letters": 2, "dead_letter_replays": 1}
            assert await conn.fetchval(
                "SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL") == 1
        for table, n in pruned.items():
            assert pruned_metric(service, table) == n
        assert await job.run_once() == {"inbox": 0, "idempotency_keys": 0,
                                        "webhook_receipts": 0, "dead_letters": 0}
    finally:
        await pool.close()


async def test_a_second_replica_skips_the_round_the_first_is_running(
        isolated_schema: SchemaFactory, admin_pool: asyncpg.Pool) -> None:
    iso = await isolated_schema("retain2")
    patient = DbLimits(lock_timeout_s=30)
    pool_a = await create_pool(iso.dsn, schema=iso.schema, max_size=2, limits=patient)
    pool_b = await create_pool(iso.dsn, schema=iso.schema, max_size=2, limits=patient)
    blocker = await asyncpg.connect(iso.dsn)
    try:
        async with pool_a.acquire() as conn:
            await seed(conn)
        replica_a = RetentionJob(pool_a, service="a", schema=iso.schema)
        replica_b = RetentionJob(pool_b, service="b", schema=iso.schema)
        # Replica A's run is held up mid-way by a row lock on an old inbox row.
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("SELECT 1 FROM inbox WHERE processed_at < now() - interval"
                              " '14 days' LIMIT 1 FOR UPDATE")
        running_a = asyncio.create_task(replica_a.run_once())

        async def a_waits_on_the_row() -> bool:
            return bool(await admin_pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1"
                " AND wait_event_type = 'Lock' AND query LIKE 'DELETE FROM%'", iso.role))
        await until(a_waits_on_the_row, "replica A is pruning")
        assert await replica_b.run_once() is None   # A holds the job: B does not run it
        await tx.rollback()
        assert await asyncio.wait_for(running_a, 30) == {
            "inbox": 5, "idempotency_keys": 5, "dead_letters": 1}
        assert pruned_metric("b", "inbox") == 0
        # A released the job: the next round may be anyone's, and finds nothing old left.
        assert await replica_b.run_once() == {"inbox": 0, "idempotency_keys": 0,
                                              "dead_letters": 0}
    finally:
        await blocker.close()
        await pool_a.close()
        await pool_b.close()
