"""Delivery receipts arriving while PostgreSQL is slow never cause a second SMS.

The SMSC delivers each message's receipt while another transaction holds the
``receipts`` table locked (the database as slow as it gets for that write). The
next message's ``submit_sm_resp`` arrives behind that ``deliver_sm`` on the same
link: if the read loop waited for the write, the submission would time out and be
tried again, and the phone would get the SMS twice. Here each phone gets exactly
one submission at the SMSC, and the receipts are applied once the table is free.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from services.notifications.handlers.policies import Policies
from services.notifications.jobs import Sender
from services.notifications.repository import messages as store
from services.notifications.settings import NotificationsSettings, ProviderConfig
from shared.db import create_pool
from simulators.smsc.runner import running
from tests.infra import Infra
from tests.kafka_facts import until

pytestmark = pytest.mark.integration
MIGRATIONS = Path(__file__).parents[3] / "services" / "notifications" / "migrations"
SUBMIT_TIMEOUT_S = 1.0


@dataclass
class SlowReceipts:
    pool: asyncpg.Pool
    sim: httpx.AsyncClient
    dsn: str

    async def queue(self) -> tuple[uuid.UUID, str]:
        """A queued urgent message to a new phone; (its id, the phone)."""
        phone = f"+2126{random.randint(10**7, 10**8 - 1)}"
        mid = uuid.uuid4()
        async with self.pool.acquire() as conn, conn.transaction():
            assert await store.insert_message(conn, store.NewMessage(
                id=mid, template="kyc_verified", template_version=1, language="fr",
                text="Noria: votre identite est verifiee.", encoding="GSM-7", segments=1,
                urgent=True, status="queued", not_before=dt.datetime.now(dt.UTC),
                source_event_id=uuid.uuid4(), phone=phone))
        return mid, phone

    async def attempt_outcomes(self, mid: uuid.UUID) -> list[str]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT outcome FROM attempts WHERE message_id = $1 ORDER BY started_at", mid)
        return [r["outcome"] for r in rows]

    async def status(self, mid: uuid.UUID) -> str:
        async with self.pool.acquire() as conn:
            status: str = await conn.fetchval("SELECT status FROM messages WHERE id = $1", mid)
        return status

    async def stats(self) -> dict[str, int]:
        found: dict[str, int] = (await self.sim.get("/stats")).json()
        return found

    async def on_phone(self, phone: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await self.sim.get("/messages",
                                                          params={"to": phone})).json()
        return found

    @contextlib.asynccontextmanager
    async def receipts_locked(self) -> AsyncIterator[None]:
        """Another transaction holds the receipts table: every write to it waits."""
        conn = await asyncpg.connect(self.dsn)
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE receipts IN EXCLUSIVE MODE")
                yield
        finally:
            await conn.close()


@contextlib.asynccontextmanager
async def slow_receipts(isolated_schema: Any, infra: Infra, *, queue_size: int
                        ) -> AsyncIterator[SlowReceipts]:
    iso = await isolated_schema("notif_slow", MIGRATIONS)
    pool = await create_pool(iso.dsn, schema=iso.schema, max_size=8)
    task: asyncio.Task[None] | None = None
    try:
        async with running() as smsc, httpx.AsyncClient(base_url=smsc.http_url) as sim:
            await sim.post("/control", json={"receipt_delay_s": 0.0, "redeliver_delay_s": 0.2})
            settings = NotificationsSettings(
                database_url=iso.dsn, db_schema=iso.schema,
                kafka_bootstrap=infra.kafka_bootstrap,
                providers=[ProviderConfig(name="smsc", kind="smpp", port=smsc.smpp_port,
                                          timeout_s=SUBMIT_TIMEOUT_S)],
                retry_base_s=0.3, max_attempts=4, worker_poll_s=0.05, receipt_poll_s=3600,
                inbound_queue_size=queue_size)
            sender = Sender(pool, Policies(retry=settings.retry_policy()), settings)
            task = asyncio.create_task(sender.run())

            async def bound() -> bool:
                return any(s["bound"] for s in (await sim.get("/sessions")).json())

            await until(bound, "the sender bound to the SMSC")
            yield SlowReceipts(pool, sim, iso.dsn)
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await pool.close()


async def _send_each_behind_a_blocked_receipt(rig: SlowReceipts, count: int
                                              ) -> list[tuple[uuid.UUID, str]]:
    """Queue ``count`` messages one after the other while the receipts table is locked,
    each once the SMSC has sent the receipt of the one before."""
    sent: list[tuple[uuid.UUID, str]] = []
    for n in range(count):
        mid, phone = await rig.queue()
        # the submission's outcome is known: submitted, or timed out (the old failure)
        await until(lambda m=mid: rig.attempt_outcomes(m), f"message {n + 1} tried")
        assert await rig.attempt_outcomes(mid) == ["submitted"], (
            f"message {n + 1} was not submitted at its first try")
        # its receipt is on the link before the next submission's response
        await until(lambda k=n + 1: _receipts_sent(rig, k), f"receipt {n + 1} sent")
        sent.append((mid, phone))
    return sent


async def _receipts_sent(rig: SlowReceipts, count: int) -> bool:
    return (await rig.stats())["deliver_sm"] >= count


async def _assert_each_sent_once_and_delivered(rig: SlowReceipts,
                                               sent: list[tuple[uuid.UUID, str]]) -> None:
    for mid, _ in sent:
        await until(lambda m=mid: _is(rig, m, "delivered"), f"message {mid} delivered")
    for _, phone in sent:
        got = [(m["parts"], m["submits"]) for m in await rig.on_phone(phone)]
        assert got == [(1, 1)], f"{phone}: (parts, submissions) at the SMSC: {got}"
    async with rig.pool.acquire() as conn:
        unapplied = await conn.fetchval("SELECT count(*) FROM receipts WHERE applied_at IS NULL")
    assert unapplied == 0


async def _is(rig: SlowReceipts, mid: uuid.UUID, status: str) -> bool:
    return await rig.status(mid) == status


async def test_receipts_while_the_database_is_slow_never_send_an_sms_twice(
        isolated_schema: Any, infra: Infra) -> None:
    async with slow_receipts(isolated_schema, infra, queue_size=10_000) as rig:
        async with rig.receipts_locked():
            sent = await _send_each_behind_a_blocked_receipt(rig, 3)
            for mid, _ in sent:  # acknowledged, but not written while the table is locked
                assert await rig.status(mid) == "submitted"
        await _assert_each_sent_once_and_delivered(rig, sent)
        assert (await rig.stats())["deliver_sm_refused"] == 0


async def test_a_full_receipt_queue_refuses_receipts_not_submissions(
        isolated_schema: Any, infra: Infra) -> None:
    """Room for one receipt: the others are refused (ESME_RX_T_APPN) and delivered
    again by the SMSC once the database is free; submissions never wait."""
    async with slow_receipts(isolated_schema, infra, queue_size=1) as rig:
        async with rig.receipts_locked():
            sent = await _send_each_behind_a_blocked_receipt(rig, 4)
            # one receipt being written, one queued: the others were refused
            await until(lambda: _refused(rig), "a receipt refused")
        await _assert_each_sent_once_and_delivered(rig, sent)
        assert (await rig.stats())["redelivered"] >= 1


async def _refused(rig: SlowReceipts) -> bool:
    return (await rig.stats())["deliver_sm_refused"] >= 1
