"""Payments' interest accruals for a close of business on a large portfolio, in a schema
of its own, on the production path.

The night of a 1.24 million-loan institution under accrual accounting: loans publishes
the day's ``InterestAccrued`` in batches (10 000 loans each by default), keyed by the
date (one partition). Payments' consumer stages each batch (``handlers.accrual_batches.
stage``, one transaction a batch, one batch after another as the partition delivers
them) and payments' accrual workers post the staged batches several at once
(``accrual_batches.drain``, the service's own loop and lease, ``--workers`` of them,
the service's default ``accrual_workers`` unless told): each batch's accruals
(``run_accruals``: set-based, one statement and one entry per batch — a receivable line
per loan and one aggregated income line per (office, interest income GL account)),
then, once every batch of the date is accrued, each batch's provisions
(``run_provisions``). The night's figure is the wall from the first batch staged until
every batch is accrued (what the 60 s target is judged on), and until the date is
complete (provisions included). A role and schema ``bench_acc_<hex>`` are created with
the admin URL and the payments migrations applied; the loans are seeded set-based
(spread over 650 branches under 12 regions, half of them knowing their office only
through their client, one in a hundred past the non-accrual threshold).
``--by-office`` stages the batches from the loans ordered by office. With
``--against-workers K`` (1 in ``make bench``) the same night is first run with K workers
in a schema of its own, and the ratio of the two walls printed. With ``--compare`` the
same loans are posted again for another date one entry per loan (``post_many``, one
connection), so the two can be read side by side. Peak memory, sampled every 50 ms:
this process's RSS, and the PostgreSQL backends serving the schema's role — their PSS
summed (each backend's share of ``shared_buffers`` counted once overall, which is what
the 2 GiB target is judged on) and their RSS summed (for reference: it counts the
shared pages once per backend). The schema and role are dropped at the end (and any
``bench_acc_*`` an interrupted run left, at the start).

``flock /tmp/noria-bench.lock uv run python -m bench.accruals --loans 100000 --against-workers 1``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from services.payments.domain import postings
from services.payments.handlers import accounting, accrual_batches
from services.payments.repository import accrual_batches as batches_repo
from services.payments.repository import gl as gl_repo
from services.payments.settings import PaymentsSettings, ProviderConfig
from shared.db import create_pool
from shared.migrations import migrate

ROOT = Path(__file__).resolve().parents[1]
PAYMENTS_DIR = ROOT / "services" / "payments" / "migrations"
LOANS = 1_240_000
BATCH = 10_000
# what the service runs: its accrual workers on one replica
WORKERS: int = PaymentsSettings.model_fields["accrual_workers"].default
BRANCHES = 650
REGIONS = 12

SEED_OFFICES = """
INSERT INTO offices (office_id, path, office_kind)
SELECT 'ho', 'ho', 'head_office'
UNION ALL SELECT 'r-' || r, 'ho/r-' || r, 'region' FROM generate_series(0, $2 - 1) r
UNION ALL SELECT 'b-' || b, 'ho/r-' || (b % $2) || '/b-' || b, 'branch'
            FROM generate_series(0, $1 - 1) b
"""

SEED_CLIENTS = """
INSERT INTO client_offices (client_id, office_id, office_path)
SELECT 'C' || g, 'b-' || (g % $3), 'ho/r-' || ((g % $3) % $4) || '/b-' || (g % $3)
  FROM generate_series($1::int, $2::int) g WHERE g % 2 = 1
"""

SEED_LOANS = """
INSERT INTO loan_dimensions (loan_id, product_id, office_id, client_id)
SELECT 'L' || lpad(g::text, 8, '0'), 'p-' || (g % 3),
       CASE WHEN g % 2 = 0 THEN 'b-' || (g % $3) END, 'C' || g
  FROM generate_series($1::int, $2::int) g
