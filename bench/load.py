"""Open-loop load: requests start on a fixed schedule whatever the answers do.

Each request's clock starts at its *scheduled* time, not when a free connection
finally sends it, so a slow system cannot hide its queueing (no coordinated
omission).
"""

from __future__ import annotations

import asyncio
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


async def open_loop(rate: float, seconds: float, fire: Fire, label: str,
                    status: Callable[[], str] | None = None) -> dict[str, Any]:
    """Call ``fire(i, scheduled_wall_time)`` ``rate`` times a second for ``seconds``."""
    progress = Progress(label, seconds)
    tasks: set[asyncio.Task[Any]] = set()
    start_mono = time.monotonic()
    start_wall = time.time()
    total = int(rate * seconds)
    late = 0
    for i in range(total):
        due = start_mono + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.05:
            late += 1
        task = asyncio.create_task(fire(i, start_wall + i / rate))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        progress.update(time.monotonic() - start_mono,
                        f"{len(tasks)} in flight" + (f", {status()}" if status else ""))
    sent_s = time.monotonic() - start_mono
    if tasks:
        await asyncio.wait(tasks)
    progress.done(f"{total:,} sent in {sent_s:.1f}s")
    return {"offered_rate": rate, "seconds": seconds, "sent": total,
            "generator_late": late, "generator_seconds": round(sent_s, 2)}
