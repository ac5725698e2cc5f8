"""Close of business on a synthetic portfolio, in a schema of its own.

A role and schema ``bench_cob_<hex>`` are created with the admin URL (as the
tests' ``isolated_schema`` fixture does), the loans migrations applied, and the
portfolio seeded set-based with ``generate_series``: weekly group loans and
monthly individual loans at every stage of their life, most of them current,
some behind by one installment, some by several, some that stopped paying
months ago. Nothing has ever been closed, so the first night is a catch-up
night (every installment past due becomes overdue at once); the second is an
ordinary night.

Each night runs the real command, ``python -m services.loans
close-of-business DATE``, pointed at the schema; the time of each of its steps is read
from its log (``step_seconds``); its peak memory is read from
``/proc/<pid>/status`` (VmHWM) and the PostgreSQL backends serving it (leader
and parallel workers) are sampled every 50 ms. The schema and role are dropped
at the end (and any ``bench_cob_*`` an interrupted run left, at the start).

Alone, without the rest of ``python -m bench`` (which holds the platform lock):
``flock /tmp/noria-bench.lock python -m bench.cob --loans 1240000``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench.cob_offices import rollup_check, spread_over_offices
from bench.progress import Progress
from shared.migrations import migrate

ROOT = Path(__file__).resolve().parents[1]
LOANS_DIR = ROOT / "services" / "loans" / "migrations"

PRODUCTS = """
INSERT INTO products (id, version, name, terms, created_by) VALUES
 ('bench-weekly', 1, 'Groupe hebdomadaire', $1::jsonb, 'bench'),
 ('bench-monthly', 1, 'Tajir mensuel', $2::jsonb, 'bench')
"""
WEEKLY_TERMS = {
    "interest_method": "flat", "amortization": "equal_installments", "frequency": "weekly",
    "annual_rate": "0.26", "min_principal": "1000.00", "max_principal": "10000.00",
    "min_term": 16, "max_term": 16, "fees": [], "day_count": "actual_365",
    "penalty": {"kind": "flat", "value": "10.00", "tolerance_days": 3},
    "overpayment_tolerance": "0.00"}
MONTHLY_TERMS = {
    "interest_method": "declining_balance", "amortization": "equal_installments",
    "frequency": "monthly", "annual_rate": "0.24", "min_principal": "3000.00",
    "max_principal": "50000.00", "min_term": 6, "max_term": 12,
    "fees": [{"kind": "percent_of_principal", "value": "0.01", "timing": "at_disbursement"}],
    "day_count": "actual_365",
    "penalty": {"kind": "percent_of_overdue", "value": "0.02", "tolerance_days": 5},
    "overpayment_tolerance": "0.00"}

# One row per loan: its product, size, age and how far behind it is.
#   40 % weekly (16 weeks), 60 % monthly (6, 9 or 12 months);
#   arrears: 90 % current, 5 % one installment behind, 2 % two or three behind,
#   3 % stopped paying (every installment since a point 3-7 periods ago unpaid).
SEED_PLAN = """
CREATE UNLOGGED TABLE bench_plan AS
SELECT g, 'L' || lpad(g::text, 8, '0') AS id, weekly,
       CASE WHEN weekly THEN 16 ELSE (ARRAY[6, 9, 12])[1 + (g / 5) % 3] END AS term,
       CASE WHEN weekly THEN 1000 + ((g * 37) % 91) * 100
            ELSE 3000 + ((g * 53) % 471) * 100 END::numeric(14,2) AS principal,
       h
  FROM (SELECT g, (g % 5) < 2 AS weekly, (g::bigint * 2654435761) % 1000 AS h
          FROM generate_series(1, $1::int) g) s
"""
SEED_PLAN_2 = """
CREATE UNLOGGED TABLE bench_plan2 AS
SELECT p.*, elapsed,
       greatest(0, elapsed - CASE WHEN h < 900 THEN 0 WHEN h < 950 THEN 1
                                  WHEN h < 970 THEN 2 + (h % 2)
                                  ELSE 3 + (h % 5) END) AS paid_count,
       $1::date - CASE WHEN weekly THEN elapsed * 7 + (p.g % 7)
                       ELSE elapsed * 30 + (p.g % 30) END AS disbursed_on
  FROM bench_plan p,
       LATERAL (SELECT (1 + (p.g::bigint * 7919) % (p.term - 1))::int AS elapsed) e
"""
SEED_LOANS = """
INSERT INTO loans (id, client_id, partner_id, product_id, product_version, principal, term,
                   status, submitted_by, decided_by, msisdn, disbursed_on,
                   principal_outstanding, penalty_kind, penalty_value, penalty_tolerance_days)
