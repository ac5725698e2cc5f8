"""Past the knee, payments refuses callbacks (503 + Retry-After) and the provider retries.

A service that handles one callback at a time, and a simulator whose status
query answers slowly: a second callback arriving while the first waits on the
provider is refused at once, and the simulator's retry lands it, once. A callback
that finds no database connection free in time is refused the same way.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from services.payments import state
from services.payments.bootstrap import build_spec
from services.payments.settings import DEV_CALLBACK_SECRET, PaymentsSettings, ProviderConfig
from shared.app import create_app
from shared.contracts import loans, payments
from shared.kafka import ensure_topics
from simulators.mobile_money.app import create_app as create_sim
from simulators.mobile_money.state import World
from tests.infra import Infra, delete_topics
from tests.integration.payments.conftest import (
    MIGRATIONS,
    PARTITIONS,
    Events,
    free_port,
    new_id,
    new_msisdn,
    serve,
)
from tests.integration.payments.facts import published_all
from tests.kafka_facts import until

pytestmark = pytest.mark.integration

# The first callback holds payments' only admission slot for this long (its status query
# waits at the provider); the second must reach payments within it, and the provider
# retries the refused callback for longer than it (CALLBACK_ATTEMPTS, Retry-After 1 s).
# Only the status query is slow: the two wallets' own payments are answered at once
# (a latency on every call also delayed the second payment by as long as the first
# callback was held, and the second callback arrived just as the slot was freed).
SLOW_STATUS_QUERY_S = 8.0
CALLBACK_ATTEMPTS = 20


@dataclass
class Narrow:
    sim: httpx.AsyncClient
    events: Events
    pool: asyncpg.Pool
    app: Any


@pytest.fixture(scope="module")
async def narrow(infra: Infra, isolated_schema: Callable[..., Any]) -> AsyncIterator[Narrow]:
    iso = await isolated_schema("payments_a", MIGRATIONS)
    prefix = f"a{uuid.uuid4().hex[:8]}."
    sim_port, api_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    world = World(provider="sim", callback_secret=DEV_CALLBACK_SECRET,
                  collection_callback_url=f"{api_url}/v1/mobile-money/sim/callbacks")
    settings = PaymentsSettings(
        database_url=iso.dsn, db_schema=iso.schema, kafka_bootstrap=infra.kafka_bootstrap,
        providers={"sim": ProviderConfig(base_url=f"http://127.0.0.1:{sim_port}",
                                         request_timeout_s=SLOW_STATUS_QUERY_S * 3)},
        callback_base_url=api_url, topic_prefix=prefix,
        callback_max_in_flight=1, callback_retry_after_s=1, db_acquire_timeout_s=1.0)
    await ensure_topics(infra.kafka_bootstrap, [settings.topic(t) for t in (
        payments.COMMANDS, payments.EVENTS, payments.POSTINGS, loans.EVENTS)],
        partitions=PARTITIONS)
    events = Events.of_service(infra.kafka_bootstrap, settings)
    await events.start()
    pool = await asyncpg.create_pool(iso.dsn, server_settings={"search_path": iso.schema})
    assert pool is not None
    app = create_app(build_spec(settings))
    try:
        async with serve(create_sim(world), sim_port), serve(app, api_port), \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim_port}", timeout=60) as sim:
            yield Narrow(sim, events, pool, app)
    finally:
        await pool.close()
        await events.stop()
        await delete_topics(infra.kafka_bootstrap, prefix)


async def collect(n: Narrow, msisdn: str, loan: str) -> dict[str, Any]:
    resp = await n.sim.post("/sim/cash-in", json={"msisdn": msisdn, "amount": "100.00"})
    assert resp.status_code == 201, resp.text
    resp = await n.sim.post("/sim/collections",
                            json={"msisdn": msisdn, "amount": "10.00", "reference": loan})
    assert resp.status_code == 201, resp.text
    return resp.json()


async def test_a_refused_callback_is_retried_by_the_provider_and_credited_once(
        narrow: Narrow) -> None:
    resp = await narrow.sim.post("/sim/config", json={"latency_s": SLOW_STATUS_QUERY_S,
                                                      "callback_attempts": CALLBACK_ATTEMPTS})
    assert resp.status_code == 200, resp.text
    try:
        first_loan, second_loan = new_id("loan"), new_id("loan")
        first_wallet, second_wallet = new_msisdn(), new_msisdn()
        for wallet in (first_wallet, second_wallet):  # their payments answered at once
            resp = await narrow.sim.post("/sim/config", json={"msisdn": wallet,
                                                              "latency_s": 0})
            assert resp.status_code == 200, resp.text
        first = asyncio.create_task(collect(narrow, first_wallet, first_loan))

        async def first_in_flight() -> bool:
            return state.callbacks_in_flight(narrow.app.state.runtime.state).count > 0
        # the second callback comes while the first waits on the provider's status query
        await until(first_in_flight, "the first callback is being handled")
        second = await collect(narrow, second_wallet, second_loan)
        await first
    finally:
        await narrow.sim.post("/sim/config", json={"reset": True})
    [refused] = second["callbacks"]
    assert refused["status"] == 503
    problem = orjson.loads(refused["response"])
    assert problem["status"] == 503 and problem["type"].endswith("/overloaded")
    ref = second["transactionReference"]
    received = await narrow.events.wait("RepaymentReceived", external_ref=ref, timeout_s=60)
    deliveries = (await narrow.sim.get("/sim/callbacks", params={"reference": ref})).json()
    assert deliveries[0]["status"] == 503 and deliveries[0]["retry_after"] == "1"
    assert deliveries[-1]["status"] == 200 and deliveries[-1]["attempt"] > 1
    assert orjson.loads(deliveries[-1]["response"])["status"] == "accepted"
    # every attempt is the same callback (one webhook-id), and it was credited once
    assert {d["headers"]["webhook-id"] for d in deliveries} == {refused["webhook_id"]}
    await published_all(narrow.pool, narrow.events)  # every delivery was answered
    assert len(narrow.events.of("RepaymentReceived", external_ref=ref)) == 1
    async with narrow.pool.acquire() as conn:
        rows = await conn.fetch("SELECT id, loan_id FROM payments WHERE provider_reference = $1",
                                ref)
    assert [(str(r["id"]), r["loan_id"]) for r in rows] == [(received["payment_id"],
                                                              second_loan)]
    assert narrow.events.of("RepaymentReceived", loan_id=first_loan)  # the first one too


async def test_a_callback_that_finds_no_database_connection_is_refused_and_retried(
        narrow: Narrow) -> None:
    """Every connection of payments' HTTP pool is taken: the callback waits its second,
    is answered 503 overloaded with a Retry-After (not a 500, nor the generic 'database
    unavailable'), and the provider's retry, once the connections are back, is credited
    once."""
    resp = await narrow.sim.post("/sim/config", json={"callback_attempts": CALLBACK_ATTEMPTS})
    assert resp.status_code == 200, resp.text
    pool = narrow.app.state.runtime.http_pool
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        loan = new_id("loan")
        second = await collect(narrow, new_msisdn(), loan)
    finally:
        for conn in held:
            await pool.release(conn)
        await narrow.sim.post("/sim/config", json={"reset": True})
    [refused] = second["callbacks"]
    assert refused["status"] == 503
    problem = orjson.loads(refused["response"])
    assert problem["type"].endswith("/overloaded"), problem
    ref = second["transactionReference"]
    await narrow.events.wait("RepaymentReceived", external_ref=ref, timeout_s=60)
    deliveries = (await narrow.sim.get("/sim/callbacks", params={"reference": ref})).json()
    assert deliveries[0]["status"] == 503 and int(deliveries[0]["retry_after"]) >= 1
    assert deliveries[-1]["status"] == 200
    assert orjson.loads(deliveries[-1]["response"])["status"] == "accepted"
    await published_all(narrow.pool, narrow.events)
    assert len(narrow.events.of("RepaymentReceived", external_ref=ref)) == 1
