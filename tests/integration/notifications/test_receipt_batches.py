"""Receipts applied in one transaction per batch end messages as one at a time would.

A batch holding, in order, an ENROUTE then a DELIVRD for one part, both parts of a
two-part message, a failure of one part before the other's delivery, and a receipt
for a message already ended: each message ends once, with the first receipt after
which its parts combine to an outcome, and each ending is published once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest

from services.notifications.handlers.policies import Policies
from services.notifications.handlers.receipts import apply_receipts
from shared.db import create_pool
from shared.uow import UnitOfWork

pytestmark = pytest.mark.integration
MIGRATIONS = Path(__file__).parents[3] / "services" / "notifications" / "migrations"


async def test_one_batch_of_receipts_ends_each_message_once_as_in_order(isolated_schema) -> None:
    iso = await isolated_schema("notif_rcpt", MIGRATIONS)
    pool = await create_pool(iso.dsn, schema=iso.schema, max_size=2)
    now = dt.datetime(2027, 3, 1, 10, 0, tzinfo=dt.UTC)
    ids = {name: uuid.uuid4() for name in ("single", "double", "failed", "ended")}
    try:
        async with pool.acquire() as conn:
            for name, mid in ids.items():
                await conn.execute(
                    "INSERT INTO messages (id, template, template_version, language, text,"
                    " encoding, segments, status, provider, attempts, not_before,"
                    " next_attempt_at, client_id) VALUES ($1, 'loan_disbursed', 1, 'fr', 't',"
                    " 'GSM-7', 2, $2, 'smsc', 1, $3, $3, $4)",
                    mid, "delivered" if name == "ended" else "submitted", now, f"cl-{name}")
            parts = [("single", "s1", 1), ("double", "d1", 1), ("double", "d2", 2),
                     ("failed", "f1", 1), ("failed", "f2", 2), ("ended", "e1", 1)]
            for name, pid, part in parts:
                await conn.execute(
                    "INSERT INTO message_parts (provider, provider_message_id, message_id,"
                    " attempt, part) VALUES ('smsc', $1, $2, 1, $3)", pid, ids[name], part)
            for pid, stat in [("s1", "ENROUTE"), ("d1", "DELIVRD"), ("f1", "UNDELIV"),
                              ("s1", "DELIVRD"), ("f2", "DELIVRD"), ("d2", "DELIVRD"),
                              ("e1", "DELIVRD")]:
                await conn.execute(
                    "INSERT INTO receipts (provider, provider_message_id, stat, error)"
                    " VALUES ('smsc', $1, $2, '')", pid, stat)
        async with UnitOfWork(pool) as uow:
            assert await apply_receipts(uow, Policies(clock=lambda: now)) == 7
            await uow.commit()
        async with UnitOfWork(pool) as uow:  # nothing left to apply
            assert await apply_receipts(uow, Policies(clock=lambda: now)) == 0
            await uow.commit()
        async with pool.acquire() as conn:
            status = {r["id"]: (r["status"], r["reason"], r["permanent"]) for r in await conn.fetch(
                "SELECT id, status, reason, permanent FROM messages")}
            part_status = {r["provider_message_id"]: (r["status"], r["receipt"])
                           for r in await conn.fetch(
                               "SELECT provider_message_id, status, receipt FROM message_parts")}
            events = [(r["type"], r["message_key"]) for r in await conn.fetch(
                "SELECT type, message_key FROM outbox ORDER BY id")]
            unapplied = await conn.fetchval(
                "SELECT count(*) FROM receipts WHERE applied_at IS NULL")
        assert status[ids["single"]] == ("delivered", None, None)
        assert status[ids["double"]] == ("delivered", None, None)
        assert status[ids["failed"]] == ("failed", "receipt UNDELIV", True)
        assert status[ids["ended"]] == ("delivered", None, None)
        assert part_status["s1"] == ("delivered", "DELIVRD")  # the last receipt of the part
        assert part_status["f1"] == ("failed", "UNDELIV")
        assert part_status["f2"] == ("delivered", "DELIVRD")
        # in receipt order: f1 ends "failed" first, s1 then d2 end their messages
        assert events == [("SmsFailed", str(ids["failed"])), ("SmsDelivered", str(ids["single"])),
                          ("SmsDelivered", str(ids["double"]))]
        assert unapplied == 0
    finally:
        await pool.close()
