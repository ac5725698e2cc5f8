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

import httpx

from bench.load import latency_ms, open_loop
from bench.progress import Progress
from bench.rawhttp import RawGetPool
from bench.track import Tracker
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


def _summarise(step: dict[str, Any], requests: list[Request],
               done_at: Callable[[Request], float | None], ceiling: float) -> dict[str, Any]:
    lat: list[float] = []
    last = 0.0
    for r in requests:
        at = done_at(r) if r.ok else None
        if at is not None:
            lat.append(max(at - r.t0, 0.0))
            last = max(last, at)
    first = min((r.t0 for r in requests), default=0.0)
    span = max(last - first, step["seconds"]) if lat else 0.0
    throughput = len(lat) / span if span else 0.0
    errors: dict[str, int] = {}
    for r in requests:
        if not r.ok:
            errors[r.error] = errors.get(r.error, 0) + 1
    return {**step, "accepted": sum(r.ok for r in requests), "completed": len(lat),
            "incomplete": len(requests) - len(lat), "errors": errors,
            "throughput_per_s": round(throughput, 1),
            "throughput_to_ceiling": round(throughput / ceiling, 4) if ceiling else None,
            **latency_ms(lat)}


async def _drain(requests: list[Request], done_at: Callable[[Request], float | None],
                 timeout_s: float, label: str) -> None:
    progress = Progress(f"{label} drain", len(requests))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        n = sum(1 for r in requests if not r.ok or done_at(r) is not None)
        progress.update(n)
        if n == len(requests):
            return
        await asyncio.sleep(0.5)


async def disbursements(bank: Bank, tracker: Tracker, pool: list[tuple[str, Borrower]],
                        rates: list[float], seconds: float, drain_s: float,
                        ceiling: float, active: list[tuple[str, Borrower]]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    http = httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=256))
    url = bank.platform.url("loans")

    def done_at(r: Request) -> float | None:
        return tracker.disbursement_done_at(r.key)

    try:
        for rate in rates:
            need = int(rate * seconds)
            if need > len(pool):
                print(f"[bench] disbursement {rate}/s skipped: only {len(pool)} loans left",
                      file=sys.stderr, flush=True)
                break
            batch, pool[:] = pool[:need], pool[need:]
            requests = [Request(0.0, loan_id) for loan_id, _ in batch]

            async def fire(i: int, t0: float, requests: list[Request] = requests) -> None:
                r = requests[i]
                r.t0 = t0
                try:
                    resp = await http.post(f"{url}/v1/loans/{r.key}/approve", json={},
                                           headers=bank.checker)
                    r.ok = resp.status_code == 200
                    r.error = "" if r.ok else f"HTTP {resp.status_code}"
                except httpx.HTTPError as exc:
                    r.error = type(exc).__name__

            step = await open_loop(rate, seconds, fire, f"disbursement {rate:g}/s")
            await _drain(requests, done_at, drain_s, f"disbursement {rate:g}/s")
            summary = _summarise(step, requests, done_at, ceiling)
            steps.append(summary)
            active.extend(b for b, r in zip(batch, requests, strict=True)
                          if done_at(r) is not None)
            _print_step("disbursement", summary)
            if _saturated(summary):
                break
        if steps and steps[-1]["incomplete"]:
            # let the backlog of a saturated step finish before anything else is measured
            await _drain(requests, done_at, 3 * drain_s, "disbursement backlog")
            active.extend(b for b, r in zip(batch, requests, strict=True)
                          if done_at(r) is not None and b not in active)
    finally:
        await http.aclose()
    return steps


def sustained(steps: list[dict[str, Any]], p99_ms: float | None = None
              ) -> dict[str, Any] | None:
    """The step of the highest rate the platform kept up with (and within ``p99_ms``)."""
    kept = [s for s in steps if not _saturated(s)
            and (p99_ms is None or (s["p99_ms"] is not None and s["p99_ms"] <= p99_ms))]
    return max(kept, key=lambda s: s["throughput_per_s"]) if kept else None


def _saturated(step: dict[str, Any]) -> bool:
    """The platform no longer keeps up: a higher offered rate would only queue."""
    return bool(step["completed"] < 0.9 * step["sent"]
            or step["throughput_per_s"] < 0.8 * step["offered_rate"])


async def repayments(bank: Bank, tracker: Tracker, active: list[tuple[str, Borrower]],
                     rates: list[float], seconds: float, drain_s: float,
                     ceiling: float) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    http = httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=256))
    url = bank.platform.url("mobile-money-sim")

    def done_at(r: Request) -> float | None:
        return tracker.repayment_done_at(r.key) if r.key else None

    try:
        for rate in rates:
            n = int(rate * seconds)
            requests = [Request(0.0) for _ in range(n)]

            async def fire(i: int, t0: float, requests: list[Request] = requests) -> None:
                r = requests[i]
                r.t0 = t0
                loan_id, who = active[i % len(active)]
                try:
                    resp = await http.post(f"{url}/sim/collections", json={
                        "msisdn": who.phone, "amount": REPAYMENT, "reference": loan_id})
                    body = resp.json()
                    callbacks = body.get("callbacks") or []
                    r.key = str(body.get("transactionReference", ""))
                    r.ok = (resp.status_code == 201 and bool(callbacks)
                            and all(c.get("status") in (200, 201, 202, 204) for c in callbacks))
                    if not r.ok:
                        r.error = (f"HTTP {resp.status_code}" if resp.status_code != 201 else
                                   f"callback {callbacks[0].get('status') if callbacks else None}")
                except (httpx.HTTPError, ValueError) as exc:
                    r.error = type(exc).__name__

            step = await open_loop(rate, seconds, fire, f"repayment {rate:g}/s")
            await _drain(requests, done_at, drain_s, f"repayment {rate:g}/s")
            summary = _summarise(step, requests, done_at, ceiling)
            steps.append(summary)
            _print_step("repayment", summary)
            if _saturated(summary):
                await _drain(requests, done_at, 3 * drain_s, "repayment backlog")
                break
    finally:
        await http.aclose()
    return steps


async def reads(bank: Bank, loan_ids: list[str], rate: float, seconds: float) -> dict[str, Any]:
    pool = RawGetPool(bank.platform.url("loans"), bank.maker)
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
    print(f"[bench] {kind} offered {s['offered_rate']:g}/s: {s['throughput_per_s']}/s done, "
          f"p50 {s['p50_ms']} ms p99 {s['p99_ms']} ms, {s['incomplete']} incomplete "
          f"{s['errors'] or ''}", file=sys.stderr, flush=True)