SELECT id, 'C' || lpad(g::text, 8, '0'), 'partner-' || (g % 12),
       CASE WHEN weekly THEN 'bench-weekly' ELSE 'bench-monthly' END, 1, principal, term,
       'active', 'bench-maker', 'bench-checker', '06' || lpad((g % 100000000)::text, 8, '0'),
       disbursed_on,
       principal - CASE WHEN paid_count >= term THEN principal
                        ELSE round(principal / term, 2) * paid_count END,
       CASE WHEN weekly THEN 'flat' ELSE 'percent_of_overdue' END,
       CASE WHEN weekly THEN 10.00 ELSE 0.02 END,
       CASE WHEN weekly THEN 3 ELSE 5 END
  FROM bench_plan2
"""
SEED_INSTALLMENTS = """
INSERT INTO installments (loan_id, number, due_date, principal_due, interest_due, fees_due,
                          principal_paid, interest_paid, fees_paid, status, paid_on)
SELECT p.id, n, d.due,
       d.pdue, d.idue, d.fdue,
       CASE WHEN n <= p.paid_count THEN d.pdue ELSE 0 END,
       CASE WHEN n <= p.paid_count THEN d.idue ELSE 0 END,
       CASE WHEN n <= p.paid_count THEN d.fdue ELSE 0 END,
       CASE WHEN n <= p.paid_count THEN 'paid' ELSE 'pending' END,
       CASE WHEN n <= p.paid_count THEN d.due END
  FROM bench_plan2 p
 CROSS JOIN LATERAL generate_series(1, p.term) n
 CROSS JOIN LATERAL (SELECT
       CASE WHEN p.weekly THEN p.disbursed_on + 7 * n
            ELSE (p.disbursed_on + make_interval(months => n))::date END AS due,
       CASE WHEN n < p.term THEN round(p.principal / p.term, 2)
            ELSE p.principal - round(p.principal / p.term, 2) * (p.term - 1) END AS pdue,
       CASE WHEN p.weekly THEN round(p.principal * 0.26 / 52, 2)
            ELSE round((p.principal - round(p.principal / p.term, 2) * (n - 1)) * 0.02, 2)
       END AS idue,
       CASE WHEN n = 1 AND NOT p.weekly THEN round(p.principal * 0.01, 2) ELSE 0 END AS fdue
 ) d
"""


def _url_for(admin_url: str, user: str) -> str:
    parts = urlsplit(admin_url)
    host = parts.hostname or "127.0.0.1"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}:{user}@{host}{port}", parts.path, "", ""))


def _proc_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _private_kib(pid: int) -> int:
    """Memory that is the backend's own (not the shared buffers it touched)."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    except (OSError, ValueError):
        return 0
    return total


def _machine_busy_s() -> float:
    """CPU seconds all cores spent busy so far (/proc/stat), to show what else ran."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


async def create_schema(admin_url: str) -> tuple[str, str]:
    name = f"bench_cob_{uuid.uuid4().hex[:10]}"
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
    await migrate(url, name, LOANS_DIR)
    return name, url


async def drop_schema(admin_url: str, name: str, attempts: int = 30) -> None:
    """Drop the benchmark's schema and role, retrying while the server restarts."""
    for attempt in range(attempts):
        try:
            conn = await asyncpg.connect(admin_url)
            try:
                await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
                await conn.execute(f"DROP OWNED BY {name} CASCADE")
                await conn.execute(f"DROP ROLE IF EXISTS {name}")
            except asyncpg.UndefinedObjectError:
                pass   # the role is gone already: its owner dropped it meanwhile
            finally:
                await conn.close()
            return
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(2.0)


async def drop_leftovers(admin_url: str) -> list[str]:
    """Schemas of runs that could not clean up (the server went away under them). A schema
    whose role still has a session belongs to a run in progress (``bench.loans_handlers``
    makes its schemas here too) and is left alone."""
    conn = await asyncpg.connect(admin_url)
    try:
        names = [r["rolname"] for r in await conn.fetch(
            "SELECT rolname FROM pg_roles r WHERE rolname ~ '^bench_cob_[0-9a-f]{10}$'"
            "   AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a"
            "                    WHERE a.usename = r.rolname)")]
    finally:
        await conn.close()
    for name in names:
        await drop_schema(admin_url, name)
    return names


