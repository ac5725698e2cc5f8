"""Disbursement and repayment sagas end to end, and loan reads, on a real platform.

The platform is every service and simulator as its own process (the end-to-end
harness), started by :func:`bench.run` under the shared platform lock.
Seeding goes through the public APIs only: partners onboard clients, an
operator verifies them, partners apply for loans. The disbursement benchmark
then approves those loans at rising rates (each approval a whole saga: credit
reserved, payout to the wallet, loan active, SMS); the repayment benchmark
sends collections through the mobile-money simulator, which calls payments
back exactly as a provider would.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bench import kafka_requests
from bench.cpu import CpuMeter
from bench.load import latency_ms, open_loop, percentile, poisson
from bench.progress import Progress
from bench.rawhttp import RawPool
from bench.track import Tracker
from bench.waits import WaitSampler, describe
from tests.e2e.bank import Bank, Borrower

LOANS_PER_CLIENT = 4          # 4 x 1 000.00 stays under the first-cycle limit of 5 000.00
PRINCIPAL = "1000.00"
REPAYMENT = "1.00"


@dataclass
class Seeded:
    product_id: str
    borrowers: list[Borrower] = field(default_factory=list)
    submitted: list[tuple[str, Borrower]] = field(default_factory=list)
    active: list[tuple[str, Borrower]] = field(default_factory=list)


async def _bounded(n: int, items: list[Any], work: Callable[[Any], Awaitable[Any]],
                   label: str) -> list[Any]:
    sem = asyncio.Semaphore(n)
    progress = Progress(label, len(items))
    done = 0

    async def one(item: Any) -> Any:
        nonlocal done
        async with sem:
            result = await work(item)
        done += 1
        progress.update(done)
        return result

    results = await asyncio.gather(*(one(i) for i in items))
    progress.done()
    return list(results)


async def seed(bank: Bank, loans: int, concurrency: int = 16) -> Seeded:
    product = await bank.product(name="Bench mensuel", annual_rate="0.24", max_term=12,
                                 min_principal="500.00")
    seeded = Seeded(product)
    clients = -(-loans // LOANS_PER_CLIENT)
    partner = f"partner-bench-{random.randint(0, 99999):05d}"
    seeded.borrowers = await _bounded(
        concurrency, list(range(clients)),
        lambda _: bank.onboard(language=random.choice(["fr", "ar"]), partner=partner),
        f"seed {clients} clients")

    async def apply(i: int) -> tuple[str, Borrower]:
        who = seeded.borrowers[i // LOANS_PER_CLIENT]
        return await bank.apply(who, product, PRINCIPAL, 12), who

    seeded.submitted = await _bounded(concurrency, list(range(loans)), apply,
                                      f"seed {loans} loan applications")

    async def cash_in(who: Borrower) -> None:
        await bank.call("POST", "mobile-money-sim", "/sim/cash-in", headers={}, expect=201,
                        json={"msisdn": who.phone, "amount": "100000.00"})

    await _bounded(concurrency, seeded.borrowers, cash_in, "wallets cashed in")
    return seeded


@dataclass
class Request:
    t0: float
    key: str = ""
    ok: bool = False
    error: str = ""
    refused: bool = False  # its first callback was refused or unanswered: retried


# callback answers the provider retries (the simulator too): a refusal, after its
# Retry-After, and no answer at all (a timeout); a 500 stays an error
RETRIED = (503, None)
TAIL_S = 10.0      # a step keeps up when the p99 of its last 10 s is within 1 s
TAIL_P99_MS = 1000.0
RUNS_PER_STEP = 2  # every offered rate is run twice; both are reported


def _summarise(step: dict[str, Any], requests: list[Request],
               done_at: Callable[[Request], float | None], ceiling: float,
               start_wall: float) -> dict[str, Any]:
    lat: list[float] = []
    tail: list[float] = []
    tail_from = start_wall + max(step["seconds"] - TAIL_S, 0.0)
    last = 0.0
    for r in requests:
        at = done_at(r) if r.ok else None
        if at is not None:
            lat.append(max(at - r.t0, 0.0))
            last = max(last, at)
        if r.t0 >= tail_from:
            tail.append(max(at - r.t0, 0.0) if at is not None else float("inf"))
    first = min((r.t0 for r in requests), default=0.0)
    span = max(last - first, step["seconds"]) if lat else 0.0
    throughput = len(lat) / span if span else 0.0
    errors: dict[str, int] = {}
    for r in requests:
        if not r.ok:
            errors[r.error] = errors.get(r.error, 0) + 1
    tail_p99 = percentile(tail, 99)
    return {**step, "accepted": sum(r.ok for r in requests), "completed": len(lat),
            # accepted at the provider, the callback refused at first and retried by it
            "refused_then_retried": sum(r.refused for r in requests),
            "incomplete": len(requests) - len(lat), "errors": errors,
            "throughput_per_s": round(throughput, 1),
            "throughput_to_ceiling": round(throughput / ceiling, 4) if ceiling else None,
            **latency_ms(lat),
            # None: some saga of the last 10 s never completed within the drain
            "tail_p99_ms": (None if tail_p99 is None or tail_p99 == float("inf")
                            else round(tail_p99 * 1000.0, 1)),
            "tail_sagas": len(tail)}


async def _drain(requests: list[Request], done_at: Callable[[Request], float | None],
                 timeout_s: float, label: str) -> None:
    progress = Progress(f"{label} drain", len(requests))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        n = sum(1 for r in requests if not r.ok or done_at(r) is not None)
        progress.update(n, f"{len(requests) - n} sagas not complete yet")
        if n == len(requests):
            return
        await asyncio.sleep(0.5)


@dataclass
class Meter:
    """How a step's CPU is measured: the meter and the platform's idle rates."""

    cpu: CpuMeter | None = None
    idle: dict[str, float] = field(default_factory=dict)
    waits: WaitSampler | None = None
    kafka_pid: int | None = None  # the broker whose requests a step counts


async def _step(kind: str, rate: float, run: int, seconds: float, drain_s: float,
                ceiling: float, requests_for: Callable[[int], list[Request]],
                send: Callable[[Request], Awaitable[None]],
                done_at: Callable[[Request], float | None], meter: Meter,
                sent: Callable[[], str] | None = None) -> tuple[dict[str, Any], list[Request]]:
    """One run of one offered rate: Poisson arrivals, drain, summary with its CPU."""
    schedule = poisson(rate, seconds, seed=int(rate * 1000) * 10 + run)
    requests = requests_for(len(schedule))

    async def fire(i: int, t0: float) -> None:
        r = requests[i]
        r.t0 = t0
        await send(r)

    label = f"{kind} {rate:g}/s run {run}"
    # read outside the CPU window: the reader is a JVM of its own
    kafka_before = await kafka_requests.snapshot(meter.kafka_pid)
    before = meter.cpu.snapshot() if meter.cpu else None
    waits_before = meter.waits.snapshot() if meter.waits else None
    start_wall = time.time()
    step = await open_loop(rate, seconds, fire, label, sent, schedule=schedule)
    await _drain(requests, done_at, drain_s, label)
    summary = _summarise({**step, "run": run}, requests, done_at, ceiling, start_wall)
    if meter.cpu is not None and before is not None:
        after = meter.cpu.snapshot()
        summary["cpu_cores"] = CpuMeter.share(before, after)
        summary["cpu_ms_per_saga"] = CpuMeter.marginal_ms(before, after, meter.idle,
                                                          summary["completed"])
        summary["cpu_ms_per_saga_gross"] = CpuMeter.marginal_ms(before, after, {},
                                                                summary["completed"])
    if meter.waits is not None and waits_before is not None:
        summary["db_sessions"] = WaitSampler.window(waits_before, meter.waits.snapshot())
    if kafka_before is not None:
        summary["kafka_requests_per_saga"] = kafka_requests.per_saga(
            kafka_before, await kafka_requests.snapshot(meter.kafka_pid),
            summary["completed"])
    _print_step(kind, summary)
    return summary, requests


def _combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A rate's figure: its worse run (one that does not keep up, else the slower), with
    every run kept under ``runs``."""
    worst = min(runs, key=lambda s: (_keeps_up(s), s["throughput_per_s"]))
    return {**worst, "runs": runs}


