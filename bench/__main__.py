"""``python -m bench`` (``make bench``): Noria's figures on this machine, in one run.

1. ceiling: PostgreSQL's commit rate for small single-row write transactions;
2. close of business on a synthetic portfolio in a schema of its own, and savings'
   close of business on 1.24 million accounts (``bench/savings_cob.py``);
3. the services and simulators started as processes, clients and loans seeded
   through the APIs, disbursement sagas at rising offered rates,
   ``GET /v1/loans/{id}`` at a fixed rate, repayment sagas at rising offered
   rates, a py-spy profile of the services under load, and one repayment step
   run with one record per inbox transaction and again batched; the platform
   is stopped whatever happens.

The whole run holds ``/tmp/noria-platform.lock``, the lock every run of the
services takes. Progress goes to stderr, the report to
``reports/bench-<UTC timestamp>.json`` and a summary table to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import platform as host
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench import accruals, ceiling, cob, kafka_requests, profile, sagas, savings_cob
from bench.cpu import CpuMeter
from bench.report import summary_table

ROOT = Path(__file__).resolve().parents[1]
LOCK = Path(os.environ.get("NORIA_PLATFORM_LOCK", "/tmp/noria-platform.lock"))  # noqa: S108 (the agreed lock)
# Every service the platform runs: savings takes part in no saga here, but its consumer
# reads payments' and loans' events like the others, and that is part of a saga's cost.
SERVICES = ["clients", "loans", "mobile-money-sim", "payments", "smsc-sim", "notifications",
            "savings"]


def _inherited_lock() -> int | None:
    """A descriptor of the lock file inherited from ``flock LOCK python -m bench``, if held.

    flock(1) keeps the lock on the descriptor it passes to its command; opening the
    file again and locking it would wait for our own parent forever.
    """
    target = str(LOCK.resolve())
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        return None
    for entry in fd_dir.iterdir():
        try:
            fd = int(entry.name)
            if os.readlink(entry) != target:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours already: succeeds at once
            return fd
        except (OSError, ValueError):
            continue
    return None


@contextlib.contextmanager
def platform_lock() -> Iterator[None]:
    """The lock every run of the shared services takes (``flock`` on the same file)."""
    if _inherited_lock() is not None:
        print(f"[bench] {LOCK} held by the calling flock", file=sys.stderr, flush=True)
        yield  # released when that flock ends, right after us
        return
    with open(LOCK, "a") as fh:
        print(f"[bench] waiting for {LOCK}", file=sys.stderr, flush=True)
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


async def xact_commits(admin_url: str) -> int:
    conn = await asyncpg.connect(admin_url)
    try:
        n: int = await conn.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    finally:
        await conn.close()
    return n


async def phase_cost(cpu: CpuMeter, before: dict[str, Any], commits_before: int,
                     admin_url: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """What one completed saga cost over a whole phase (drains and idle time included,
    so more than the steps' marginal figures): CPU milliseconds per process, commits."""
    after = cpu.snapshot()
    await asyncio.sleep(1.0)  # pg_stat_database is refreshed by each backend at idle
    done = sum(r["completed"] for s in steps for r in s.get("runs", [s]))
    commits = await xact_commits(admin_url) - commits_before
    if not done:
        return {}
    return {"sagas": done, "cpu_cores": CpuMeter.share(before, after),
            "cpu_ms_per_saga": {k: round(v * 1000.0 / done, 2)
                                for k, v in CpuMeter.seconds(before, after).items()},
            # pg_stat_database counts every session: other work on the server included
            "db_commits_per_saga_whole_database": round(commits / done, 1)}


CONSUMING = ("clients", "loans", "payments", "notifications", "savings")
# label, records per transaction, across partitions, linger after a poll (s)
BATCHING_VARIANTS = (("one_per_transaction", "1", "true", "0.005"),
                     ("per_partition", "100", "false", "0.005"),
                     ("across_partitions", "100", "true", "0.005"),
                     ("across_partitions_linger_20ms", "100", "true", "0.02"))


async def compare_batching(args: argparse.Namespace, rate: float, plat: Any, bank: Any,
                           tracker: Any, active: list[Any], ceiling_rate: float,
                           idle_s: float) -> dict[str, Any]:
    """The same repayment step under each of ``BATCHING_VARIANTS`` (or those chosen),
    services restarted between them."""
    seconds = 10.0 if args.quick else 60.0
    drain = 20.0 if args.quick else 60.0
    out: dict[str, Any] = {"offered_rate": rate, "seconds": seconds}
    chosen = args.compare_variants or [v[0] for v in BATCHING_VARIANTS]
    variants = {v[0]: v for v in BATCHING_VARIANTS}
    for label, batch_max, across, linger in (variants[name] for name in chosen):
        for name in CONSUMING:
            m = plat.procs[name]
            m.stop()
            m.env[f"{m.proc.env_prefix}CONSUMER_BATCH_MAX"] = batch_max
            m.env[f"{m.proc.env_prefix}CONSUMER_BATCH_ACROSS_PARTITIONS"] = across
            m.env[f"{m.proc.env_prefix}CONSUMER_LINGER_S"] = linger
            m.start()
        await plat.wait_ready(list(CONSUMING))
        await asyncio.sleep(5.0)  # consumers join their groups
        cpu = CpuMeter({n: m.child.pid for n, m in plat.procs.items() if m.child is not None})
        meter = sagas.Meter(cpu, await cpu.idle(idle_s))
        before, commits = cpu.snapshot(), await xact_commits(plat.infra.admin_url)
        steps = await sagas.repayments(bank, tracker, active, [rate], seconds, drain,
                                       ceiling_rate, meter, repeat=1)
        out[label] = {"step": steps[0] if steps else None,
                      "cost": await phase_cost(cpu, before, commits, plat.infra.admin_url,
                                               steps)}
    return out


async def platform_part(args: argparse.Namespace, infra: Any, ceiling_rate: float,
                        report: dict[str, Any]) -> None:
    """The sagas on a database and topic prefix of this run's own, dropped afterwards.

    Every run starts from the same empty books: the shared database grows with each
    run and a developer's use, and its past is not this run's work (the simulator,
    started afresh, has forgotten every payment of it, so payments' first
    reconciliation round would raise tens of thousands of alerts mid-run)."""
    from tests.infra import own_platform

    with own_platform(infra, "bench") as mine:
        report["database"] = mine.database
        await _platform_part(args, mine, ceiling_rate, report)


async def _platform_part(args: argparse.Namespace, infra: Any, ceiling_rate: float,
                         report: dict[str, Any]) -> None:
    from bench.track import Tracker
    from bench.waits import WaitSampler
    from tests.e2e.bank import Bank
    from tests.e2e.harness import Platform
    from tests.identity import issuer

    # The token issuer the load generator mints with starts before the services: its
    # issuer and JWKS URL go into the environment they are started with, as the test
    # session's do (tests/conftest.py); started later, the services would not trust it.
    issuer()
    plat = Platform.build(infra, names=SERVICES)
    # production saga deadlines (the e2e harness shortens them to watch them expire)
    for key in ("NORIA_LOANS_SAGA_CREDIT_TIMEOUT_S", "NORIA_LOANS_SAGA_PAYOUT_TIMEOUT_S",
                "NORIA_LOANS_SAGA_PAYOUT_GRACE_S"):
        plat.procs["loans"].env.pop(key, None)
    plat.migrate()
    tracker = Tracker(infra.kafka_bootstrap, infra.admin_url, infra.topic_prefix)
    waits = WaitSampler(infra.admin_url, infra.database)
    bank: Bank | None = None
    try:
        await plat.start()
        pids = {n: m.child.pid for n, m in plat.procs.items() if m.child is not None}
        cpu = CpuMeter(pids)
        bank = Bank.connect(plat)
        await tracker.start()
        await waits.start()
        q = args.quick
        seconds = args.step_seconds or (10.0 if q else 60.0)
        drain = 20.0 if q else 60.0
        d_rates = args.disbursement_rates or (
            [5.0, 15.0] if q else [10.0, 20.0, 30.0, 45.0, 60.0, 80.0, 100.0])
        r_rates = args.repayment_rates or (
            [20.0, 60.0] if q else [25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 250.0])
        # Poisson counts vary around rate x seconds: a tenth more than the mean
        loans_needed = int(sum(d_rates) * seconds * sagas.RUNS_PER_STEP * 1.1) + 20
        idle_s = 3.0 if q else 10.0
        seeded = await sagas.seed(bank, loans_needed)
        report["seed"] = {"clients": len(seeded.borrowers), "loans_submitted": loans_needed}

        active: list[Any] = []
        await asyncio.sleep(5.0)  # seeding's SMS and events settle before the idle rates
        meter = sagas.Meter(cpu, await cpu.idle(idle_s), waits, kafka_requests.broker_pid())
        report["idle_cpu_cores"] = meter.idle
        before, commits = cpu.snapshot(), await xact_commits(infra.admin_url)
        report["disbursement"] = await sagas.disbursements(
            bank, tracker, seeded.submitted, d_rates, seconds, drain, ceiling_rate, active,
            meter)
        report["disbursement_cost"] = await phase_cost(
            cpu, before, commits, infra.admin_url, report["disbursement"])
        report["disbursement_sustained"] = sagas.sustained(report["disbursement"])
        report["disbursement_within_p99_1s"] = sagas.sustained(report["disbursement"], 1000.0)
        if not active:
            raise RuntimeError("no loan became active: nothing to repay")
        # reads on a calm platform: the disbursement backlog has finished
        await asyncio.sleep(5.0)
        report["reads"] = await sagas.reads(bank, [loan_id for loan_id, _ in active],
                                            args.read_rate, 5.0 if q else 30.0)
        report["reads"]["rate_to_ceiling"] = round(args.read_rate / ceiling_rate, 4)
        before, commits = cpu.snapshot(), await xact_commits(infra.admin_url)
        report["repayment"] = await sagas.repayments(
            bank, tracker, active, r_rates, seconds, drain, ceiling_rate, meter)
        report["repayment_cost"] = await phase_cost(
            cpu, before, commits, infra.admin_url, report["repayment"])
        report["repayment_sustained"] = sagas.sustained(report["repayment"])
        report["repayment_within_p99_1s"] = sagas.sustained(report["repayment"], 1000.0)

        if not args.no_profile:
            best = report["repayment_sustained"] or report["repayment"][0]
            rate = best["offered_rate"]
            prof_s = 10.0 if q else 30.0
            out_dir = Path(args.out_dir) / f"profile-{report['started_at']}"
            recording = asyncio.create_task(profile.record(
                {n: pids[n] for n in ("loans", "payments", "notifications", "mobile-money-sim")},
                prof_s, out_dir))
            before = cpu.snapshot()
            step = await sagas.repayments(bank, tracker, active, [rate], prof_s, drain,
                                          ceiling_rate, repeat=1)
            files = await recording
            report["profile"] = {
                "under": f"repayments offered at {rate:g}/s for {prof_s:g}s",
                "step": step[0] if step else None, "dir": str(out_dir),
                "cpu_cores": CpuMeter.share(before, cpu.snapshot()),
                "processes": {n: profile.summarise(p) for n, p in files.items()}}

        if not args.no_compare_batching:
            rate = args.compare_rate or (
                report["repayment_sustained"] or report["repayment"][0])["offered_rate"]
            report["batching_comparison"] = await compare_batching(
                args, rate, plat, bank, tracker, active, ceiling_rate, idle_s)

    finally:
        await waits.stop()
        await tracker.stop()
        if bank is not None:
            await bank.http.aclose()
        plat.stop()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from tests.infra import provision

    started = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report: dict[str, Any] = {
        "started_at": started, "command": " ".join(["python", "-m", "bench", *sys.argv[1:]]),
        "quick": args.quick,
        "machine": {"cpus": os.cpu_count(), "platform": host.platform(),
                    "python": host.python_version(),
                    "git": subprocess.run(  # noqa: ASYNC221 (once, before anything runs)
                        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                        capture_output=True, text=True).stdout.strip()}}
    infra = await asyncio.to_thread(provision)
    report["postgresql"] = await ceiling.server_settings(infra.admin_url)

    seconds = 3.0 if args.quick else 10.0
    runs = [await ceiling.commit_rate(infra.admin_url, c, seconds)
            for c in args.ceiling_concurrency]
    report["ceiling_runs"] = runs
    platform_c = max(args.ceiling_concurrency)
    reference = next(r for r in runs if r["concurrency"] == platform_c)
    report["ceiling"] = reference
    ceiling_rate = float(reference["commits_per_s"])

    if not args.skip_cob:
        c = await cob.run(infra.admin_url,
                          args.cob_loans or (100_000 if args.quick else 1_240_000))
        for night in ("catch_up_night", "normal_night"):
            loans_per_s = c["seed"]["loans"] / c[night]["wall_s"]
            c[night]["loans_per_s"] = round(loans_per_s)
            c[night]["loans_per_s_to_ceiling"] = round(loans_per_s / ceiling_rate, 2)
        report["close_of_business"] = c
    if not args.skip_savings_cob:
        report["savings_close_of_business"] = await savings_cob.run(
            infra.admin_url,
            args.savings_accounts or (100_000 if args.quick else savings_cob.ACCOUNTS))
    if not args.skip_accruals:  # payments' accruals for the night (bench/accruals.py)
        # as production posts them (the service's accrual workers), against one worker
        report["payments_accruals"] = await accruals.run(
            infra.admin_url, 100_000 if args.quick else accruals.LOANS, against_workers=1)
    if not args.skip_platform:
        await platform_part(args, infra, ceiling_rate, report)
    return report


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="short steps and a smaller portfolio (development)")
    p.add_argument("--cob-loans", type=int, help="portfolio size (default 1 240 000)")
    p.add_argument("--skip-cob", action="store_true")
    p.add_argument("--savings-accounts", type=int,
                   help="savings close of business: accounts (default 1 240 000)")
    p.add_argument("--skip-savings-cob", action="store_true")
    p.add_argument("--skip-accruals", action="store_true",
                   help="skip payments' accruals for 1.24 million loans")
    p.add_argument("--skip-platform", action="store_true",
                   help="only the ceiling and the close of business (no services started)")
    p.add_argument("--step-seconds", type=float, help="seconds per offered rate (default 60)")
    p.add_argument("--disbursement-rates", type=float, nargs="+")
    p.add_argument("--repayment-rates", type=float, nargs="+")
    p.add_argument("--read-rate", type=float, default=500.0)
    p.add_argument("--ceiling-concurrency", type=int, nargs="+", default=[1, 4, 16, 40],
                   help="the last (largest) is the platform's: 4 services x a pool of 10")
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--no-compare-batching", action="store_true",
                   help="skip the repayment step run once per inbox batching variant"
                        " (services restarted in between)")
    p.add_argument("--compare-variants", nargs="+", choices=[v[0] for v in BATCHING_VARIANTS],
                   help="the batching variants to compare, in this order (default: all)")
    p.add_argument("--compare-rate", type=float,
                   help="offered rate of that step (default: the sustained repayment rate)")
    p.add_argument("--out-dir", default=str(ROOT / "reports"))
    return p.parse_args(argv)


if __name__ == "__main__":
    arguments = parse(sys.argv[1:])
    # The whole run holds the lock the end-to-end tests take: they start the same
    # services, and some restart PostgreSQL and Kafka, which no figure here survives.
    try:  # the load generator's own CPU is counted: the cheaper loop where installed
        import uvloop

        run: Any = uvloop.run
    except ImportError:
        run = asyncio.run
    with platform_lock():
        result = run(main(arguments))
    out = Path(arguments.out_dir) / f"bench-{result['started_at']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(summary_table(result))
    print(f"\nreport: {out}")
