"""The end-to-end harness: Noria's processes started for real on loopback.

Each service and simulator runs as its own OS process (``python -m …``), on
ports offset from the defaults, in a database of its own and with its own topic
prefix and consumer groups (``tests.infra.own_platform``, from the package's
``infra`` fixture), so a developer's ``make up`` is not disturbed, with its log
under ``.noria/e2e-logs``. Any process can be SIGKILLed and
restarted at any moment.

A service may run as several replicas (``NORIA_E2E_REPLICAS``, or :meth:`Platform.scale`
during a test): each on its own port (replica ``n`` of a service at its port + ``1000 *
(n - 1)``), all on the same database and broker, named ``loans``, ``loans#2``, …
:meth:`Platform.url` hands out the replicas' addresses in turn, like a client-side
load balancer. What reaches a service from outside the test (the mobile-money
simulator's callbacks to payments, the console) goes to its front door, a
:class:`~tests.e2e.balancer.Balancer` on the port + 500 that spreads connections over
the replicas and skips one that refuses.
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
from tests.e2e.balancer import Balancer
from tests.infra import ROOT, Infra

LOGS = Path(os.environ.get("NORIA_STATE_DIR", ROOT / ".noria")) / "e2e-logs"
PORT_OFFSET = 10000
REPLICA_PORT_STEP = 1000  # replica n of a service listens on its port + 1000 * (n - 1)
FRONT_PORT_OFFSET = 500   # a service's front door (the balancer) on its port + 500
REPLICAS = int(os.environ.get("NORIA_E2E_REPLICAS", "1"))

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
    # A withdrawal's payout not settled 30 s after it was asked (+ payments' grace) is in
    # doubt, as a disbursement's is after 20 s: the chaos scenario watches it happen.
    "savings": {"NORIA_SAVINGS_COB_SCHEDULE_ENABLED": "false",
                "NORIA_SAVINGS_PAYOUT_DEADLINE_S": "30"},
}


def replicated(proc: Process) -> bool:
    """Services run as replicas; the simulators and the console stay single."""
    return proc.uses_database


@dataclass
class Managed:
    proc: Process
    port: int
    env: dict[str, str]
    child: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    replica: int = 1

    @property
    def name(self) -> str:
        """``loans`` for the first replica, ``loans#2`` for the second, …"""
        return self.proc.name if self.replica == 1 else f"{self.proc.name}#{self.replica}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.child is not None and self.child.poll() is None

    def start(self) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        log = open(LOGS / f"{self.name}.log", "ab")
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
        path = LOGS / f"{self.name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Platform:
    infra: Infra
    procs: dict[str, Managed] = field(default_factory=dict)
    """Every process by name (``loans``, ``loans#2``, ``mobile-money-sim``)."""
    fronts: dict[str, Balancer] = field(default_factory=dict)
    """Each replicated service's front door."""
    _turn: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, infra: Infra, names: list[str] | None = None,
              replicas: int = REPLICAS) -> Platform:
        selected = [p for p in PROCESSES if not names or p.name in names]
        ports = {p.name: p.port + PORT_OFFSET for p in PROCESSES}
        # how the processes find each other: a service through its front door
        fronts = {p.name: ports[p.name] + FRONT_PORT_OFFSET if replicated(p) else ports[p.name]
                  for p in PROCESSES}
        infra_env = {
            "NORIA_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
            **{f"NORIA_{s.upper()}_DATABASE_URL": infra.service_url(s)
               for s in ("clients", "loans", "payments", "notifications", "savings")},
            # the identity provider clients creates partners' clients in, as make up passes
            # it (scripts.platform.process_env); not NORIA_OIDC_ISSUER: the processes
            # trust the session's test issuer (tests.identity), already in the environment
            "NORIA_KEYCLOAK_URL": infra.keycloak_url,
            "NORIA_KEYCLOAK_ADMIN_CLIENT_SECRET": infra.keycloak_admin_secret,
        }
        platform = cls(infra)
        extra = wiring(fronts, e2e=True)
        for proc in selected:
            for n in range(1, (replicas if replicated(proc) else 1) + 1):
                port = ports[proc.name] + REPLICA_PORT_STEP * (n - 1)
                env = process_env(proc, infra_env, port=port)
                if proc.uses_database:  # its own topics and consumer groups
                    env[f"{proc.env_prefix}TOPIC_PREFIX"] = infra.topic_prefix
                env.update(extra.get(proc.name, {}))
                env.update(E2E_ENV.get(proc.name, {}))
                m = Managed(proc, port, env, replica=n)
                platform.procs[m.name] = m
            if replicated(proc):
                platform.fronts[proc.name] = Balancer(
                    fronts[proc.name], [m.port for m in platform.replicas(proc.name)])
        return platform

    def replicas(self, name: str) -> list[Managed]:
        """The replicas of service ``name`` (a simulator: itself)."""
        return [m for m in self.procs.values() if m.proc.name == name]

    def url(self, name: str) -> str:
        """A replica's address: ``name`` given as ``loans#2``, that replica; as ``loans``,
        each replica in turn (the client spreads its requests, like a load balancer)."""
        if name in self.procs and "#" in name:
            return self.procs[name].url
        replicas = self.replicas(name)
        if not replicas:
            return self.procs[name].url
        turn = self._turn.get(name, 0)
        self._turn[name] = turn + 1
        return replicas[turn % len(replicas)].url

    def urls(self, name: str) -> list[str]:
        """Every replica's address, starting with the next one in turn."""
        first = self.url(name)
        urls = [m.url for m in self.replicas(name)]
        i = urls.index(first)
        return urls[i:] + urls[:i]

    def front(self, name: str) -> str:
        """The service's front door (its balancer); a simulator's own address."""
        return self.fronts[name].url if name in self.fronts else self.procs[name].url

    async def scale(self, replicas: int, names: list[str] | None = None) -> list[str]:
        """Run ``replicas`` replicas of each service (``names``: of these only), on the
        same database and broker; returns the names of the replicas started."""
        started: list[str] = []
        for name in sorted({m.proc.name for m in self.procs.values() if replicated(m.proc)}):
            if names and name not in names:
                continue
            first = self.replicas(name)[0]
            for n in range(len(self.replicas(name)) + 1, replicas + 1):
                port = first.port + REPLICA_PORT_STEP * (n - 1)
                env = {**first.env, f"{first.proc.env_prefix}HTTP_PORT": str(port)}
                m = Managed(first.proc, port, env, replica=n)
                self.procs[m.name] = m
                m.start()
                started.append(m.name)
            if name in self.fronts:
                self.fronts[name].backends = [m.port for m in self.replicas(name)]
        await self.wait_ready(started)
        return started

    def migrate(self) -> None:
        for m in self.procs.values():
            if m.proc.migrate and m.replica == 1:
                subprocess.run([sys.executable, "-m", m.proc.module, "migrate"], env=m.env,
                               cwd=ROOT, check=True, capture_output=True)

    async def start(self, timeout_s: float = 90.0) -> None:
        for front in self.fronts.values():
            front.start()
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
        """SIGKILL process ``name`` (one replica: ``loans#2``), restart it after
        ``down_for_s`` and wait until it is ready."""
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
        for front in self.fronts.values():
            front.stop()
