"""Seeing each saga end, from the outside.

Two plain observers, neither in any consumer group:

- a Kafka reader on ``payments.events`` and ``loans.events`` (no group: every
  partition, starting at the end): ``RepaymentReceived`` links the provider's
  transaction reference to Noria's payment id, ``RepaymentApplied`` links the
  payment id to the event that triggers the SMS, and ``RepaymentPosted`` carries
  the moment the ledger posting was published (the record's timestamp);
- a reader of ``notifications.messages`` (admin connection, read-only): the
  moment each SMS was accepted by the SMSC (``submitted_at``), by triggering
  event id and loan id.

A repayment is complete when both its ledger posting and its SMS have happened
(they run in parallel after ``RepaymentApplied``); a disbursement when its
``loan_disbursed`` SMS was submitted.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer

SMS_QUERY = """
SELECT source_event_id::text AS event_id, loan_id, template,
       extract(epoch FROM submitted_at)::float8 AS at
  FROM notifications.messages
 WHERE created_at >= $1 AND submitted_at IS NOT NULL AND submitted_at >= $2
   AND template = ANY($3::text[])
"""
TEMPLATES = ["repayment_received", "loan_closed", "loan_disbursed"]


class Tracker:
    def __init__(self, bootstrap: str, admin_url: str) -> None:
        self.bootstrap = bootstrap
        self.admin_url = admin_url
        self.payment_of_ref: dict[str, str] = {}
        self.posted_at: dict[str, float] = {}
        self.applied_event_of_payment: dict[str, str] = {}
        self.sms_by_event: dict[str, float] = {}
        self.disbursed_sms_by_loan: dict[str, float] = {}
        self.events_seen = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._since = datetime.now().astimezone()

    async def start(self) -> None:
        consumer = AIOKafkaConsumer("payments.events", "loans.events",
                                    bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                    group_id=None, auto_offset_reset="latest")
        await consumer.start()
        self._consumer = consumer
        for _ in range(100):  # without a group every partition is assigned, shortly
            if consumer.assignment():
                break
            await asyncio.sleep(0.1)
        await consumer.seek_to_end(*consumer.assignment())
        self._since = datetime.now().astimezone()
        self._tasks = [asyncio.create_task(self._read_kafka()),
                       asyncio.create_task(self._read_sms())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _read_kafka(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batches.values():
                for record in records:
                    self.events_seen += 1
                    self._on_record(record.value, record.timestamp / 1000.0)

    def _on_record(self, raw: bytes | None, at: float) -> None:
        if raw is None:
            return
        try:
            env: dict[str, Any] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        kind = env.get("type")
        payload = env.get("payload") or {}
        if kind == "RepaymentReceived":
            self.payment_of_ref[str(payload.get("external_ref"))] = str(payload["payment_id"])
        elif kind == "RepaymentPosted":
            self.posted_at.setdefault(str(payload["payment_id"]), at)
        elif kind == "RepaymentApplied":
            self.applied_event_of_payment[str(payload["payment_id"])] = str(env["event_id"])

    async def _read_sms(self) -> None:
        conn = await asyncpg.connect(self.admin_url)
        watermark = 0.0
        try:
            while True:
                since = datetime.fromtimestamp(max(watermark - 30.0, 0.0)).astimezone()
                rows = await conn.fetch(SMS_QUERY, self._since, since, TEMPLATES)
                for row in rows:
                    at = float(row["at"])
                    watermark = max(watermark, at)
                    if row["template"] == "loan_disbursed":
                        self.disbursed_sms_by_loan.setdefault(str(row["loan_id"]), at)
                    else:
                        self.sms_by_event.setdefault(str(row["event_id"]), at)
                await asyncio.sleep(0.5)
        finally:
            await conn.close()

    # -- completion of one saga ---------------------------------------------------------
    def repayment_done_at(self, provider_ref: str) -> float | None:
        payment_id = self.payment_of_ref.get(provider_ref)
        if payment_id is None:
            return None
        posted = self.posted_at.get(payment_id)
        event_id = self.applied_event_of_payment.get(payment_id)
        sms = self.sms_by_event.get(event_id) if event_id else None
        if posted is None or sms is None:
            return None
        return max(posted, sms)

    def disbursement_done_at(self, loan_id: str) -> float | None:
        return self.disbursed_sms_by_loan.get(loan_id)
