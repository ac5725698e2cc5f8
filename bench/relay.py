"""``python -m bench.relay``: publishing right after commit against the claim relay.

N units of work, each emitting one event, arrive as a Poisson process at a given
rate; each round runs them once through the claim path (the INSERT's NOTIFY
wakes the relay, which lingers 5 ms, claims under its advisory lock, reads the
rows back, publishes, marks) and once through the hand-over (the unit of work
hands its committed rows to its process's relay, which checks, publishes and
marks them; no NOTIFY), the two orders alternating from round to round. Both
use the service defaults (batch 200, lease 30 s, poll 0.5 s, linger 5 ms, the
platform's producer).

Printed per round and mode: latency from the unit of work's end (committed,
its connection back in the pool) to the Kafka acknowledgement of the event
(p50, p99, max, ms), the process's CPU per event and the CPU per event of the
PostgreSQL backends the run uses (its pools and its LISTEN connection), both in
microseconds and including the units of work themselves
(the same work in both modes), the NOTIFYs received, and how many events the
hand-over published itself. A fresh schema (platform migrations only) and a
fresh topic are created and dropped; every run starts from an empty outbox.

    eval "$(scripts/infra/infra.sh env)"   # NORIA_ADMIN_DATABASE_URL, NORIA_KAFKA_BOOTSTRAP
    .venv/bin/python -m bench.relay --events 2000 --rate 200 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import asyncpg

from shared.db import create_pool
from shared.envelope import Contract, register
from shared.kafka import ensure_topics, make_producer
from shared.migrations import migrate
from shared.outbox import OutboxRelay
from shared.uow import UnitOfWork, attach_publisher, detach_publisher


@register
class RelayBenchEvent(Contract):
    """The benchmark's event; its topic is the run's own."""

    topic: ClassVar[str] = "unused"
    key: str
    seq: int


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


async def _server_pids(pool: asyncpg.Pool, size: int) -> list[int]:
    conns = [await pool.acquire() for _ in range(size)]
    try:
        return [c.get_server_pid() for c in conns]
    finally:
        for c in conns:
            await pool.release(c)


@dataclass
class Round:
    mode: str
    events: int
    latencies_ms: list[float] = field(default_factory=list)
    process_cpu_us: float = 0.0
    postgres_cpu_us: float = 0.0
    notifies: int = 0
    handed_over: int = 0
    wall_s: float = 0.0

    def row(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        q = statistics.quantiles(lat, n=100) if len(lat) > 1 else lat * 99
        return {"mode": self.mode, "events": self.events, "p50_ms": round(q[49], 1),
                "p99_ms": round(q[98], 1), "max_ms": round(lat[-1], 1),
                "process_cpu_us_per_event": round(self.process_cpu_us),
                "postgres_cpu_us_per_event": round(self.postgres_cpu_us),
                "notifies": self.notifies, "handed_over": self.handed_over,
                "wall_s": round(self.wall_s, 1)}


async def run_round(mode: str, dsn: str, bootstrap: str, schema: str, topic: str, *,
                    events: int, rate: float, writers: int, keys: int, seed: int) -> Round:
    handoff = mode == "hand-over"
    pool = await create_pool(dsn, schema=schema, min_size=writers, max_size=writers)
    relay_pool = await create_pool(dsn, schema=schema, min_size=2, max_size=2)
    listener = await asyncpg.connect(dsn)
    relay = OutboxRelay(relay_pool, lambda: make_producer(bootstrap, client_id="bench-relay"),
                        service="bench", schema=schema, linger_s=0.005)
    result = Round(mode, events)
    acked: dict[int, float] = {}

    async def on_ack(ids: list[int]) -> None:
        now = time.monotonic()
        for i in ids:
            acked.setdefault(i, now)

    def on_notify(*_: object) -> None:
        result.notifies += 1
        relay.wakeup.set()

    relay.after_publish = on_ack
    await listener.add_listener(f"{schema}_outbox", on_notify)
    if handoff:
        relay.start_handoff()
        attach_publisher(pool, relay)
    task = asyncio.create_task(relay.run())
    committed: dict[uuid.UUID, tuple[int, float]] = {}
    rng = random.Random(seed)
    slots = asyncio.Semaphore(writers)

    async def one(seq: int) -> None:
        key = f"k-{rng.randrange(keys)}"
        async with slots, UnitOfWork(pool) as uow:
            env = uow.emit(RelayBenchEvent(key=key, seq=seq), key=key, topic=topic)
            await uow.commit()
        committed[env.event_id] = (seq, time.monotonic())  # once its connection is back

    async def offer(first: int, n: int, per_s: float) -> None:
        pending = []
        for seq in range(first, first + n):
            pending.append(asyncio.create_task(one(seq)))
            await asyncio.sleep(rng.expovariate(per_s))
        await asyncio.gather(*pending)

    async def published(n: int, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(acked) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(acked)} of {n} events acknowledged")
            await asyncio.sleep(0.01)

    try:
        async with pool.acquire() as conn:  # each run starts from an empty outbox
            await conn.execute("TRUNCATE outbox")
        warm = 50  # producer started, connections and plans warm
        await offer(0, warm, rate)
        await published(warm)
        await relay.flush_marks()
        pids = (await _server_pids(pool, writers) + await _server_pids(relay_pool, 2)
                + [listener.get_server_pid()])
        result.notifies = 0
        pg_before = sum(_cpu_s(p) for p in pids)
        cpu_before, wall_before = time.process_time(), time.monotonic()
        await offer(warm, events, rate)
        await published(warm + events)
        result.wall_s = time.monotonic() - wall_before
        result.process_cpu_us = (time.process_time() - cpu_before) * 1e6 / events
        result.postgres_cpu_us = (sum(_cpu_s(p) for p in pids) - pg_before) * 1e6 / events
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT id, event_id, claim_token FROM outbox"
                                    " WHERE event_id = ANY($1::uuid[])", list(committed))
        for r in rows:
            seq, at = committed[r["event_id"]]
            if seq < warm:
                continue
            result.latencies_ms.append((acked[r["id"]] - at) * 1000.0)
            result.handed_over += r["claim_token"] == relay.handoff_token
    finally:
        detach_publisher(pool, relay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await relay.stop()
        await listener.close()
        await pool.close()
        await relay_pool.close()
    return result


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="units of work per run")
    parser.add_argument("--rate", type=float, default=200.0, help="offered per second")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--writers", type=int, default=8, help="connections of the writers")
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--modes", nargs="+", default=["claim", "hand-over"],
                        choices=["claim", "hand-over"], help="alternated from round to round")
    parser.add_argument("--json", type=Path, help="also write the rounds here")
    args = parser.parse_args(argv)
    dsn = os.environ.get("NORIA_ADMIN_DATABASE_URL") or os.environ["NORIA_DATABASE_URL"]
    bootstrap = os.environ["NORIA_KAFKA_BOOTSTRAP"]
    run = uuid.uuid4().hex[:10]
    schema, topic = f"bench_relay_{run}", f"bench.relay.{run}.events"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        await migrate(dsn, schema, None)
        await ensure_topics(bootstrap, [topic], partitions=4)
        rounds: list[dict[str, Any]] = []
        modes = list(args.modes)
        for n in range(args.rounds):
            for mode in (modes if n % 2 == 0 else modes[::-1]):
                r = await run_round(mode, dsn, bootstrap, schema, topic, events=args.events,
                                    rate=args.rate, writers=args.writers, keys=args.keys,
                                    seed=n)
                row = {"round": n + 1, **r.row()}
                rounds.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
        _print_table(rounds, args)
        if args.json:
            args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)},
                                             "rounds": rounds}, indent=2))
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
        with contextlib.suppress(Exception):
            from aiokafka.admin import AIOKafkaAdminClient

            client = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
            await client.start()
            try:
                await client.delete_topics([topic])
            finally:
                await client.close()


def _print_table(rounds: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\n{args.events} units of work per run, one event each, Poisson at {args.rate:g}/s,"
          f" {args.writers} writer connections, {args.keys} keys\n")
    print("| round | mode | p50 ms | p99 ms | max ms | process CPU µs/event"
          " | PostgreSQL CPU µs/event | NOTIFYs | handed over |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rounds:
        print(f"| {r['round']} | {r['mode']} | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']}"
              f" | {r['process_cpu_us_per_event']} | {r['postgres_cpu_us_per_event']}"
              f" | {r['notifies']} | {r['handed_over']} |")


if __name__ == "__main__":
    asyncio.run(main())
