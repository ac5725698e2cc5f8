"""Payments with a schema, topic prefix and consumer groups of its own, for the tests of
money that does not come from a wallet (branch cash collections, standing instructions)
and of savings' money (test_savings_flows). Loans and savings are not running: a test
plays them, publishing their events on the (prefixed) topics and reading payments'
replies."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from services.payments.bootstrap import build_spec
from services.payments.settings import DEV_CALLBACK_SECRET, PaymentsSettings, ProviderConfig
from shared.app import Runtime, create_app
from shared.clock import business_date
from shared.contracts import clients, loans, payments, savings
from shared.inbox import InboxConsumer
from shared.kafka import ensure_topics, make_producer
from simulators.mobile_money.app import create_app as create_sim
from simulators.mobile_money.state import World
from tests.infra import Infra, delete_topics
from tests.integration.payments.conftest import PARTITIONS, Events, Rig, ShiftedClock
from tests.kafka_facts import TopicReader, consumed_all, until
from tests.rigs import free_port, serve

MIGRATIONS = Path(__file__).resolve().parents[3] / "services/payments/migrations"


class BranchRig:
    def __init__(self, rig: Rig, app: Any, replies: TopicReader, bootstrap: str) -> None:
        self.rig = rig
        self.app = app
        self.replies = replies
        self.bootstrap = bootstrap

    def consumer(self, group: str) -> InboxConsumer:
        runtime: Runtime = self.app.state.runtime
        return runtime.consumers[self.rig.settings.topic(group)]

    async def consumed(self, group: str) -> None:
        """Every record the group's topics hold now has taken effect (duplicates too)."""
        consumer = self.consumer(group)
        await consumed_all(consumer, self.bootstrap, consumer.topics)

    def replies_of(self, type_: str, **match: Any) -> list[dict[str, Any]]:
        return [r.payload for r in self.replies.matching(type_, **match)]

    async def reply(self, type_: str, count: int = 1, **match: Any) -> dict[str, Any]:
        found = await self.replies.wait_for(type_, count=count, **match)
        return found[count - 1].payload

    async def balance(self, account_id: str) -> Decimal:
        async with self.rig.pool.acquire() as conn:
            value = await conn.fetchval(
                "SELECT CASE normal_side WHEN 'debit' THEN debits - credits"
                " ELSE credits - debits END FROM accounts WHERE id = $1", account_id)
        return Decimal("0.00") if value is None else Decimal(value)

    async def sides(self, transfer_id: str) -> set[tuple[str, str, Decimal]]:
        return {(r["account_id"], r["side"], r["amount"])
                for r in await self.rig.lines(transfer_id)
                if r["transfer_id"] == transfer_id}

    async def statement(self, name: str, **params: str) -> dict[str, Any]:
        resp = await self.rig.api.get(f"/v1/statements/{name}", params=params,
                                      headers=self.rig.auth())
        assert resp.status_code == 200, resp.text
        return dict(resp.json())


def today() -> dt.date:
    return business_date(dt.datetime.now(dt.UTC))


@contextlib.asynccontextmanager
async def branch_rig(infra: Infra, isolated_schema: Callable[..., Any], name: str
                     ) -> AsyncIterator[BranchRig]:
    iso = await isolated_schema(name, MIGRATIONS)
    prefix = f"t{uuid.uuid4().hex[:8]}."
    sim_port, api_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    world = World(provider="sim", callback_secret=DEV_CALLBACK_SECRET,
                  collection_callback_url=f"{api_url}/v1/mobile-money/sim/callbacks")
    settings = PaymentsSettings(
        database_url=iso.dsn, db_schema=iso.schema, kafka_bootstrap=infra.kafka_bootstrap,
        providers={"sim": ProviderConfig(base_url=f"http://127.0.0.1:{sim_port}",
                                         request_timeout_s=1.0, poll_after_s=1.0)},
        callback_base_url=api_url, topic_prefix=prefix,
        payout_poll_interval_s=0.1, payout_expiry_grace_s=1.0,
        in_doubt_poll_s=0.3, in_doubt_poll_max_s=1.0, consumer_retry_backoff_s=0.05)
    clock = ShiftedClock()
    await ensure_topics(infra.kafka_bootstrap, [settings.topic(t) for t in (
        payments.COMMANDS, payments.EVENTS, payments.POSTINGS, loans.EVENTS, savings.EVENTS,
        clients.EVENTS)],
        partitions=PARTITIONS)
    events = Events.of_service(infra.kafka_bootstrap, settings)
    await events.start()
    replies = TopicReader(infra.kafka_bootstrap, list(events.topics),
                          strip_prefix=prefix)
    await replies.start()
    producer = make_producer(infra.kafka_bootstrap, client_id=f"payments-{name}-test")
    await producer.start()
    pool = await asyncpg.create_pool(iso.dsn, server_settings={"search_path": iso.schema})
    assert pool is not None
    app = create_app(build_spec(settings, clock))
    try:
        async with serve(create_sim(world), sim_port), serve(app, api_port), \
                httpx.AsyncClient(base_url=api_url, timeout=30) as api, \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim_port}", timeout=30) as sim:
            rig = Rig(api, sim, world, events, pool, settings, producer, api_url, sim, clock)

            async def books_open() -> bool:
                return bool((await rig.trial_balance())["total_debits"] != "0.00")
            await until(books_open, "the opening float is posted")
            yield BranchRig(rig, app, replies, infra.kafka_bootstrap)
    finally:
        await producer.stop()
        await replies.stop()
        await events.stop()
        await pool.close()
        await delete_topics(infra.kafka_bootstrap, prefix)