"""


def _url_for(admin_url: str, user: str) -> str:
    parts = urlsplit(admin_url)
    host = parts.hostname or "127.0.0.1"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}:{user}@{host}{port}", parts.path, "", ""))


def _proc_kib(pid: int, field: str, source: str = "status") -> int:
    try:
        for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


async def create_schema(admin_url: str) -> tuple[str, str]:
    name = f"bench_acc_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{name}'")
        database = await conn.fetchval("SELECT current_database()")
        await conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {name}')
        await conn.execute(f"CREATE SCHEMA {name} AUTHORIZATION {name}")
        await conn.execute(f"ALTER ROLE {name} SET search_path = {name}")
    finally:
        await conn.close()
    url = _url_for(admin_url, name)
    await migrate(url, name, PAYMENTS_DIR)
    return name, url


async def drop_schema(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        await conn.execute(f"DROP OWNED BY {name} CASCADE")
        await conn.execute(f"DROP ROLE IF EXISTS {name}")
    finally:
        await conn.close()


async def drop_leftovers(admin_url: str) -> list[str]:
    conn = await asyncpg.connect(admin_url)
    try:
        names = [r["rolname"] for r in await conn.fetch(
            "SELECT rolname FROM pg_roles WHERE rolname ~ '^bench_acc_[0-9a-f]{10}$'")]
    finally:
        await conn.close()
    for name in names:
        await drop_schema(admin_url, name)
    return names


async def seed(conn: asyncpg.Connection, loans: int) -> float:
    started = time.perf_counter()
    await conn.execute(SEED_OFFICES, BRANCHES, REGIONS)
    step = 200_000
    for low in range(1, loans + 1, step):
        high = min(loans, low + step - 1)
        await conn.execute(SEED_CLIENTS, low, high, BRANCHES, REGIONS)
        await conn.execute(SEED_LOANS, low, high, BRANCHES)
    await conn.execute(
        "UPDATE accounting_settings SET accounting_basis = 'accrual', non_accrual_days = 90")
    await conn.execute("ANALYZE")
    return time.perf_counter() - started


def loan_day(g: int) -> accounting.LoanDay:
    """The day's figures loans would publish for loan ``g``: interest from 0.01 to 9.99
    MAD, one loan in a hundred 120 days late (non-accrual)."""
    return accounting.LoanDay(f"L{g:08d}", Decimal(1 + (g * 7919) % 999) / 100,
                              120 if g % 100 == 0 else g % 7)


def loan_days(low: int, high: int) -> list[accounting.LoanDay]:
    return [loan_day(g) for g in range(low, high + 1)]


def batches(loans: int, batch: int, *, by_office: bool) -> list[list[int]]:
    """The night's batches of loan numbers: in loan order (every batch spans all the
    branches), or ordered by office (loan ``g`` is at branch ``g % BRANCHES``) so a
    batch holds a few branches' loans."""
    numbers = range(1, loans + 1)
    ordered = sorted(numbers, key=lambda g: (g % BRANCHES, g)) if by_office else numbers
    return [list(ordered[i:i + batch]) for i in range(0, loans, batch)]


async def _sample(admin_url: str, role: str, stop: asyncio.Event, peaks: dict[str, int]
                  ) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        while not stop.is_set():
            rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE usename = $1", role)
            peaks["pg_kib"] = max(peaks.get("pg_kib", 0),
                                  sum(_proc_kib(r["pid"], "VmRSS") for r in rows))
            peaks["pg_pss_kib"] = max(peaks.get("pg_pss_kib", 0), sum(
                _proc_kib(r["pid"], "Pss", "smaps_rollup") for r in rows))
            peaks["py_kib"] = max(peaks.get("py_kib", 0), _proc_kib(os.getpid(), "VmRSS"))
            try:
                await asyncio.wait_for(stop.wait(), 0.05)
            except TimeoutError:
                pass
    finally:
        await conn.close()


