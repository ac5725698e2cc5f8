"""``python -m bench.provider_http``: the client CPU of payments' calls to a provider.

Payments' provider client (``services/payments/providers/gsma.py``) sends a payout
request (``POST /transactions/type/disbursement``) and the status queries
(``GET /transactions/{reference}``) of every disbursement and repayment. This bench
starts the mobile-money simulator as a process of its own (so its CPU is not counted),
then issues ``--requests`` of each kind, one at a time and ``--concurrency`` at a time,
through the real ``ProviderClient`` over each HTTP client variant, alternating the
variants round by round (a, b, a, b, …), and prints this process' CPU time per request
(``time.process_time``) for each, and each variant's ratio to httpx's.

Variants: ``httpx`` (an ``httpx.AsyncClient`` set up as payments' ``Providers`` did
before aiohttp) and ``aiohttp`` (``Providers`` as it is now).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx

from bench.progress import Progress
from services.payments.providers.gsma import (
    Answer,
    ProviderClient,
    ProviderHttp,
    Providers,
    ProviderUnanswered,
)
from services.payments.settings import ProviderConfig

VARIANTS = ("httpx", "aiohttp")


class HttpxSession(ProviderHttp):
    """The provider session as it was: one ``httpx.AsyncClient`` per provider, same
    limits, timeout and JSON body bytes."""

    def __init__(self, cfg: ProviderConfig) -> None:
        super().__init__(cfg.base_url, cfg.request_timeout_s)
        self.client = httpx.AsyncClient(
            base_url=cfg.base_url, timeout=cfg.request_timeout_s, trust_env=False,
            limits=httpx.Limits(max_connections=128, max_keepalive_connections=64,
                                keepalive_expiry=60.0))

    async def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                      json_body: Any = None, params: dict[str, str] | None = None) -> Answer:
        try:
            resp = await self.client.request(method, path, headers=headers, json=json_body,
                                             params=params)
        except httpx.HTTPError as exc:
            raise ProviderUnanswered(f"no answer: {type(exc).__name__}") from exc
        return Answer(resp.status_code, resp.content)

    async def aclose(self) -> None:
        await self.client.aclose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def simulator() -> AsyncIterator[str]:
    """The mobile-money simulator in a process of its own; callbacks lost on purpose
    (nobody listens for them here)."""
    port = free_port()
    env = {**os.environ, "NORIA_SIM_HTTP_PORT": str(port), "NORIA_SIM_LOSE_CALLBACKS": "true",
           "NORIA_SIM_PROCESSING_DELAY_S": "0"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.mobile_money", "serve", env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        async with httpx.AsyncClient(base_url=base, trust_env=False) as probe:
            while True:
                try:
                    if (await probe.get("/health/ready")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.returncode is not None or time.monotonic() > deadline:
                    raise SystemExit("the mobile-money simulator did not start")
                await asyncio.sleep(0.1)
        yield base
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout=10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def client_for(variant: str,
               cfg: ProviderConfig) -> tuple[ProviderClient, Callable[[], Awaitable[None]]]:
    if variant == "httpx":
        session = HttpxSession(cfg)
        return ProviderClient("sim", cfg, session), session.aclose
    providers = Providers({"sim": cfg})
    client = providers.get("sim")
    assert client is not None
    return client, providers.close


def loop_name() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def new_msisdn() -> str:
    return "+2126" + str(uuid.uuid4().int)[:8]


async def a_completed_reference(client: ProviderClient) -> str:
    """A transaction the status queries can ask about."""
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    view = await client.disburse(
        correlation_id=str(uuid.uuid4()), msisdn=new_msisdn(), amount=Decimal("10.00"),
        currency="MAD", callback_url="http://127.0.0.1:9/callbacks", expiry=expiry,
        reference="bench", purpose="disbursement")
    assert view.server_correlation_id is not None, view
    for _ in range(200):
        seen = await client.request_state(view.server_correlation_id)
        if seen.reference is not None:
            return seen.reference
        await asyncio.sleep(0.05)
    raise SystemExit("the simulator did not complete the bench's payout")


async def one_get(client: ProviderClient, reference: str) -> None:
    txn = await client.transaction(reference)
    assert txn is not None and txn.reference == reference


async def one_post(client: ProviderClient, reference: str) -> None:
    view = await client.disburse(
        correlation_id=str(uuid.uuid4()), msisdn=new_msisdn(), amount=Decimal("125.50"),
        currency="MAD", callback_url="http://127.0.0.1:9/callbacks",
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1), reference=reference,
        purpose="disbursement")
    assert view.server_correlation_id is not None, view


async def run_workload(client: ProviderClient, call: Callable[[ProviderClient, str],
                       Awaitable[None]], reference: str, n: int, concurrency: int,
                       progress: Progress | None) -> tuple[float, float]:
    """``n`` calls, ``concurrency`` at a time: (CPU seconds, wall seconds)."""
    done = 0

    async def worker(count: int) -> None:
        nonlocal done
        for _ in range(count):
            await call(client, reference)
            done += 1
            if progress is not None:
                progress.update(done)

    shares = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(k) for k in shares))
    return time.process_time() - cpu0, time.perf_counter() - wall0


WORKLOADS: dict[str, tuple[Callable[[ProviderClient, str], Awaitable[None]], bool]] = {
    "GET status, sequential": (one_get, False),
    "GET status, concurrent": (one_get, True),
    "POST payout, sequential": (one_post, False),
    "POST payout, concurrent": (one_post, True),
}


async def main(n: int, concurrency: int, rounds: int) -> dict[str, Any]:
    # cpu[workload][variant] = CPU seconds per request, one figure per round
    cpu: dict[str, dict[str, list[float]]] = {w: {v: [] for v in VARIANTS} for w in WORKLOADS}
    wall: dict[str, dict[str, list[float]]] = {w: {v: [] for v in VARIANTS} for w in WORKLOADS}
    async with simulator() as base:
        cfg = ProviderConfig(base_url=base, request_timeout_s=5.0)
        for r in range(rounds):
            for variant in VARIANTS:  # alternated: a, b, a, b, …
                client, close = client_for(variant, cfg)
                try:
                    reference = await a_completed_reference(client)
                    for name, (call, concurrent) in WORKLOADS.items():
                        width = concurrency if concurrent else 1
                        await run_workload(client, call, reference, min(200, n), width,
                                           None)  # connections opened, code paths warm
                        progress = Progress(f"round {r + 1}/{rounds} {variant} {name}", n)
                        c, w = await run_workload(client, call, reference, n, width, progress)
                        progress.done(f"{1000 * c / n:.3f} ms CPU/request")
                        cpu[name][variant].append(c / n)
                        wall[name][variant].append(w / n)
                finally:
                    await close()
    print(f"\nclient CPU per request (ms), {n} requests per figure, concurrency "
          f"{concurrency}, {rounds} rounds alternated, {loop_name()}; median over rounds "
          f"[each round's figure]")
    report: dict[str, Any] = {"requests": n, "concurrency": concurrency, "rounds": rounds,
                              "workloads": {}}
    for name in WORKLOADS:
        med = {v: statistics.median(cpu[name][v]) for v in VARIANTS}
        ratio = med["aiohttp"] / med["httpx"]
        rounds_txt = {v: " ".join(f"{1000 * x:.3f}" for x in cpu[name][v]) for v in VARIANTS}
        print(f"  {name:26s} httpx {1000 * med['httpx']:.3f} [{rounds_txt['httpx']}]  "
              f"aiohttp {1000 * med['aiohttp']:.3f} [{rounds_txt['aiohttp']}]  "
              f"ratio {ratio:.2f}  (wall/request httpx "
              f"{1000 * statistics.median(wall[name]['httpx']):.2f} ms, aiohttp "
              f"{1000 * statistics.median(wall[name]['aiohttp']):.2f} ms)")
        report["workloads"][name] = {"cpu_ms": {v: [1000 * x for x in cpu[name][v]]
                                                for v in VARIANTS},
                                     "ratio": ratio}
    return report


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs (a, b)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="event loop (the services run on uvloop when it is installed)")
    args = parser.parse_args()
    run = main(args.requests, args.concurrency, args.rounds)
    if args.loop == "uvloop":
        import uvloop

        report = uvloop.run(run)
    else:
        report = asyncio.run(run)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    cli()