async def disbursements(bank: Bank, tracker: Tracker, pool: list[tuple[str, Borrower]],
                        rates: list[float], seconds: float, drain_s: float,
                        ceiling: float, active: list[tuple[str, Borrower]],
                        meter: Meter | None = None, repeat: int = RUNS_PER_STEP
                        ) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    http = RawPool(bank.platform.url("loans"), bank.checker, connections=128)
    meter = meter or Meter()
    batch: list[tuple[str, Borrower]] = []
    requests: list[Request] = []

    def done_at(r: Request) -> float | None:
        return tracker.disbursement_done_at(r.key)

    def requests_for(n: int) -> list[Request]:
        nonlocal batch
        if n > len(pool):
            raise LookupError(f"only {len(pool)} loans left")
        batch, pool[:] = pool[:n], pool[n:]
        return [Request(0.0, loan_id) for loan_id, _ in batch]

    async def send(r: Request) -> None:
        try:
            status, _ = await http.request("POST", f"/v1/loans/{r.key}/approve", b"{}")
            r.ok = status == 200
            r.error = "" if r.ok else f"HTTP {status}"
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            r.error = type(exc).__name__

    try:
        for rate in rates:
            runs = []
            for run in range(1, repeat + 1):
                try:
                    summary, requests = await _step(
                        "disbursement", rate, run, seconds, drain_s, ceiling, requests_for,
                        send, done_at, meter)
                except LookupError as exc:
                    print(f"[bench] disbursement {rate:g}/s skipped: {exc}", file=sys.stderr,
                          flush=True)
                    break
                runs.append(summary)
                active.extend(b for b, r in zip(batch, requests, strict=True)
                              if done_at(r) is not None)
                if _saturated(summary):
                    break
            if not runs:
                break
            steps.append(_combine(runs))
            if any(_saturated(s) for s in runs):
                break
        if steps and steps[-1]["incomplete"]:
            # let the backlog of a saturated step finish before anything else is measured
            await _drain(requests, done_at, 3 * drain_s, "disbursement backlog")
            active.extend(b for b, r in zip(batch, requests, strict=True)
                          if done_at(r) is not None and b not in active)
    finally:
        await http.close()
    return steps


