"""Open-loop load: requests start on a schedule whatever the answers do.

Arrivals are a Poisson process (exponential gaps, a fixed seed per step): real
callers do not arrive evenly spaced, and bursts are what make queues form.
Each request's clock starts at its *scheduled* time, not when a free connection
finally sends it, so a slow system cannot hide its queueing (no coordinated
omission).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

from bench.progress import Progress


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100.0 * len(ordered) + 0.5) - 1))
    return ordered[k]


def latency_ms(values_s: list[float]) -> dict[str, float | None]:
    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000.0, 1)

    return {"p50_ms": ms(percentile(values_s, 50)), "p95_ms": ms(percentile(values_s, 95)),
            "p99_ms": ms(percentile(values_s, 99)),
            "max_ms": ms(max(values_s) if values_s else None)}


Fire = Callable[[int, float], Coroutine[Any, Any, None]]


def poisson(rate: float, seconds: float, seed: int) -> list[float]:
    """Arrival offsets (seconds from the start) of a Poisson process of ``rate`` over
    ``seconds``: exponential gaps, so the count itself varies around rate x seconds."""
    rng = random.Random(seed)
    out: list[float] = []
    t = rng.expovariate(rate)
    while t < seconds:
        out.append(t)
        t += rng.expovariate(rate)
    return out


def evenly(rate: float, seconds: float) -> list[float]:
    """Arrival offsets evenly spaced (the read benchmark's fixed rate)."""
    return [i / rate for i in range(int(rate * seconds))]


async def open_loop(rate: float, seconds: float, fire: Fire, label: str,
                    status: Callable[[], str] | None = None,
                    schedule: list[float] | None = None) -> dict[str, Any]:
    """Call ``fire(i, scheduled_wall_time)`` at each offset of ``schedule`` (default:
    evenly spaced at ``rate``), whatever the earlier calls are doing."""
    offsets = evenly(rate, seconds) if schedule is None else schedule
    progress = Progress(label, seconds)
    tasks: set[asyncio.Task[Any]] = set()
    start_mono = time.monotonic()
    start_wall = time.time()
    total = len(offsets)
    late = 0
    for i, offset in enumerate(offsets):
        delay = start_mono + offset - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.05:
            late += 1
        task = asyncio.create_task(fire(i, start_wall + offset))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        progress.update(time.monotonic() - start_mono,
                        f"{i + 1:,} sent, {len(tasks)} in flight"
                        + (f", {status()}" if status else ""))
    sent_s = time.monotonic() - start_mono
    if tasks:
        await asyncio.wait(tasks)
    progress.done(f"{total:,} sent in {sent_s:.1f}s")
    return {"offered_rate": rate, "seconds": seconds, "sent": total,
            "arrivals": "evenly spaced" if schedule is None else "poisson",
            "generator_late": late, "generator_seconds": round(sent_s, 2)}