async def seed(url: str, schema: str, loans: int, business_date: date) -> dict[str, Any]:
    progress = Progress(f"cob seed {loans:,} loans", 5, every_s=0)
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET maintenance_work_mem = '256MB'")
        await conn.execute(PRODUCTS, json.dumps(WEEKLY_TERMS), json.dumps(MONTHLY_TERMS))
        await conn.execute(SEED_PLAN, loans)
        await conn.execute(SEED_PLAN_2, business_date)
        progress.update(1, "plan")
        await conn.execute(SEED_LOANS)
        progress.update(2, "loans")
        await conn.execute(SEED_INSTALLMENTS)
        progress.update(3, "installments")
        await spread_over_offices(conn)   # offices and officers over the portfolio
        await conn.execute("DROP TABLE bench_plan, bench_plan2")
        await conn.execute("VACUUM (ANALYZE) loans")
        await conn.execute("VACUUM (ANALYZE) installments")
        progress.update(4, "vacuum analyze")
        installments = await conn.fetchval("SELECT count(*) FROM installments")
        mix = await conn.fetch("SELECT product_id, count(*) AS n FROM loans GROUP BY 1")
        past_due = await conn.fetchval(
            "SELECT count(*) FROM installments WHERE status = 'pending' AND due_date < $1",
            business_date)
        size = await conn.fetchval(
            "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid)))"
            "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relkind = 'r'", schema)
    finally:
        await conn.close()
    seconds = progress.done(f"{installments:,} installments, {size}")
    return {"loans": loans, "installments": installments,
            "products": {r["product_id"]: r["n"] for r in mix},
            "installments_past_due_unmarked": past_due, "size": size,
            "seed_seconds": round(seconds, 1)}


async def checkpoint(admin_url: str) -> float:
    """Write the seed's dirty pages out before the first night is timed: a night follows
    a business day, not a bulk load of gigabytes whose flushing would otherwise land in
    the night's time. Every page the night changes still pays its full-page image in the
    WAL (the first change after a checkpoint), as in production."""
    started = time.perf_counter()
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    seconds = time.perf_counter() - started
    print(f"[bench] checkpoint after the seed: {seconds:.1f}s", file=sys.stderr, flush=True)
    return round(seconds, 1)


async def _sample_backends(admin_url: str, role: str, stop: asyncio.Event,
                           peaks: dict[str, int]) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        while not stop.is_set():
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE usename = $1"
                "   OR leader_pid IN (SELECT pid FROM pg_stat_activity WHERE usename = $1)",
                role)
            rss = sum(_proc_kib(r["pid"], "VmRSS") for r in rows)
            private = sum(_private_kib(r["pid"]) for r in rows)
            peaks["rss_kib"] = max(peaks.get("rss_kib", 0), rss)
            peaks["private_kib"] = max(peaks.get("private_kib", 0), private)
            try:
                await asyncio.wait_for(stop.wait(), 0.05)
            except TimeoutError:
                pass
    finally:
        await conn.close()


# The command's own log of each step: "close of business D: <step> = <n> (1.23s)" and
# "close of business D: <n> RepaymentDue and <n> LoanInArrears events (1.23s)".
_STEP = re.compile(r"close of business \S+: (\w+) = \S+ \((\d+\.\d+)s\)")
_EVENTS = re.compile(r"close of business \S+: \d+ RepaymentDue and \d+ LoanInArrears "
                     r"events \((\d+\.\d+)s\)")


def step_seconds(log: str, total: float | None) -> dict[str, float]:
    """Where the night's time went, from the command's log; ``snapshots_and_commit`` is
    the rest of its own clock (restructured cures, the institution's and the per-office
    snapshots, the run's completion)."""
    steps: dict[str, float] = {}
    for line in log.splitlines():
        if m := _STEP.search(line):
            steps[m.group(1)] = float(m.group(2))
        elif m := _EVENTS.search(line):
            steps["events"] = float(m.group(1))
    if total is not None and steps:
        steps["snapshots_and_commit"] = round(max(0.0, total - sum(steps.values())), 2)
    return steps


