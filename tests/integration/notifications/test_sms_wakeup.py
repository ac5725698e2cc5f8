"""A queued SMS wakes the sender: it goes out without waiting for the next poll.

The sender here polls once an hour, so a message queued after it started can only
reach the SMSC through the wake-up (``NOTIFY <schema>_sms`` at commit, ``LISTEN``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.notifications.handlers.policies import Policies
from services.notifications.jobs import Sender, listen_for_queued
from services.notifications.repository import messages as store
from services.notifications.settings import NotificationsSettings, ProviderConfig
from shared.db import create_pool
from simulators.smsc.runner import running
from tests.infra import Infra
from tests.kafka_facts import until

pytestmark = pytest.mark.integration
MIGRATIONS = Path(__file__).parents[3] / "services" / "notifications" / "migrations"
AN_HOUR = 3600.0


class Wakeup(asyncio.Event):
    """The sender's wake-up event, remembering that it was ever set: the listener sets it
    once LISTEN is in place."""

    def __init__(self) -> None:
        super().__init__()
        self.ever_set = False

    def set(self) -> None:
        self.ever_set = True
        super().set()


class CountingSender(Sender):
    """A sender that counts its rounds (each claim of due messages)."""

    rounds = 0

    async def send_due(self) -> int:
        sent = await super().send_due()
        self.rounds += 1
        return sent


def message(status: str, phone: str, client_id: str) -> store.NewMessage:
    now = dt.datetime.now(dt.UTC)
    return store.NewMessage(
        id=uuid.uuid4(), template="kyc_verified", template_version=1, language="fr",
        text="Votre identite est verifiee.", encoding="GSM-7", segments=1, urgent=True,
        status=status, not_before=now, source_event_id=uuid.uuid4(),  # type: ignore[arg-type]
        client_id=client_id, phone=phone, reason="no_consent" if status == "suppressed" else None)


async def test_a_queued_message_is_sent_without_waiting_for_the_poll(
        isolated_schema, infra: Infra) -> None:
    iso = await isolated_schema("notif_wake", MIGRATIONS)
    pool = await create_pool(iso.dsn, schema=iso.schema, max_size=3)
    phone = f"+2126{random.randint(10**7, 10**8 - 1)}"
    client_id = f"cl-{uuid.uuid4().hex[:10]}"
    tasks: list[asyncio.Task[None]] = []
    try:
        async with running() as smsc, httpx.AsyncClient(base_url=smsc.http_url) as sim:
            settings = NotificationsSettings(
                database_url=iso.dsn, kafka_bootstrap=infra.kafka_bootstrap,
                providers=[ProviderConfig(name="smsc", kind="smpp", port=smsc.smpp_port,
                                          timeout_s=2.0)],
                worker_poll_s=AN_HOUR, receipt_poll_s=AN_HOUR)
            wakeup = Wakeup()
            sender = CountingSender(pool, Policies(), settings, wakeup=wakeup)
            await pool.execute(
                "INSERT INTO recipients (client_id, partner_id, phone, language, consent)"
                " VALUES ($1, 'pa-wake', $2, 'fr', true)", client_id, phone)
            tasks.append(asyncio.create_task(listen_for_queued(iso.dsn, iso.schema, wakeup)))
            tasks.append(asyncio.create_task(sender.run()))

            async def waiting_for_an_hour() -> bool:  # listening, and past its first round
                return wakeup.ever_set and sender.rounds >= 1 and not wakeup.is_set()

            await until(waiting_for_an_hour, "the listener and the sender started")
            rounds = sender.rounds

            async with pool.acquire() as conn, conn.transaction():
                assert await store.insert_message(conn, message("queued", phone, client_id))

            async def on_phone() -> list[object]:
                found: list[object] = (await sim.get("/messages", params={"to": phone})).json()
                return found

            await until(on_phone, "the message sent")
            assert len(await on_phone()) == 1
            # a round ended since: woken, not polled (its poll is an hour away)
            await until(lambda: _above(sender.rounds, rounds), "the woken round ended")
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await pool.close()


async def test_only_a_committed_queued_message_notifies(isolated_schema) -> None:
    iso = await isolated_schema("notif_ntfy", MIGRATIONS)
    listener = await asyncpg.connect(iso.dsn)
    channel = store.queued_channel(iso.schema)
    heard: list[tuple[str, str]] = []
    await listener.add_listener(channel, lambda *args: heard.append((args[2], args[3])))
    conn = await asyncpg.connect(iso.dsn)
    phone, client_id = "+212611111111", "cl-ntfy"
    try:
        async with conn.transaction():  # suppressed: nothing to send, nobody woken
            assert await store.insert_message(conn, message("suppressed", phone, client_id))
        tx = conn.transaction()
        await tx.start()
        assert await store.insert_message(conn, message("queued", phone, client_id))
        await tx.rollback()  # rolled back: never happened
        queued = message("queued", phone, client_id)
        async with conn.transaction():
            assert await store.insert_message(conn, queued)
        async with conn.transaction():  # the same event and template again: a duplicate
            assert not await store.insert_message(conn, queued)
        # A last notification from the same session: the listener gets them in commit
        # order, so once it has this one it has every one sent before.
        await conn.execute("SELECT pg_notify($1, 'sentinel')", channel)
        await until(lambda: _heard(heard, "sentinel"), "the sentinel notification")
        assert heard == [(f"{iso.schema}_sms", ""), (f"{iso.schema}_sms", "sentinel")]
    finally:
        await conn.close()
        await listener.close()


async def _heard(heard: list[tuple[str, str]], payload: str) -> bool:
    return any(p == payload for _, p in heard)


async def _above(value: int, floor: int) -> bool:
    return value > floor
