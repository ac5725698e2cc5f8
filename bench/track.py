"""Seeing each saga end, from the outside.

Two plain observers, neither in any consumer group:

- a Kafka reader on ``payments.events``, ``payments.postings`` and ``loans.events`` (no
  group: every partition, starting at the end): ``RepaymentReceived`` links the
  provider's transaction reference to Noria's payment id, ``RepaymentApplied`` links
  the payment id to the event that triggers the SMS, and ``RepaymentPosted`` carries
  the moment the ledger posting was published (the record's timestamp);
- the same reader on ``notifications.deliveries``: each ``SmsSubmitted`` of a saga's
  template names a message, and that message's row in ``notifications.messages``
  is read once, by primary key (admin connection, read-only), for the moment the
  SMSC accepted it (``submitted_at``), its triggering event id and its loan id.
  No window of rows is re-read: the tracker's own cost stays proportional to
  the sagas, and it is counted with the load generator's.

A repayment is complete when both its ledger posting and its SMS have happened
(they run in parallel after ``RepaymentApplied``); a disbursement when its
``loan_disbursed`` SMS was submitted.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer

SMS_QUERY = """
SELECT id::text AS id, source_event_id::text AS event_id, loan_id, template,
       extract(epoch FROM submitted_at)::float8 AS at
  FROM notifications.messages
 WHERE id = ANY($1::uuid[]) AND submitted_at IS NOT NULL
"""
TEMPLATES = ["repayment_received", "loan_closed", "loan_disbursed"]
TOPICS = ("payments.events", "payments.postings", "loans.events", "notifications.deliveries")


class Tracker:
    def __init__(self, bootstrap: str, admin_url: str, topic_prefix: str = "") -> None:
        self.bootstrap = bootstrap
        self.admin_url = admin_url
        self.topic_prefix = topic_prefix
        self.payment_of_ref: dict[str, str] = {}
        self.posted_at: dict[str, float] = {}
        self.applied_event_of_payment: dict[str, str] = {}
        self.sms_by_event: dict[str, float] = {}
        self.disbursed_sms_by_loan: dict[str, float] = {}
        self.events_seen = 0
        self._sms_pending: set[str] = set()
        self._sms_seen = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(*(f"{self.topic_prefix}{t}" for t in TOPICS),
                                    bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                    group_id=None, auto_offset_reset="latest")
        await consumer.start()
        self._consumer = consumer
        for _ in range(100):  # without a group every partition is assigned, shortly
            if consumer.assignment():
                break
            await asyncio.sleep(0.1)
        await consumer.seek_to_end(*consumer.assignment())
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
        if kind == "SmsSubmitted":
            if payload.get("template") in TEMPLATES:
                self._sms_pending.add(str(payload["message_id"]))
                self._sms_seen.set()
        elif kind == "RepaymentReceived":
            self.payment_of_ref[str(payload.get("external_ref"))] = str(payload["payment_id"])
        elif kind == "RepaymentPosted":
            self.posted_at.setdefault(str(payload["payment_id"]), at)
        elif kind == "RepaymentApplied":
            self.applied_event_of_payment[str(payload["payment_id"])] = str(env["event_id"])

    async def _read_sms(self) -> None:
        """Each submitted SMS's row, once: by id, as ``SmsSubmitted`` names them."""
        conn = await asyncpg.connect(self.admin_url)
        try:
            while True:
                await self._sms_seen.wait()
                await asyncio.sleep(0.2)  # gather a batch of ids
                self._sms_seen.clear()
                ids, self._sms_pending = list(self._sms_pending), set()
                found = set()
                for row in await conn.fetch(SMS_QUERY, ids):
                    found.add(row["id"])
                    at = float(row["at"])
                    if row["template"] == "loan_disbursed":
                        self.disbursed_sms_by_loan.setdefault(str(row["loan_id"]), at)
                    else:
                        self.sms_by_event.setdefault(str(row["event_id"]), at)
                # an event published but its row not visible yet cannot happen (the row
                # committed before the relay read it); kept for a retry all the same
                missing = set(ids) - found
                if missing:
                    self._sms_pending |= missing
                    self._sms_seen.set()
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
