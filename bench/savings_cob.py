"""Savings close of business on 1.24 million accounts, in a schema of its own.

Issue 16's figure: the whole sector's clients, one voluntary savings account each,
accrued for one business date in at most 60 s and 2 GiB. A role and schema
``bench_sav_<hex>`` are created with the admin URL, the savings migrations applied, and
the accounts seeded set-based with ``generate_series`` in slices (a progress line per
slice): balances from 0 to 20 000 MAD, one in ten on the period's minimum balance, one
in five on quarterly posting, a tenth of a percent of them blocked, each with its
opening statement line. The night is a mid-month date (accruals only, no posting), run
by the real command, ``python -m services.savings close-of-business DATE``, pointed at
the schema; its peak memory is read from ``/proc/<pid>/status`` (VmHWM) and the
PostgreSQL backends serving it are sampled every 50 ms. The schema and role are dropped
at the end (and any ``bench_sav_*`` an interrupted run left, at the start).

``python -m bench.savings_cob --accounts 50000`` runs it alone (under the platform lock).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench.progress import Progress
from shared.migrations import migrate

ROOT = Path(__file__).resolve().parents[1]
SAVINGS_DIR = ROOT / "services" / "savings" / "migrations"
ACCOUNTS = 1_240_000
TARGET_SECONDS = 60.0
TARGET_MIB = 2048.0
SLICES = 20

TERMS = {"kind": "voluntary", "annual_rate": "0.03", "interest_basis": "daily_balance",
         "posting_period": "monthly", "min_opening_balance": "0", "min_balance": "0",
         "withdrawal_fee": "5.00", "free_withdrawals_per_month": 2,
         "dormant_after_months": 12, "withholding_tax_rate": "0.20"}

SEED_ACCOUNTS = """
INSERT INTO accounts (id, client_id, partner_id, product_id, product_version, kind, status,
                      ledger_balance, opening_deposit, opened_by, blocked, block_reason,
                      annual_rate, interest_basis, posting_period, withholding_rate,
                      dormant_after_months, accrued_through, last_client_txn_on, opened_on,
                      office_id, office_path)
SELECT md5('bench-savings-' || g)::uuid::text, 'C' || lpad(g::text, 8, '0'), 'bench',
       'bench-voluntary', 1, 'voluntary', 'active',
       ((g::bigint * 2654435761) % 2000001) / 100.0, 0, 'bench',
       g % 1000 = 0, CASE WHEN g % 1000 = 0 THEN 'saisie' END,
       0.03, CASE WHEN g % 10 = 0 THEN 'minimum_balance' ELSE 'daily_balance' END,
       CASE WHEN g % 5 = 0 THEN 'quarterly' ELSE 'monthly' END, 0.20, 12,
       $3::date - 1, $3::date - (g % 300), $3::date - 400 + (g % 60),
       'b-' || (g % 40), 'ho/r-' || (g % 12) || '/b-' || (g % 40)
  FROM generate_series($1::int, $2::int) g
"""

SEED_LINES = """
INSERT INTO transactions (account_id, txn_key, kind, amount, value_date, channel,
                          created_by)
SELECT a.id, 'opening:' || a.id, 'deposit', a.ledger_balance, a.opened_on, 'opening',
       'bench'
  FROM accounts a
 WHERE a.ledger_balance > 0
   AND a.client_id BETWEEN 'C' || lpad($1::int::text, 8, '0')
                       AND 'C' || lpad($2::int::text, 8, '0')
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


def night_date(today: date) -> date:
    """A mid-month business date that has ended: the night accrues and posts nothing."""
    if today.day > 15:
        return today.replace(day=15)
    last_month = today.replace(day=1) - timedelta(days=1)
    return last_month.replace(day=15)


async def create_schema(admin_url: str) -> tuple[str, str]:
    name = f"bench_sav_{uuid.uuid4().hex[:10]}"
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
    await migrate(url, name, SAVINGS_DIR)
    return name, url


