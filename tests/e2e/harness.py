"""The end-to-end harness: Noria's processes started for real on loopback.

Each service and simulator runs as its own OS process (``python -m …``), on
ports offset from the defaults so a developer's ``make up`` is not disturbed,
with its log under ``.noria/e2e-logs``. Any process can be SIGKILLed and
restarted at any moment.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from scripts.platform import PROCESSES, Process, process_env, wiring
from tests.infra import ROOT, Infra

LOGS = Path(os.environ.get("NORIA_STATE_DIR", ROOT / ".noria")) / "e2e-logs"
PORT_OFFSET = 10000

# Deadlines short enough for a test to watch a saga run out of time, and a
# close of business that runs only when an operator asks.
E2E_ENV: dict[str, dict[str, str]] = {
    "loans": {
        "NORIA_LOANS_SAGA_CREDIT_TIMEOUT_S": "30",
        "NORIA_LOANS_SAGA_PAYOUT_TIMEOUT_S": "20",
        "NORIA_LOANS_SAGA_PAYOUT_GRACE_S": "10",
        "NORIA_LOANS_SWEEPER_INTERVAL_S": "1",
        "NORIA_LOANS_COB_SCHEDULE_ENABLED": "false",
    },
    "payments": {"NORIA_PAYMENTS_PAYOUT_EXPIRY_GRACE_S": "2"},
    # No quiet hours (start == end): the suite runs at any hour, and a non-urgent SMS
    # created after 21:00 in Casablanca would otherwise wait for 08:00. Quiet hours
    # have their own tests with a fixed clock (tests/unit/notifications).
    "notifications": {"NORIA_NOTIFICATIONS_QUIET_START_HOUR": "0",
                      "NORIA_NOTIFICATIONS_QUIET_END_HOUR": "0"},
    "savings": {"NORIA_SAVINGS_COB_SCHEDULE_ENABLED": "false"},
}


@dataclass
class Managed:
    proc: Process
    port: int
    env: dict[str, str]
    child: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        log = open(LOGS / f"{self.proc.name}.log", "ab")
        self.child = subprocess.Popen(
            [sys.executable, "-m", self.proc.module, "serve"], env=self.env, cwd=ROOT,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, exactly like a crash."""
        if self.child is not None and self.child.poll() is None:
            os.killpg(self.child.pid, signal.SIGKILL)
            self.child.wait(10)

    def stop(self) -> None:
        if self.child is not None and self.child.poll() is None:
            os.killpg(self.child.pid, signal.SIGTERM)
            try:
                self.child.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        path = LOGS / f"{self.proc.name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Platform:
    infra: Infra
    procs: dict[str, Managed] = field(default_factory=dict)

    @classmethod
    def build(cls, infra: Infra, names: list[str] | None = None) -> Platform:
        selected = [p for p in PROCESSES if not names or p.name in names]
        ports = {p.name: p.port + PORT_OFFSET for p in PROCESSES}
        infra_env = {
            "NORIA_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
            **{f"NORIA_{s.upper()}_DATABASE_URL": infra.service_url(s)
               for s in ("clients", "loans", "payments", "notifications", "savings")},
        }
        platform = cls(infra)
        extra = wiring(ports, e2e=True)
        for proc in selected:
            env = process_env(proc, infra_env, port=ports[proc.name])
            env.update(extra.get(proc.name, {}))
            env.update(E2E_ENV.get(proc.name, {}))
            platform.procs[proc.name] = Managed(proc, ports[proc.name], env)
        return platform

    def url(self, name: str) -> str:
        return self.procs[name].url

    def migrate(self) -> None:
        for m in self.procs.values():
            if m.proc.migrate:
                subprocess.run([sys.executable, "-m", m.proc.module, "migrate"], env=m.env,
                               cwd=ROOT, check=True, capture_output=True)

    async def start(self, timeout_s: float = 90.0) -> None:
        for m in self.procs.values():
            m.start()
        await self.wait_ready(list(self.procs), timeout_s)

    async def wait_ready(self, names: list[str], timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        pending = set(names)
        async with httpx.AsyncClient(timeout=2.0) as client:
            while pending and time.monotonic() < deadline:
                for name in list(pending):
                    m = self.procs[name]
                    if m.child is not None and m.child.poll() is not None:
                        raise RuntimeError(f"{name} exited ({m.child.returncode}):\n{m.log_tail()}")
                    try:
                        if (await client.get(f"{m.url}/health/ready")).status_code == 200:
                            pending.discard(name)
                    except httpx.HTTPError:
                        pass
                await asyncio.sleep(0.3)
        if pending:
            tails = "\n".join(f"--- {n}:\n{self.procs[n].log_tail()}" for n in pending)
            raise RuntimeError(f"not ready after {timeout_s:.0f}s: {sorted(pending)}\n{tails}")

    async def kill_and_restart(self, name: str, down_for_s: float = 0.0,
                               env: dict[str, str] | None = None) -> None:
        m = self.procs[name]
        m.kill()
        if env:
            m.env.update(env)
        await asyncio.sleep(down_for_s)
        m.start()
        m.restarts += 1
        await self.wait_ready([name])

    def stop(self) -> None:
        for m in reversed(list(self.procs.values())):
            m.stop()