async def night(admin_url: str, role: str, url: str, conn: asyncpg.Connection, day: date,
                loans: int, batch: int, *, per_loan: bool, workers: int = WORKERS,
                by_office: bool = False) -> dict[str, Any]:
    """One close of business. Set-based: as the service posts it — the consumer's
    staging (one transaction a batch, one after another) while ``workers`` accrual
    workers drain the staged batches. ``per_loan``: the way payments posted before (one
    entry per loan on the one income account row, one batch after another)."""
    stop, peaks = asyncio.Event(), dict[str, int]()
    plan = batches(loans, batch, by_office=by_office)
    slowest = [0.0]
    sampler = asyncio.create_task(_sample(admin_url, role, stop, peaks))
    started = time.perf_counter()
    phases: dict[str, float] = {}
    try:
        if per_loan:
            for numbers in plan:
                t0 = time.perf_counter()
                items = [loan_day(g) for g in numbers]
                async with conn.transaction():
                    await gl_repo.post_many(conn, [postings.interest_accrual(
                        i.loan_id, day, i.interest) for i in items
                        if i.days_in_arrears < 90])
                slowest[0] = max(slowest[0], time.perf_counter() - t0)
        else:
            phases = await _production(url, role, conn, day, plan, workers, started)
    finally:
        stop.set()
        await sampler
    wall = time.perf_counter() - started
    income = await conn.fetchval(
        "SELECT coalesce(sum(l.amount), 0) FROM journal_lines l"
        " JOIN journal_entries e ON e.id = l.entry_id"
        " WHERE e.business_date = $1 AND l.account_id = 'income:interest'", day)
    lines = await conn.fetchval(
        "SELECT count(*) FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id"
        " WHERE e.business_date = $1", day)
    accrued_s = phases.get("accrued_s", wall)
    return {"business_date": day.isoformat(), "mode": "per_loan" if per_loan else "set_based",
            "loans": loans, "batch": batch, "workers": 1 if per_loan else workers,
            "by_office": by_office, "wall_s": round(accrued_s, 2),
            "staged_s": round(phases.get("staged_s", 0.0), 2),
            "complete_s": round(phases.get("complete_s", wall), 2),
            "slowest_batch_s": round(slowest[0], 2) if per_loan else None,
            "loans_per_s": round(loans / accrued_s), "lines": lines,
            "interest_income": str(income), "load_avg": os.getloadavg()[0],
            "python_peak_rss_mib": round(peaks.get("py_kib", 0) / 1024, 1),
            "pg_backends_peak_pss_mib": round(peaks.get("pg_pss_kib", 0) / 1024, 1),
            "pg_backends_peak_rss_mib": round(peaks.get("pg_kib", 0) / 1024, 1)}


async def _production(url: str, role: str, conn: asyncpg.Connection, day: date,
                      plan: list[list[int]], workers: int, started: float
                      ) -> dict[str, float]:
    """The night as the service posts it: the batches staged one after another (the
    consumer of the date's partition), drained by ``workers`` accrual workers (the
    service's loop, lease and settings), each on its own pooled connection as the
    background pool gives them. Seconds from the start until every batch is staged,
    every batch accrued, the date complete (provisions posted)."""
    settings = PaymentsSettings(
        database_url=url, db_schema=role,
        providers={"sim": ProviderConfig(base_url="http://127.0.0.1:9")},
        callback_base_url="http://127.0.0.1:9", accrual_workers=workers)
    pool = await create_pool(url, schema=role, min_size=1, max_size=workers + 1,
                             role="background")
    phases: dict[str, float] = {}
    drains = [asyncio.create_task(accrual_batches.drain(pool, settings))
              for _ in range(settings.accrual_workers)]

    async def stage_all() -> None:
        for n, numbers in enumerate(plan):
            items = [loan_day(g) for g in numbers]
            async with conn.transaction():
                await accrual_batches.stage(conn, day, n, len(plan), items,
                                            f"bench-{day}-{n}")
        phases["staged_s"] = time.perf_counter() - started

    stager = asyncio.create_task(stage_all())
    try:
        async with pool.acquire() as watch:
            reported = 0
            while True:
                row = await batches_repo.progress(watch, day)
                accrued = row["accrued"] if row is not None else 0
                if accrued >= len(plan) and "accrued_s" not in phases:
                    phases["accrued_s"] = time.perf_counter() - started
                if row is not None and row["completed_at"] is not None:
                    phases["complete_s"] = time.perf_counter() - started
                    break
                if accrued // 25 > reported:
                    reported = accrued // 25
                    print(f"[accruals] x{workers}: {accrued} of {len(plan)} batches "
                          f"accrued in {time.perf_counter() - started:.1f} s", flush=True)
                await asyncio.sleep(0.05)
        await stager
    finally:
        for task in [stager, *drains]:
            task.cancel()
        for task in [stager, *drains]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await pool.close()
    return phases


