"""What a step asked of the Kafka broker: its requests per completed saga, by type.

The broker counts every request it serves (``kafka.network:type=RequestMetrics``)
and, per partition, what it fetched and took in (``BrokerTopicMetrics``).
``bench/KafkaRequests.java`` reads those counters over JMX from the broker's own
JVM (the JDK's attach API, run with the JDK's source launcher); a step takes them
before and after and divides the difference by its completed sagas. The counters
are the broker's, not the run's: the bench holds the platform lock, so nothing else
drives the broker meanwhile. Without a JDK, or without the broker on this machine,
the figure is left out (``None``), never guessed.

A Kafka broker spends its CPU per request and per partition a request names, so
these counts say what the ``kafka`` CPU column of a step is made of (Round 8 in
docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from bench.cpu import cmdlines, is_kafka_broker

SOURCE = Path(__file__).with_name("KafkaRequests.java")
TIMEOUT_S = 60.0


def broker_pid() -> int | None:
    """The Kafka broker's JVM on this machine, if there is one."""
    for pid, cmd in cmdlines().items():
        if is_kafka_broker(cmd):
            return pid
    return None


def _java_of(pid: int) -> str:
    """The broker's own ``java``: attaching works best from the same runtime."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return "java"


async def snapshot(pid: int | None) -> dict[str, int] | None:
    """The broker's cumulative counters now, or None when they cannot be read."""
    if pid is None:
        return None
    try:
        proc = await asyncio.create_subprocess_exec(
            _java_of(pid), str(SOURCE), str(pid),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, _err = await asyncio.wait_for(proc.communicate(), TIMEOUT_S)
    except (OSError, TimeoutError):
        return None
    if proc.returncode != 0:
        return None
    try:
        counts = json.loads(out)
    except ValueError:
        return None
    return {str(k): int(v) for k, v in counts.items()} if isinstance(counts, dict) else None


def per_saga(before: dict[str, int] | None, after: dict[str, int] | None,
             completed: int) -> dict[str, float] | None:
    """Each counter's increase per completed saga (those that moved), or None when a
    snapshot is missing, no saga completed, or the broker restarted in between."""
    if before is None or after is None or completed <= 0:
        return None
    moved = {k: after[k] - before.get(k, 0) for k in after}
    if any(v < 0 for v in moved.values()):
        return None
    return {k: round(v / completed, 2) for k, v in sorted(moved.items()) if v > 0}


def describe(per: dict[str, float]) -> str:
    """The step's progress line: the requests that cost the broker most."""
    labels = {"Fetch": "fetches", "partitions:TotalFetchRequests": "partitions fetched",
              "Produce": "produce requests", "OffsetCommit": "offset commits"}
    return ", ".join(f"{label} {per[k]:g}" for k, label in labels.items() if k in per) \
        + " per saga"
