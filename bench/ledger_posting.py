"""What one ledger posting costs the database: a repayment saga's two postings (the
collection, Dr settlement / Cr suspense, and its allocation, Dr suspense / Cr portfolio
and income), each in a transaction of its own as the platform commits them.

The platform's sagas spend a good part of their database CPU in the ledger
(``pg_stat_statements`` during a 50 repayments/s step: the entry-and-lines statement
with its triggers, and the shared accounts' moves at commit). This measures that part
alone, on schemas of its own (payments' migrations applied, dropped afterwards): CPU
of the server backend per transaction (``/proc`` of the backend: PostgreSQL must run
on this machine; 10 ms ticks, so read over many transactions), this process's CPU,
wall time, and statements sent.

``--compare FILE`` measures a change to the ledger's SQL against the migrations as
they are, in the same run: a second schema gets FILE applied after the migrations,
and the two take turns, round by round (the order swapped every round), so that a
machine busy with other work weighs on both alike.

``uv run python -m bench.ledger_posting --loans 3000 [--compare change.sql]``
(``NORIA_DATABASE_URL``, default the local infrastructure's admin URL)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from bench.cpu import process_cpu_s
from bench.pool_release import DEFAULT_URL
from bench.progress import Progress
from services.payments.domain import postings
from services.payments.repository import ledger
from shared.db import connect
from shared.migrations import migrate

MIGRATIONS = Path(__file__).resolve().parents[1] / "services" / "payments" / "migrations"
PROVIDER = "bench"
FIGURES = ("server_cpu_us", "client_cpu_us", "wall_us")

Step = Callable[[asyncpg.Connection, str, str], Awaitable[None]]


async def _disburse(conn: asyncpg.Connection, loans: list[str]) -> None:
    async with conn.transaction():
        await ledger.post(conn, postings.funding(PROVIDER, Decimal(len(loans) * 1000),
                                                 f"funding:{uuid.uuid4()}"))
    for loan in loans:
        async with conn.transaction():
            await ledger.post(conn, postings.disbursement(loan, loan, PROVIDER, Decimal(1000)))


async def _collect(conn: asyncpg.Connection, loan: str, payment: str) -> None:
    async with conn.transaction():
        await ledger.post(conn, postings.collection(payment, loan, PROVIDER, Decimal("110.00")))


async def _allocate(conn: asyncpg.Connection, loan: str, payment: str) -> None:
    parts = {"principal": Decimal("100.00"), "interest": Decimal("9.00"),
             "fees": Decimal("1.00")}
    async with conn.transaction():
        await ledger.post(conn, postings.repayment(payment, loan, Decimal("110.00"), parts))


STEPS: dict[str, Step] = {"collection": _collect, "allocation": _allocate}


@dataclass
class Variant:
    name: str
    schema: str
    conn: asyncpg.Connection | None = None
    pid: int = 0
    statements: list[str] = field(default_factory=list)
    rounds: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {kind: [] for kind in STEPS})


async def _phase(variant: Variant, kind: str, label: str, loans: list[str],
                 payments: list[str]) -> None:
    assert variant.conn is not None
    step = STEPS[kind]
    progress = Progress(label, len(loans))
    seen0 = len(variant.statements)
    server0, cpu0, t0 = process_cpu_s(variant.pid), time.process_time(), time.perf_counter()
    for n, (loan, payment) in enumerate(zip(loans, payments, strict=True), 1):
        await step(variant.conn, loan, payment)
        progress.update(n)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    server1 = process_cpu_s(variant.pid)
    progress.done()
    await asyncio.sleep(0.05)  # query loggers are called soon after, not at once
    count = len(loans)
    variant.rounds[kind].append({
        "transactions": count,
        "statements_per_transaction": round((len(variant.statements) - seen0) / count, 2),
        "server_cpu_us": (None if server0 is None or server1 is None
                          else (server1 - server0) / count * 1e6),
        "client_cpu_us": cpu / count * 1e6,
        "wall_us": wall / count * 1e6,
    })


async def _open(url: str, admin: asyncpg.Connection, variant: Variant,
                change: str | None) -> None:
    await admin.execute(f'CREATE SCHEMA "{variant.schema}"')
    await migrate(url, variant.schema, MIGRATIONS)
    variant.conn = await connect(url, schema=variant.schema)
    if change:
        await variant.conn.execute(change)
    variant.conn.add_query_logger(lambda record: variant.statements.append(record.query))
    variant.pid = await variant.conn.fetchval("SELECT pg_backend_pid()")


def _summary(variant: Variant) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, runs in variant.rounds.items():
        out[kind] = {
            "transactions": sum(r["transactions"] for r in runs),
            "statements_per_transaction": runs[-1]["statements_per_transaction"],
            **{key: round(statistics.median(r[key] for r in runs), 1)
               for key in FIGURES if all(r[key] is not None for r in runs)},
        }
    return out


async def main(url: str, loans: int, rounds: int,
               compare: tuple[str, str] | None) -> dict[str, Any]:
    """``compare``: (a name, the SQL applied to the second schema)."""
    tag = uuid.uuid4().hex[:8]
    variants = [Variant("migrations", f"bench_ledger_{tag}")]
    if compare is not None:
        variants.append(Variant(compare[0], f"bench_ledger_{tag}_b"))
    admin = await asyncpg.connect(url)
    try:
        for variant in variants:
            await _open(url, admin, variant,
                        None if variant is variants[0] or compare is None else compare[1])
        per_round = max(1, loans // rounds)
        for n in range(rounds):
            order = variants if n % 2 == 0 else variants[::-1]
            for variant in order:
                ids = [f"LN-{uuid.uuid4().hex[:12]}" for _ in range(per_round)]
                pays = [str(uuid.uuid4()) for _ in ids]
                assert variant.conn is not None
                await _disburse(variant.conn, ids)
                for kind in STEPS:
                    await _phase(variant, kind, f"round {n + 1}/{rounds} {variant.name}: "
                                 f"{kind}s", ids, pays)
    finally:
        for variant in variants:
            if variant.conn is not None:
                await variant.conn.close()
            await admin.execute(f'DROP SCHEMA IF EXISTS "{variant.schema}" CASCADE')
        await admin.close()
    result: dict[str, Any] = {v.name: _summary(v) for v in variants}
    if compare is not None:
        base, other = result[variants[0].name], result[variants[1].name]
        result["ratio_change_to_migrations"] = {
            kind: {key: round(other[kind][key] / base[kind][key], 2)
                   for key in FIGURES if base[kind].get(key) and other[kind].get(key)}
            for kind in STEPS}
    return result


def _print(result: dict[str, Any]) -> None:
    keys = ("statements_per_transaction", *FIGURES)
    print(f"{'median of the rounds, per transaction':44}"
          + "".join(f"{k.replace('_per_transaction', ''):>14}" for k in keys))
    for name, kinds in result.items():
        if name == "ratio_change_to_migrations":
            continue
        for kind, figures in kinds.items():
            print(f"{name + ': ' + kind:44}" + "".join(f"{figures.get(k, '-')!s:>14}"
                                                         for k in keys))
    for kind, ratios in result.get("ratio_change_to_migrations", {}).items():
        print(f"{'change / migrations: ' + kind:44}{'':>14}"
              + "".join(f"{ratios.get(k, '-')!s:>14}" for k in FIGURES))
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.ledger_posting", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("NORIA_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--loans", type=int, default=3000,
                        help="loans collected from and allocated to, per variant (default 3000)")
    parser.add_argument("--rounds", type=int, default=6,
                        help="rounds, each a set of loans of its own (default 6)")
    parser.add_argument("--compare", type=Path, default=None,
                        help="SQL applied to a second schema after the migrations, measured "
                             "against the migrations alone in the same run")
    args = parser.parse_args()
    change = None if args.compare is None else (args.compare.name, args.compare.read_text())
    _print(asyncio.run(main(args.url, args.loans, args.rounds, change)))
