"""A one-line progress display for long benchmark steps (plain text, CI-safe)."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, total: float | None = None, every_s: float = 2.0) -> None:
        self.label = label
        self.total = total
        self.every_s = every_s
        self.started = time.monotonic()
        self._last = 0.0

    def update(self, done: float, extra: str = "") -> None:
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        elapsed = now - self.started
        if self.total:
            pct = 100.0 * done / self.total
            line = f"[bench] {self.label}: {done:,.0f}/{self.total:,.0f} ({pct:5.1f}%)"
        else:
            line = f"[bench] {self.label}: {done:,.0f}"
        print(f"{line} {elapsed:6.1f}s {extra}", file=sys.stderr, flush=True)

    def done(self, extra: str = "") -> float:
        elapsed = time.monotonic() - self.started
        print(f"[bench] {self.label}: done in {elapsed:.1f}s {extra}", file=sys.stderr, flush=True)
        return elapsed
