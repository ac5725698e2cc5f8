"""What a pooled connection's release costs: asyncpg's session reset against the pools'
own (``shared.db.reset_session``), in the same run, interleaved.

Every unit of work, inbox batch and HTTP read borrows a connection, runs its
statements and gives it back. asyncpg's default reset sends ``SELECT
pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` on every release; the
platform's pools (``shared.db.create_pool``) send nothing unless the borrower
listened. One cycle here is acquire → ``SELECT 1`` → release, on a pool of one
connection, the two pools taking turns in ``--rounds`` blocks (the order swapped
every round) so that a machine busy with other work weighs on both alike.

Printed per pool: statements sent to the server per cycle (counted with a query
logger, in a pass of its own: logging costs time), µs of wall time per cycle (the
total, and the median of the rounds), this process's CPU per cycle
(``time.process_time()``) and the server backend's CPU per cycle (``/proc`` of the
backend, when PostgreSQL runs on this machine; 10 ms ticks, so read it over many
cycles); then the ratios old / new.

``uv run python -m bench.pool_release --cycles 20000``
(``NORIA_DATABASE_URL``, default the local infrastructure's admin URL)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from bench.cpu import process_cpu_s
from shared.db import BoundedPool, create_pool, server_settings

DEFAULT_URL = "postgresql://noria_admin:noria_admin@127.0.0.1:55432/noria"
STATEMENT = "SELECT 1"


@dataclass
class Variant:
    name: str
    pool: asyncpg.Pool
    backend_pid: int = 0
    cycles: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    server_cpu_s: float | None = 0.0
    round_us: list[float] = field(default_factory=list)
    statements_per_cycle: float = 0.0


async def _cycle(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.fetchval(STATEMENT)


async def _count_statements(variant: Variant, cycles: int) -> float:
    """Statements the server receives per cycle (the borrower's and the release's)."""
    seen: list[str] = []

    def logged(record: Any) -> None:
        seen.append(record.query)

    # a query logger belongs to the connection, not to one borrowing of it
    async with variant.pool.acquire() as conn:
        conn.add_query_logger(logged)
    await asyncio.sleep(0.05)
    seen.clear()
    for _ in range(cycles):
        await _cycle(variant.pool)
    await asyncio.sleep(0.05)   # loggers are called soon after, not at once
    counted = len(seen)
    async with variant.pool.acquire() as conn:
        conn.remove_query_logger(logged)
    return counted / cycles


async def _block(variant: Variant, cycles: int) -> None:
    server0 = process_cpu_s(variant.backend_pid)
    cpu0, t0 = time.process_time(), time.perf_counter()
    for _ in range(cycles):
        await _cycle(variant.pool)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    server1 = process_cpu_s(variant.backend_pid)
    variant.cycles += cycles
    variant.wall_s += wall
    variant.cpu_s += cpu
    variant.round_us.append(wall / cycles * 1e6)
    if server0 is None or server1 is None or variant.server_cpu_s is None:
        variant.server_cpu_s = None
    else:
        variant.server_cpu_s += server1 - server0


async def main(url: str, cycles: int, rounds: int) -> dict[str, Any]:
    settings = server_settings(None)
    # the pool as it was: asyncpg's reset on every release
    old_pool = await BoundedPool(url, min_size=1, max_size=1, server_settings=settings,
                                 connection_class=asyncpg.Connection,
                                 record_class=asyncpg.Record, loop=None,
                                 max_queries=50000, max_inactive_connection_lifetime=300.0)
    new_pool = await create_pool(url, min_size=1, max_size=1)
    old, new = Variant("asyncpg reset", old_pool), Variant("no reset (shared.db)", new_pool)
    try:
        for variant in (old, new):
            async with variant.pool.acquire() as conn:
                variant.backend_pid = await conn.fetchval("SELECT pg_backend_pid()")
            for _ in range(200):   # warm: statement cache, both sides
                await _cycle(variant.pool)
            variant.statements_per_cycle = await _count_statements(variant, 500)
        per_round = max(1, cycles // rounds)
        for n in range(rounds):
            for variant in ((old, new) if n % 2 == 0 else (new, old)):
                await _block(variant, per_round)
    finally:
        await old_pool.close()
        await new_pool.close()

    def figures(v: Variant) -> dict[str, Any]:
        return {
            "cycles": v.cycles,
            "statements_per_cycle": round(v.statements_per_cycle, 2),
            "wall_us_per_cycle": round(v.wall_s / v.cycles * 1e6, 1),
            "wall_us_per_cycle_median_of_rounds": round(statistics.median(v.round_us), 1),
            "client_cpu_us_per_cycle": round(v.cpu_s / v.cycles * 1e6, 1),
            "server_cpu_us_per_cycle": (None if v.server_cpu_s is None
                                        else round(v.server_cpu_s / v.cycles * 1e6, 1)),
        }

    result: dict[str, Any] = {"old": figures(old), "new": figures(new)}
    result["ratio_old_to_new"] = {
        key: round(result["old"][key] / result["new"][key], 2)
        for key in ("statements_per_cycle", "wall_us_per_cycle",
                    "wall_us_per_cycle_median_of_rounds", "client_cpu_us_per_cycle",
                    "server_cpu_us_per_cycle")
        if result["old"][key] and result["new"][key]}
    return result


def _print(result: dict[str, Any]) -> None:
    keys = [k for k in result["old"] if k != "cycles"]
    print(f"{'':38} {'asyncpg reset':>14} {'no reset':>10} {'old/new':>8}")
    print(f"{'cycles':38} {result['old']['cycles']:>14} {result['new']['cycles']:>10}")
    for key in keys:
        ratio = result["ratio_old_to_new"].get(key, "")
        print(f"{key:38} {result['old'][key]!s:>14} {result['new'][key]!s:>10}"
              f" {ratio!s:>8}")
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.pool_release", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("NORIA_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--cycles", type=int, default=20000,
                        help="cycles per pool, in all (default 20000)")
    parser.add_argument("--rounds", type=int, default=20,
                        help="blocks per pool, taking turns (default 20)")
    args = parser.parse_args()
    _print(asyncio.run(main(args.url, args.cycles, args.rounds)))