async def drop_schema(admin_url: str, name: str, attempts: int = 30) -> None:
    for attempt in range(attempts):
        try:
            conn = await asyncpg.connect(admin_url)
            try:
                await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
                await conn.execute(f"DROP OWNED BY {name} CASCADE")
                await conn.execute(f"DROP ROLE IF EXISTS {name}")
            finally:
                await conn.close()
            return
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(2.0)


async def drop_leftovers(admin_url: str) -> list[str]:
    conn = await asyncpg.connect(admin_url)
    try:
        names = [r["rolname"] for r in await conn.fetch(
            "SELECT rolname FROM pg_roles WHERE rolname ~ '^bench_sav_[0-9a-f]{10}$'")]
    finally:
        await conn.close()
    for name in names:
        await drop_schema(admin_url, name)
    return names


async def seed(url: str, schema: str, accounts: int, night: date) -> dict[str, Any]:
    progress = Progress(f"savings cob seed {accounts:,} accounts", accounts, every_s=0)
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET maintenance_work_mem = '256MB'")
        await conn.execute(
            "INSERT INTO products (id, version, name, kind, terms, created_by)"
            " VALUES ('bench-voluntary', 1, 'Épargne libre', 'voluntary', $1::jsonb, 'bench')",
            json.dumps(TERMS))
        step = max(1, -(-accounts // SLICES))
        for low in range(1, accounts + 1, step):
            high = min(accounts, low + step - 1)
            await conn.execute(SEED_ACCOUNTS, low, high, night)
            await conn.execute(SEED_LINES, low, high)
            progress.update(high)
        await conn.execute("VACUUM (ANALYZE) accounts")
        await conn.execute("VACUUM (ANALYZE) transactions")
        size = await conn.fetchval(
            "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid)))"
            "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relkind = 'r'", schema)
        deposits = await conn.fetchval("SELECT sum(ledger_balance) FROM accounts")
    finally:
        await conn.close()
    seconds = progress.done(f"{size}")
    return {"accounts": accounts, "deposits": str(deposits), "size": size,
            "seed_seconds": round(seconds, 1)}


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
            peaks["rss_kib"] = max(peaks.get("rss_kib", 0), rss)
            try:
                await asyncio.wait_for(stop.wait(), 0.05)
            except TimeoutError:
                pass
    finally:
        await conn.close()


async def _echo(stream: asyncio.StreamReader, keep: list[str]) -> None:
    """The command's output: its progress lines shown as they come, all of it kept."""
    while line := await stream.readline():
        text = line.decode(errors="replace").rstrip()
        keep.append(text)
        if "close of business" in text and not text.startswith('{"business_date"'):
            try:
                text = str(json.loads(text).get("message", text))
            except (ValueError, AttributeError):
                pass
            print(f"[bench]   {text[-160:]}", file=sys.stderr, flush=True)


async def night(admin_url: str, url: str, schema: str, day: date) -> dict[str, Any]:
    env = {**os.environ, "NORIA_SAVINGS_DATABASE_URL": url, "NORIA_SAVINGS_DB_SCHEMA": schema,
           "NORIA_SAVINGS_LOG_LEVEL": "INFO"}
    progress = Progress(f"savings cob {day}")
    stop = asyncio.Event()
    peaks: dict[str, int] = {}
    sampler = asyncio.create_task(_sample_backends(admin_url, schema, stop, peaks))
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.savings", "close-of-business", day.isoformat(),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    logs: list[str] = []
    lines: list[str] = []
    echo = asyncio.create_task(_echo(proc.stderr, logs))
    out_task = asyncio.create_task(_echo(proc.stdout, lines))
    py_peak = 0
    while proc.returncode is None:
        py_peak = max(py_peak, _proc_kib(proc.pid, "VmHWM"))
        try:
            await asyncio.wait_for(proc.wait(), 0.05)
        except TimeoutError:
            progress.update(time.monotonic() - started, "running")
    await out_task
    await echo
    wall = time.monotonic() - started
    stop.set()
    await sampler
    if proc.returncode != 0:
        raise RuntimeError("savings close of business failed:\n"
                           + "\n".join((lines + logs)[-40:]))
    result = json.loads(next(ln for ln in reversed(lines)
                             if ln.startswith('{"business_date"')))
    progress.done(f"wall {wall:.1f}s")
    [closed] = result["dates"]
    peak_mib = (py_peak + peaks.get("rss_kib", 0)) / 1024
    return {"business_date": day.isoformat(), "wall_s": round(wall, 2),
            "cob_seconds": closed.get("seconds"),
            "python_peak_rss_mib": round(py_peak / 1024, 1),
            "pg_backend_peak_rss_mib": round(peaks.get("rss_kib", 0) / 1024, 1),
            "peak_total_mib": round(peak_mib, 1),
            "counts": {k: closed[k] for k in ("maturities", "accruals", "postings",
                                              "dormancy") if k in closed}}


async def check(url: str, schema: str, day: date) -> dict[str, Any]:
    """Every accruing account accrued through the night, and not twice."""
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE accrued_through = $1) AS accrued,"
            "       count(*) AS accounts, sum(accrued_interest) AS interest FROM accounts", day)
    finally:
        await conn.close()
    assert row is not None
    return {"accounts_accrued": row["accrued"], "accounts": row["accounts"],
            "interest_accrued": str(round(row["interest"], 2))}