async def night(admin_url: str, url: str, schema: str, business_date: date,
                label: str) -> dict[str, Any]:
    env = {**os.environ, "NORIA_LOANS_DATABASE_URL": url, "NORIA_LOANS_DB_SCHEMA": schema,
           "NORIA_LOANS_LOG_LEVEL": "INFO"}
    progress = Progress(f"cob {label} {business_date}")
    stop = asyncio.Event()
    peaks: dict[str, int] = {}
    sampler = asyncio.create_task(_sample_backends(admin_url, schema, stop, peaks))
    started = time.monotonic()
    busy_before = _machine_busy_s()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.loans", "close-of-business", business_date.isoformat(),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    py_peak = 0
    while proc.returncode is None:
        py_peak = max(py_peak, _proc_kib(proc.pid, "VmHWM"))
        try:
            await asyncio.wait_for(proc.wait(), 0.05)
        except TimeoutError:
            progress.update(time.monotonic() - started, "running")
    out, err = await proc.communicate()
    wall = time.monotonic() - started
    busy = (_machine_busy_s() - busy_before) / wall
    stop.set()
    await sampler
    if proc.returncode != 0:
        raise RuntimeError(f"close of business failed:\n{err.decode()[-3000:]}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    progress.done(f"wall {wall:.1f}s")
    return {"business_date": business_date.isoformat(), "wall_s": round(wall, 2),
            "cob_seconds": result.get("seconds"),
            "python_peak_rss_mib": round(py_peak / 1024, 1),
            "pg_backend_peak_rss_mib": round(peaks.get("rss_kib", 0) / 1024, 1),
            "pg_backend_peak_private_mib": round(peaks.get("private_kib", 0) / 1024, 1),
            "peak_total_mib": round((py_peak + peaks.get("rss_kib", 0)) / 1024, 1),
            "machine_busy_cores": round(busy, 2),
            "step_seconds": step_seconds((err + out).decode(), result.get("seconds")),
            "stats": {k: v for k, v in result.items()
                      if k not in ("requested_by", "run_id", "business_date")}}


async def par(url: str, schema: str, business_date: date) -> dict[str, Any]:
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        row = await conn.fetchrow("SELECT * FROM portfolio_snapshots WHERE business_date = $1",
                                  business_date)
    finally:
        await conn.close()
    if row is None:
        return {}
    total = row["outstanding_principal"]

    def ratio(v: Any) -> float:
        return round(float(v / total), 4) if total else 0.0

    buckets = json.loads(row["buckets"]) if isinstance(row["buckets"], str) else row["buckets"]
    return {"loans_active": row["loans_active"], "outstanding_principal": str(total),
            "par1": ratio(row["par1_principal"]), "par30": ratio(row["par30_principal"]),
            "par90": ratio(row["par90_principal"]), "buckets": buckets}


async def run(admin_url: str, loans: int, business_date: date | None = None,
              keep: bool = False) -> dict[str, Any]:
    day = business_date or datetime.now(UTC).date()
    for name in await drop_leftovers(admin_url):
        print(f"[bench] dropped {name}, left by an earlier run", file=sys.stderr, flush=True)
    schema, url = await create_schema(admin_url)
    try:
        seeded = await seed(url, schema, loans, day)
        seeded["checkpoint_seconds"] = await checkpoint(admin_url)
        catch_up = await night(admin_url, url, schema, day, "catch-up night")
        normal = await night(admin_url, url, schema, day + timedelta(days=1), "normal night")
        return {"schema": schema, "seed": seeded, "catch_up_night": catch_up,
                "normal_night": normal, "par": await par(url, schema, day + timedelta(days=1)),
                "office_rollup": await rollup_check(url, schema, day + timedelta(days=1))}
    finally:
        if not keep:
            await drop_schema(admin_url, schema)


TARGET_SECONDS, TARGET_MIB = 60.0, 2048.0


def summary(result: dict[str, Any]) -> str:
    nights = ", ".join(
        f"{label} {result[key]['wall_s']:.1f}s / {result[key]['peak_total_mib']:.0f} MiB"
        for label, key in (("catch-up", "catch_up_night"), ("normal", "normal_night")))
    rollup = "equal" if result["office_rollup"].get("equal") else "NOT EQUAL"
    return (f"close of business, {result['seed']['loans']:,} loans: {nights} (targets"
            f" {TARGET_SECONDS:.0f}s, {TARGET_MIB:.0f} MiB); branch roll-up {rollup} to the"
            " institution's")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.cob", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loans", type=int, default=1_240_000)
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    cli = parser.parse_args()

    async def alone() -> dict[str, Any]:
        # the running PostgreSQL's admin URL, read (never provisioned) from infra.sh env
        admin = os.environ.get("NORIA_ADMIN_DATABASE_URL") or os.environ.get(
            "NORIA_DATABASE_URL")
        if not admin:
            from scripts.platform import infra_env
            admin = infra_env()["NORIA_ADMIN_DATABASE_URL"]
        return await run(admin, cli.loans, keep=cli.keep)

    outcome = asyncio.run(alone())
    print(json.dumps(outcome, indent=2, default=str))
    print(summary(outcome))