async def run(admin_url: str, loans: int = LOANS, batch: int = BATCH, *,
              compare: bool = False, keep: bool = False, workers: int = WORKERS,
              by_office: bool = False, against_workers: int | None = None
              ) -> dict[str, Any]:
    for name in await drop_leftovers(admin_url):
        print(f"[accruals] dropped a leftover {name}", flush=True)
    against: dict[str, Any] | None = None
    if against_workers is not None:
        # the same night first with other workers, in a schema of its own (the same
        # accounts to open, the same table sizes)
        against = await run(admin_url, loans, batch, workers=against_workers,
                            by_office=by_office)
        print(f"[accruals] {summary(against)}", flush=True)
    schema, url = await create_schema(admin_url)
    result: dict[str, Any] = {"schema": schema}
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        result["seed_s"] = round(await seed(conn, loans), 1)
        day = datetime.now(UTC).date() - timedelta(days=2)
        result["night"] = await night(admin_url, schema, url, conn, day, loans, batch,
                                      per_loan=False, workers=workers, by_office=by_office)
        if against is not None:
            result["against"] = against["night"]
            result["speedup"] = round(against["night"]["wall_s"]
                                      / result["night"]["wall_s"], 2)
        print(f"[accruals] {summary(result)}", flush=True)
        if compare:
            result["before"] = await night(admin_url, schema, url, conn,
                                           day - timedelta(days=1), loans, batch,
                                           per_loan=True)
        balanced = await conn.fetchval("SELECT sum(debits) = sum(credits) FROM accounts")
        result["trial_balance_zero"] = bool(balanced)
    finally:
        await conn.close()
        if not keep:
            await drop_schema(admin_url, schema)
    return result


def summary(result: dict[str, Any]) -> str:
    n = result["night"]
    text = (f"payments accruals: {n['loans']:,} loans in batches of {n['batch']:,} on "
            f"{n['workers']} accrual worker(s){' by office' if n['by_office'] else ''}: "
            f"accrued in {n['wall_s']:.1f} s ({n['loans_per_s']:,} loans/s; staged in "
            f"{n['staged_s']:.1f} s; date complete with provisions in "
            f"{n['complete_s']:.1f} s; load {n['load_avg']:.1f}), peak python "
            f"{n['python_peak_rss_mib']:.0f} MiB + postgres PSS "
            f"{n['pg_backends_peak_pss_mib']:.0f} MiB (RSS summed "
            f"{n['pg_backends_peak_rss_mib']:.0f} MiB)")
    against = result.get("against")
    if against:
        text += (f"; {against['workers']} worker(s): accrued in {against['wall_s']:.1f} s, "
                 f"complete in {against['complete_s']:.1f} s (x{result['speedup']:.2f})")
    before = result.get("before")
    if before:
        text += (f"; one entry per loan (before): {before['wall_s']:.1f} s, postgres "
                 f"PSS {before['pg_backends_peak_pss_mib']:.0f} MiB")
    return text


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.accruals", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loans", type=int, default=LOANS)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--compare", action="store_true",
                        help="post the same loans one entry per loan too (the old way)")
    parser.add_argument("--workers", type=int, default=WORKERS,
                        help="accrual workers posting the staged batches (default: the "
                             "service's accrual_workers)")
    parser.add_argument("--by-office", action="store_true",
                        help="form the batches from the loans ordered by office")
    parser.add_argument("--against-workers", type=int, default=None,
                        help="run the same night first with this many workers (ratio)")
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    cli = parser.parse_args()

    async def alone() -> dict[str, Any]:
        admin = os.environ.get("NORIA_ADMIN_DATABASE_URL") or os.environ.get(
            "NORIA_DATABASE_URL")
        if not admin:
            from scripts.platform import infra_env
            admin = infra_env()["NORIA_ADMIN_DATABASE_URL"]
        return await run(admin, cli.loans, cli.batch, compare=cli.compare, keep=cli.keep,
                         workers=cli.workers, by_office=cli.by_office,
                         against_workers=cli.against_workers)

    outcome = asyncio.run(alone())
    print(json.dumps(outcome, indent=2, default=str))
    print(summary(outcome))