async def run(admin_url: str, accounts: int = ACCOUNTS, today: date | None = None,
              keep: bool = False) -> dict[str, Any]:
    day = night_date(today or datetime.now(UTC).date())
    for name in await drop_leftovers(admin_url):
        print(f"[bench] dropped {name}, left by an earlier run", file=sys.stderr, flush=True)
    schema, url = await create_schema(admin_url)
    try:
        seeded = await seed(url, schema, accounts, day)
        accrued = await night(admin_url, url, schema, day)
        accrued.update(await check(url, schema, day))
        scale = ACCOUNTS / accounts
        return {"schema": schema, "seed": seeded, "accrual_night": accrued,
                "targets": {"seconds": TARGET_SECONDS, "peak_mib": TARGET_MIB,
                            "accounts": ACCOUNTS},
                "within_targets": accounts >= ACCOUNTS
                and accrued["wall_s"] <= TARGET_SECONDS
                and accrued["peak_total_mib"] <= TARGET_MIB,
                "accounts_per_s": round(accounts / accrued["wall_s"]),
                # a smaller run, scaled linearly: the command's start (migrations, pool)
                # is in the wall time but does not grow with the accounts
                "wall_s_extrapolated_to_target": None if scale == 1 else round(
                    accrued["wall_s"] * scale, 1),
                "cob_seconds_extrapolated_to_target": None if scale == 1 else round(
                    (accrued["cob_seconds"] or 0) * scale, 1)}
    finally:
        if not keep:
            await drop_schema(admin_url, schema)


def summary(result: dict[str, Any]) -> str:
    n = result["accrual_night"]
    return (f"savings close of business: {result['seed']['accounts']:,} accounts accrued"
            f" in {n['wall_s']:.1f}s (target {TARGET_SECONDS:.0f}s), peak"
            f" {n['peak_total_mib']:.0f} MiB (target {TARGET_MIB:.0f} MiB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.savings_cob", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=ACCOUNTS)
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    cli = parser.parse_args()

    async def alone() -> dict[str, Any]:
        # the running PostgreSQL's admin URL, read (never provisioned) from infra.sh env
        admin = os.environ.get("NORIA_ADMIN_DATABASE_URL") or os.environ.get(
            "NORIA_DATABASE_URL")
        if not admin:
            from scripts.platform import infra_env
            admin = infra_env()["NORIA_ADMIN_DATABASE_URL"]
        return await run(admin, cli.accounts, keep=cli.keep)

    outcome = asyncio.run(alone())
    print(json.dumps(outcome, indent=2, default=str))
    print(summary(outcome))
