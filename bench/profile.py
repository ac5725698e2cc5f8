"""Sampling profiles of running services with py-spy (no code change, no restart).

``py-spy record --format raw`` writes collapsed stacks (``frame;frame;… count``).
The summary gives, per process, where the samples were spent: by package of the
innermost frame (asyncpg, aiokafka, pydantic, the service's own code, …) and the
functions that carry the most samples anywhere on the stack among Noria's code.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):(?P<line>\d+)\)$")


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


async def record(pids: dict[str, int], seconds: float, out_dir: Path) -> dict[str, Path]:
    exe = py_spy()
    if exe is None:
        return {}
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    procs = {}
    for name, pid in pids.items():
        path = out_dir / f"{name}.txt"
        procs[name] = (path, await asyncio.create_subprocess_exec(
            exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "97",
            "--full-filenames",
            "--format", "raw", "--output", str(path), "--nonblocking",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL))
    done = {}
    for name, (path, proc) in procs.items():
        await proc.wait()
        if path.exists():
            done[name] = path
    return done


def _package(file: str) -> str:
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    for own in ("services/", "shared/", "simulators/"):
        if own in file:
            rest = file.split(own, 1)[1]
            return own + rest.split("/", 1)[0].removesuffix(".py")
    if "/lib/python3" in file:
        return "stdlib:" + file.rsplit("/", 1)[-1].removesuffix(".py")
    return file.rsplit("/", 1)[-1]


def summarise(path: Path, top: int = 12) -> dict[str, Any]:
    by_package: Counter[str] = Counter()
    own_inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        total += count
        frames = stack.split(";")
        leaf = FRAME.match(frames[-1])
        by_package[_package(leaf.group("file")) if leaf else "?"] += count
        seen: set[str] = set()
        for frame in frames:
            m = FRAME.match(frame)
            if m is None:
                continue
            file = m.group("file")
            if "site-packages" in file or "/lib/python3" in file:
                continue
            where = "/".join(file.split("/")[-2:])
            key = f"{m.group('func')} ({where})"
            if key not in seen:
                seen.add(key)
                own_inclusive[key] += count

    def pct(n: int) -> float:
        return round(100.0 * n / total, 1) if total else 0.0

    return {"samples": total,
            "by_package_pct": {k: pct(v) for k, v in by_package.most_common(top)},
            "own_code_inclusive_pct": {k: pct(v) for k, v in own_inclusive.most_common(top)}}