def sustained(steps: list[dict[str, Any]], p99_ms: float | None = None
              ) -> dict[str, Any] | None:
    """The step of the highest rate every run of which kept up — not saturated and the
    p99 of its last 10 s within 1 s, so its queue did not grow — (and, with ``p99_ms``,
    whose whole-step p99 is within it)."""
    def ok(s: dict[str, Any]) -> bool:
        return _keeps_up(s) and (
            p99_ms is None or (s["p99_ms"] is not None and s["p99_ms"] <= p99_ms))

    kept = [s for s in steps if all(ok(r) for r in s.get("runs", [s]))]
    return max(kept, key=lambda s: s["throughput_per_s"]) if kept else None


def _saturated(step: dict[str, Any]) -> bool:
    """The platform no longer keeps up: a higher offered rate would only queue."""
    return bool(step["completed"] < 0.9 * step["sent"]
            or step["throughput_per_s"] < 0.8 * step["offered_rate"])


def _keeps_up(step: dict[str, Any]) -> bool:
    tail = step.get("tail_p99_ms")
    return not _saturated(step) and tail is not None and tail <= TAIL_P99_MS


async def repayments(bank: Bank, tracker: Tracker, active: list[tuple[str, Borrower]],
                     rates: list[float], seconds: float, drain_s: float,
                     ceiling: float, meter: Meter | None = None,
                     repeat: int = RUNS_PER_STEP) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    http = RawPool(bank.platform.url("mobile-money-sim"), connections=256)
    meter = meter or Meter()
    sent = 0

    def done_at(r: Request) -> float | None:
        return tracker.repayment_done_at(r.key) if r.key else None

    def requests_for(n: int) -> list[Request]:
        return [Request(0.0) for _ in range(n)]

    async def send(r: Request) -> None:
        nonlocal sent
        loan_id, who = active[sent % len(active)]
        sent += 1
        try:
            status, body = await http.post_json("/sim/collections", {
                "msisdn": who.phone, "amount": REPAYMENT, "reference": loan_id})
            body = body if isinstance(body, dict) else {}
            callbacks = body.get("callbacks") or []
            r.key = str(body.get("transactionReference", ""))
            # A callback refused 503 (+ Retry-After) or not answered is retried by the
            # provider, as a real one does: the saga is still under way, its latency
            # running from here.
            answers = [c.get("status") for c in callbacks]
            r.refused = any(a in RETRIED for a in answers)
            r.ok = (status == 201 and bool(callbacks)
                    and all(a in (200, 201, 202, 204) or a in RETRIED for a in answers))
            if not r.ok:
                r.error = (f"HTTP {status}" if status != 201 else
                           f"callback {callbacks[0].get('status') if callbacks else None}")
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            r.error = type(exc).__name__

    try:
        for rate in rates:
            runs = []
            last: list[Request] = []
            for run in range(1, repeat + 1):
                summary, last = await _step("repayment", rate, run, seconds, drain_s,
                                            ceiling, requests_for, send, done_at, meter)
                runs.append(summary)
                if _saturated(summary):
                    break
            steps.append(_combine(runs))
            if any(_saturated(s) for s in runs):
                await _drain(last, done_at, 3 * drain_s, "repayment backlog")
                break
    finally:
        await http.close()
    return steps


