"""Round trips and time of notifications' SMS paths, per operation.

Three paths, each run on its own throw-away schema (platform and notifications
migrations applied) against the local PostgreSQL:

- **trigger**: a ``RepaymentApplied`` event consumed by the trigger handler (the loan →
  client table, the recipient, the template, the rendered message queued), in its own
  unit of work as the inbox gives it (the inbox row itself is the inbox's and not
  counted here);
- **send**: the sending worker's claim of a batch of due messages and, for each, the
  consent re-check and the mark-submitted transaction (with its ``SmsSubmitted``),
  against a provider that accepts at once (no network);
- **receipts**: a batch of stored delivery receipts applied (parts, messages ended,
  ``SmsDelivered``).

Printed per path: statements sent to the server per operation (counted with asyncpg's
query logger in a pass of its own, after a pass that prepares them on every connection —
deterministic; BEGIN and COMMIT count), then µs of
wall time and of this process's CPU (``time.process_time()``) per operation, over
``--ops`` operations (the median of ``--rounds`` rounds).

``uv run python -m bench.notifications_paths --ops 400 --rounds 5``
(``NORIA_DATABASE_URL``, default the local infrastructure's admin URL)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import asyncpg

from services.notifications.bootstrap import MIGRATIONS
from services.notifications.domain.encoding import EncodedText
from services.notifications.domain.messages import Receipt
from services.notifications.handlers.policies import Policies
from services.notifications.handlers.triggers import trigger_handler
from services.notifications.jobs import Sender
from services.notifications.repository import receipts as receipts_repo
from services.notifications.settings import NotificationsSettings
from shared.contracts.loans import RepaymentApplied
from shared.db import create_pool
from shared.envelope import envelope_for
from shared.migrations import migrate
from shared.uow import UnitOfWork

DEFAULT_URL = "postgresql://noria_admin:noria_admin@127.0.0.1:55432/noria"


class Counter:
    def __init__(self) -> None:
        self.on = False
        self.n = 0
        self.show = bool(os.environ.get("BENCH_SHOW_STATEMENTS"))

    def __call__(self, record: Any) -> None:
        # asyncpg's one-time reading of a type on a connection is not the path's
        if self.on and "typeinfo_tree" not in record.query and "'jit'" not in record.query:
            self.n += 1
            if self.show:
                print("   ", " ".join(record.query.split())[:110])


class Accepting:
    """A provider that takes every submission at once (one id per part)."""

    name = "bench"
    timeout_s = 5.0

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def submit(self, phone: str, message: EncodedText, reference: str) -> list[str]:
        return [f"{reference}-{i}" for i in range(1, max(len(message.parts), 1) + 1)]

    async def poll(self, provider_ids: list[str]) -> list[Receipt]:
        return []


def repayment(client_id: str, loan_id: str) -> RepaymentApplied:
    return RepaymentApplied(
        loan_id=loan_id, client_id=client_id, payment_id=str(uuid.uuid4()),
        amount=Decimal("500.00"), allocation=[], principal_paid=Decimal("400.00"),
        interest_paid=Decimal("100.00"), fees_paid=Decimal("0"), penalties_paid=Decimal("0"),
        outstanding_principal=Decimal("4100.00"), outstanding_total=Decimal("4650.00"),
        next_due_date=dt.date(2027, 5, 12), next_due_amount=Decimal("468.20"),
        closes_loan=False)


class Bench:
    def __init__(self, pool: asyncpg.Pool, counter: Counter, clients: list[str]) -> None:
        self.pool = pool
        self.counter = counter
        self.clients = clients
        # noon in Casablanca: no quiet hours
        noon = dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
        self.policies = Policies(clock=lambda: noon + dt.timedelta(
            seconds=time.monotonic() % 3600))
        self.handler = trigger_handler(self.policies)
        settings = NotificationsSettings(database_url=DEFAULT_URL,
                                         claim_lease_s=30.0)
        self.sender = Sender(pool, self.policies, settings)
        self.sender.providers = [Accepting()]
        # as in Sender.run(): receipts are applied by the batching task, not per send
        self.sender._apply_wanted = asyncio.Event()
        self.i = 0

    async def trigger(self) -> None:
        self.i += 1
        client = self.clients[self.i % len(self.clients)]
        event = repayment(client, f"ln-{client}")
        env = envelope_for(event, aggregate_id=event.loan_id)
        async with UnitOfWork(self.pool) as uow:
            await self.handler(uow, event, env)
            await uow.commit()

    async def send_batch(self) -> int:
        return await self.sender.send_due()

    async def store_receipts(self) -> int:
        async with self.pool.acquire() as conn:
            ids = [r["provider_message_id"] for r in await conn.fetch(
                "SELECT provider_message_id FROM message_parts p"
                " WHERE p.status = 'submitted' AND NOT EXISTS (SELECT 1 FROM receipts r"
                "  WHERE r.provider_message_id = p.provider_message_id)")]
            if ids:
                await receipts_repo.store_receipts(
                    conn, [("bench", pid, "DELIVRD", "000") for pid in ids])
        return len(ids)

    async def apply_batch(self) -> int:
        return await self.sender.apply_receipts()


async def drained(step: Callable[[], Awaitable[int]]) -> tuple[float, float, int]:
    """Run ``step`` until it finds nothing: (wall s, CPU s, items) over the runs."""
    w = c = 0.0
    n = 0
    while True:
        w0, c0 = time.perf_counter(), time.process_time()
        k = await step()
        w, c = w + time.perf_counter() - w0, c + time.process_time() - c0
        if not k:
            return w, c, n
        n += k


async def timed(what: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    await what()
    return time.perf_counter() - w0, time.process_time() - c0


async def run(url: str, ops: int, rounds: int) -> None:
    schema = f"bench_notif_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        await migrate(url, schema, MIGRATIONS)
        pool = await create_pool(url, schema=schema, min_size=4, max_size=4)
        counter = Counter()
        held = [await pool.acquire() for _ in range(4)]
        for held_conn in held:
            held_conn.add_query_logger(counter)
        for held_conn in held:
            await pool.release(held_conn)
        clients = [f"cl-{i:05d}" for i in range(200)]
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO recipients (client_id, partner_id, phone, language, consent)"
                " SELECT c, 'pa-bench', '+2126' || lpad(n::text, 8, '0'),"
                " CASE WHEN n % 3 = 0 THEN 'ar' ELSE 'fr' END, true"
                " FROM unnest($1::text[]) WITH ORDINALITY AS u(c, n)", clients)
        bench = Bench(pool, counter, clients)

        async def count_pass() -> str:
            counter.n, counter.on = 0, True
            for _ in range(20):
                await bench.trigger()
            counter.on = False
            trigger_rt = counter.n / 20
            counter.n, counter.on = 0, True
            sent = await bench.send_batch()
            counter.on = False
            send_rt = counter.n
            stored = await bench.store_receipts()
            counter.n, counter.on = 0, True
            applied = await bench.apply_batch()
            counter.on = False
            return (f"round trips: trigger {trigger_rt:.1f} per event;"
                    f" send {send_rt / max(sent, 1):.2f} per SMS ({send_rt} for a batch of"
                    f" {sent}); receipts {counter.n} for a batch of {applied} ({stored} stored)")

        # a first pass prepares the statements and reads the types on every connection;
        # the second is the one counted (statements only, deterministic)
        show, counter.show = counter.show, False
        await count_pass()
        counter.show = show
        print(await count_pass())
        while await bench.send_batch():
            pass
        await bench.store_receipts()
        while await bench.apply_batch():
            pass

        # -- time --
        walls: dict[str, list[float]] = {"trigger": [], "send": [], "receipts": []}
        cpus: dict[str, list[float]] = {"trigger": [], "send": [], "receipts": []}
        for _ in range(rounds):
            w = c = 0.0
            for _ in range(ops):
                dw, dc = await timed(bench.trigger)
                w, c = w + dw, c + dc
            walls["trigger"].append(w / ops * 1e6)
            cpus["trigger"].append(c / ops * 1e6)
            w, c, n = await drained(bench.send_batch)
            walls["send"].append(w / max(n, 1) * 1e6)
            cpus["send"].append(c / max(n, 1) * 1e6)
            await bench.store_receipts()
            w, c, n = await drained(bench.apply_batch)
            walls["receipts"].append(w / max(n, 1) * 1e6)
            cpus["receipts"].append(c / max(n, 1) * 1e6)
        for path in ("trigger", "send", "receipts"):
            unit = {"trigger": "event", "send": "SMS", "receipts": "receipt"}[path]
            print(f"{path:9s} median of {rounds} rounds of {ops}:"
                  f" {statistics.median(walls[path]):8.0f} µs wall,"
                  f" {statistics.median(cpus[path]):8.0f} µs CPU per {unit}")
        await pool.close()
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(os.environ.get("NORIA_DATABASE_URL", DEFAULT_URL), args.ops, args.rounds))


if __name__ == "__main__":
    main()
