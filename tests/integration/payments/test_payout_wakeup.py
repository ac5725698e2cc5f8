"""A recorded payout wakes the payout worker: it is paid without waiting for a poll.

The service here polls once an hour, so a payout recorded after its start-up can
only reach the provider through the wake-up (``NOTIFY`` on commit, ``LISTEN``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from services.payments.bootstrap import build_spec
from services.payments.repository import payouts as payouts_repo
from services.payments.settings import PaymentsSettings, ProviderConfig
from shared.app import create_app
from shared.contracts import loans, payments
from shared.envelope import envelope_for
from shared.kafka import ensure_topics, make_producer
from tests.infra import Infra, delete_topics
from tests.integration.payments.conftest import (
    MIGRATIONS,
    PARTITIONS,
    Events,
    Rig,
    disburse,
    free_port,
    new_id,
    new_msisdn,
    serve,
)

pytestmark = pytest.mark.integration

AN_HOUR = 3600.0


@dataclass
class Sleepy:
    """A payments service whose payout worker polls once an hour."""

    api: httpx.AsyncClient
    events: Events
    settings: PaymentsSettings
    schema: str
    dsn: str


@pytest.fixture(scope="module")
async def sleepy(rig: Rig, infra: Infra, isolated_schema: Callable[..., Any]
                 ) -> AsyncIterator[Sleepy]:
    iso = await isolated_schema("payments_w", MIGRATIONS)
    prefix = f"w{uuid.uuid4().hex[:8]}."
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = PaymentsSettings(
        database_url=iso.dsn, db_schema=iso.schema, kafka_bootstrap=infra.kafka_bootstrap,
        # the rig's simulator; its callbacks come here (X-Callback-URL)
        providers={"sim": ProviderConfig(
            base_url=rig.settings.providers["sim"].base_url, request_timeout_s=1.0,
            poll_after_s=AN_HOUR)},
        callback_base_url=url, topic_prefix=prefix,
        payout_poll_interval_s=AN_HOUR, consumer_retry_backoff_s=0.05)
    await ensure_topics(infra.kafka_bootstrap, [settings.topic(t) for t in (
        payments.COMMANDS, payments.EVENTS, payments.POSTINGS, loans.EVENTS)],
        partitions=PARTITIONS)
    events = Events.of_service(infra.kafka_bootstrap, settings)
    await events.start()
    try:
        async with serve(create_app(build_spec(settings)), port), \
                httpx.AsyncClient(base_url=url, timeout=30) as api:
            for _ in range(100):  # the worker has run its start-up round: the books are open
                resp = await api.get("/v1/ledger/trial-balance", headers=rig.auth())
                if resp.status_code == 200 and resp.json()["total_debits"] != "0.00":
                    break
                await asyncio.sleep(0.1)
            yield Sleepy(api, events, settings, iso.schema, iso.dsn)
    finally:
        await events.stop()
        await delete_topics(infra.kafka_bootstrap, prefix)


async def test_a_recorded_payout_is_paid_without_waiting_for_the_poll(
        rig: Rig, sleepy: Sleepy) -> None:
    producer = make_producer(rig.settings.kafka_bootstrap, client_id="payments-wakeup-test")
    await producer.start()
    try:
        for _ in range(3):  # every one, not only the first after start-up
            msisdn, loan = new_msisdn(), new_id("loan")
            cmd = disburse(loan, msisdn, "700.00")
            env = envelope_for(cmd, aggregate_id=loan)
            await producer.send_and_wait(
                sleepy.settings.topic(payments.COMMANDS), env.to_bytes(), key=loan.encode(),
                headers=[("type", b"DisburseLoan")])
            # With a one-hour poll, only the wake-up can have sent this payout.
            done = await sleepy.events.wait("DisbursementCompleted", saga_id=cmd.saga_id,
                                            timeout_s=30)
            assert done["amount"] == "700.00" and done["msisdn"] == msisdn
            assert (await rig.wallet(msisdn))["payouts"] == "700.00"
            view = (await sleepy.api.get(f"/v1/payments/{cmd.saga_id}",
                                         headers=rig.auth())).json()
            assert view["status"] == "completed" and view["resolved_by"] == "callback"
    finally:
        await producer.stop()


async def test_the_wakeup_is_sent_only_when_a_new_payout_is_committed(
        isolated_schema: Callable[..., Any]) -> None:
    iso = await isolated_schema("payments_n", MIGRATIONS)  # no service: nothing claims them
    channel = payouts_repo.payouts_channel(iso.schema)
    heard: list[str] = []
    listener = await asyncpg.connect(iso.dsn, server_settings={"search_path": iso.schema})
    writer = await asyncpg.connect(iso.dsn, server_settings={"search_path": iso.schema})
    try:
        await listener.add_listener(channel, lambda *args: heard.append(args[2]))

        async def record(saga_id: str) -> bool:
            return await payouts_repo.insert_payout(
                writer, kind="disbursement", saga_id=saga_id, request_hash="h",
                loan_id=new_id("loan"), client_id="c", partner_id="p", payment_id=None,
                msisdn=new_msisdn(), amount=Decimal("1.00"), currency="MAD", provider="sim",
                deadline=dt.datetime.now(dt.UTC), journal_transfer_id="t")

        tx = writer.transaction()
        await tx.start()
        assert await record(f"rolled-back-{uuid.uuid4()}") is True
        await tx.rollback()
        saga = f"committed-{uuid.uuid4()}"
        async with writer.transaction():
            assert await record(saga) is True
            assert await record(saga) is False  # already recorded: no second wake-up
        for _ in range(200):
            if heard:
                break
            await asyncio.sleep(0.05)
        await listener.execute("SELECT 1")  # anything sent before this has been delivered
        # exactly one: the committed payout's; none for the rolled-back one or the repeat
        assert heard == [channel]
    finally:
        await listener.close()
        await writer.close()
