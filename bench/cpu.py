"""Where the cores went: CPU seconds per process, PostgreSQL counted as a whole.

:meth:`CpuMeter.idle` measures the platform at rest; a step's **marginal** cost
per saga is its CPU minus what the same processes spend at rest over the same
wall time, divided by the sagas it completed (polling loops, heartbeats and
other background work are not charged to the sagas, and a short step is not
flattered or penalised by them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_cpu_s(pid: int, *, children: bool = False) -> float | None:
    """utime + stime of ``pid`` (and, with ``children``, of its exited, reaped children:
    cutime + cstime); None when the process is not visible here (gone, or on another
    machine, like a remote database's backend). 10 ms ticks: read it over many
    operations."""
    fields = _stat(pid)
    if fields is None:
        return None
    try:
        ticks = int(fields[11]) + int(fields[12])
        if children:
            ticks += int(fields[13]) + int(fields[14])
    except (IndexError, ValueError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int, *, children: bool = False) -> float:
    return process_cpu_s(pid, children=children) or 0.0


PLATFORM_ROLES = ("noria_clients", "noria_loans", "noria_payments", "noria_notifications")


def is_kafka_broker(cmd: str) -> bool:
    """A command line of the Kafka broker's JVM (not of any java naming kafka)."""
    return cmd.split(" ", 1)[0].endswith("java") and "kafka.Kafka" in cmd


def cmdlines() -> dict[int, str]:
    found = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                raw = (d / "cmdline").read_bytes()
                found[int(d.name)] = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return found


def _machine_busy_s() -> float:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _postmaster(cmds: dict[int, str]) -> int | None:
    """The postmaster: the parent of the ``postgres: …`` processes."""
    for pid, cmd in cmds.items():
        if cmd.startswith("postgres: "):
            fields = _stat(pid)
            if fields is not None:
                return int(fields[1])
    return None


QUIET_CORES = 0.15
"""Idle is idle: a window with more of the machine busy is no baseline (see idle())."""


class CpuMeter:
    """CPU seconds per process over a step: where the two cores went.

    PostgreSQL is counted as a whole: the postmaster's own time, the time of every
    child it has reaped (``cutime``/``cstime``: backends that closed during the step
    take their CPU there, not away) and each live child's. The live backends of the
    platform's roles are also given apart (``postgresql_platform_backends``,
    informative only: it misses backends that exit). Kafka is its JVM.
    ``platform_total`` is the sum of every counted process (the figure to compare on
    a machine others also use); ``machine_busy`` is all cores from /proc/stat;
    ``other`` is what none of the listed processes account for.
    """

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = {name: _cpu_seconds(pid, children=True)
                                for name, pid in self.pids.items()}
        groups: dict[str, dict[int, float]] = {
            "postgresql": {}, "postgresql_platform_backends": {}, "kafka": {}}
        cmds = cmdlines()
        postmaster = _postmaster(cmds)
        if postmaster is not None:
            # negative key: the postmaster with its reaped children, apart from live ones
            groups["postgresql"][-postmaster] = _cpu_seconds(postmaster, children=True)
        for pid, cmd in cmds.items():
            if cmd.startswith("postgres: "):
                cpu = _cpu_seconds(pid)
                groups["postgresql"][pid] = cpu
                if any(r in cmd for r in PLATFORM_ROLES):
                    groups["postgresql_platform_backends"][pid] = cpu
            elif is_kafka_broker(cmd):
                groups["kafka"][pid] = _cpu_seconds(pid)
        snap.update({"_groups": groups, "bench": _cpu_seconds(os.getpid(), children=True),
                     "machine_busy": _machine_busy_s(), "_wall": time.monotonic()})
        return snap

    @staticmethod
    def seconds(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
        out = {k: max(after[k] - before[k], 0.0) for k in after
               if not k.startswith("_") and k in before}
        for group, pids in after["_groups"].items():
            old = before["_groups"].get(group, {})
            # a child that exited since ``before`` moved into the postmaster's cutime
            # (counted there in full): its share in ``before`` is taken back out
            gone = sum(cpu for pid, cpu in old.items() if pid > 0 and pid not in pids)
            total = sum(cpu - old.get(pid, 0.0) for pid, cpu in pids.items())
            out[group] = max(total - (gone if group == "postgresql" else 0.0), 0.0)
        listed = sum(v for k, v in out.items()
                     if k not in ("machine_busy", "postgresql_platform_backends"))
        # what the sagas run on: services, simulators, load generator, PostgreSQL, Kafka
        # (``machine_busy`` adds whatever else the machine was doing)
        out["platform_total"] = listed
        out["other"] = max(out["machine_busy"] - listed, 0.0)
        return out

    @staticmethod
    def share(before: dict[str, Any], after: dict[str, Any], digits: int = 2
              ) -> dict[str, float]:
        wall = after["_wall"] - before["_wall"]
        if wall <= 0:
            return {}
        return {k: round(v / wall, digits)
                for k, v in CpuMeter.seconds(before, after).items()}

    async def idle(self, seconds: float, settle_s: float = 120.0) -> dict[str, float]:
        """CPU seconds per wall second of each counter while nothing is offered.

        Every marginal figure subtracts this rate: measured while the machine is still
        busy (a backlog draining, autovacuum after the seed) it would make every saga
        look cheaper than it is. A window busier than :data:`QUIET_CORES` is measured
        again, for up to ``settle_s``; if none is quiet, the quietest is kept, the
        least flattering one, and the result says ``settled: 0``."""
        started = time.monotonic()
        deadline = started + settle_s
        quietest: dict[str, float] | None = None
        while True:
            before = self.snapshot()
            await asyncio.sleep(seconds)
            share = self.share(before, self.snapshot(), digits=4)
            if quietest is None or share.get("machine_busy", 0.0) < quietest.get(
                    "machine_busy", 0.0):
                quietest = share
            busy = quietest.get("machine_busy", 0.0)
            if busy <= QUIET_CORES or time.monotonic() >= deadline:
                return {**quietest, "settled": 1.0 if busy <= QUIET_CORES else 0.0}
            print(f"[bench] idle CPU: {share.get('machine_busy', 0.0):.2f} cores busy in the"
                  f" last {seconds:g} s (quietest {busy:.2f}), measuring again"
                  f" {time.monotonic() - started:6.1f}s", file=sys.stderr, flush=True)

    @staticmethod
    def marginal_ms(before: dict[str, Any], after: dict[str, Any], idle: dict[str, float],
                    done: int) -> dict[str, float]:
        """CPU milliseconds per completed saga above the idle rate over the same wall time."""
        if not done:
            return {}
        wall = after["_wall"] - before["_wall"]
        return {k: round(max(v - idle.get(k, 0.0) * wall, 0.0) * 1000.0 / done, 2)
                for k, v in CpuMeter.seconds(before, after).items()}