async def reads(bank: Bank, loan_ids: list[str], rate: float, seconds: float) -> dict[str, Any]:
    pool = RawPool(bank.platform.url("loans"), bank.maker)
    lat: list[float] = []
    errors: dict[str, int] = {}

    async def fire(i: int, t0: float) -> None:
        try:
            status = await pool.get(f"/v1/loans/{loan_ids[i % len(loan_ids)]}")
            if status == 200:
                lat.append(time.time() - t0)
                return
            key = f"HTTP {status}"
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            key = type(exc).__name__
        errors[key] = errors.get(key, 0) + 1

    try:
        step = await open_loop(rate, seconds, fire, f"GET /v1/loans/{{id}} {rate:g}/s")
    finally:
        await pool.close()
    return {**step, "ok": len(lat), "errors": errors, **latency_ms(lat)}


def _print_step(kind: str, s: dict[str, Any]) -> None:
    cpu = s.get("cpu_ms_per_saga") or {}
    print(f"[bench] {kind} offered {s['offered_rate']:g}/s (run {s.get('run', 1)}, "
          f"{s['sent']} Poisson arrivals): {s['throughput_per_s']}/s done, "
          f"p50 {s['p50_ms']} ms p99 {s['p99_ms']} ms, last-10s p99 {s['tail_p99_ms']} ms, "
          f"{s['incomplete']} incomplete {s['errors'] or ''}"
          + (f", {s['refused_then_retried']} callbacks refused 503 or unanswered,"
             " retried by the provider"
             if s.get("refused_then_retried") else "")
          + (f"; marginal CPU {cpu.get('platform_total', 0):.1f} ms/saga (machine "
             f"{cpu.get('machine_busy', 0):.1f})" if cpu else "")
          + (f"; database sessions in a transaction: {describe(s['db_sessions'])}"
             if s.get("db_sessions") else "")
          + (f"; Kafka: {kafka_requests.describe(s['kafka_requests_per_saga'])}"
             if s.get("kafka_requests_per_saga") else ""),
          file=sys.stderr, flush=True)
