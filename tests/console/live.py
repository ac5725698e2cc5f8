"""A real platform of the browser tests' own.

``LivePlatform.start`` starts every service, simulator and the console exactly as
``make up`` does (``python -m <module> serve`` with the environment from
``scripts.platform``), but on ports offset by +10000 (the end-to-end harness's, which
the development realm's console client accepts as a redirect), in a database and under
a topic prefix of its own (``tests.infra.own_platform``). It never reuses a process
already answering: a developer's ``make up`` is neither used nor disturbed, and a port
already taken fails the start loudly instead of testing someone else's processes.
Everything it started is stopped afterwards and its database dropped.

To run the browser tests against another deployment instead, set
``NORIA_CONSOLE_BROWSER_URL`` (the console) and ``NORIA_CONSOLE_BROWSER_<SERVICE>_URL``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from scripts.platform import PROCESSES, Process, process_env, wiring
from tests.infra import ROOT, Infra, own_platform

LOGS = Path(os.environ.get("NORIA_STATE_DIR", ROOT / ".noria")) / "console-browser-logs"
SERVICES = ("clients", "loans", "payments", "notifications", "savings")
PORT_OFFSET = 10000  # as tests/e2e/harness.py; http://127.0.0.1:18100 is a valid redirect


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/ready", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def listening(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1.0)
    except httpx.ConnectError:
        return False
    except httpx.HTTPError:
        return True
    return True


@dataclass
class LivePlatform:
    urls: dict[str, str]
    topic_prefix: str = ""
    started: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _own: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def console(self) -> str:
        return self.urls["console"]

    def topic(self, canonical: str) -> str:
        """The name this platform's services give topic ``canonical`` (``clients.events``)."""
        return f"{self.topic_prefix}{canonical}"

    @classmethod
    def from_environment(cls) -> LivePlatform | None:
        console = os.environ.get("NORIA_CONSOLE_BROWSER_URL")
        if not console:
            return None
        urls = {"console": console.rstrip("/")}
        for name in (*SERVICES, "mobile-money-sim"):  # the wallets pay at the simulator
            env = name.upper().replace("-", "_")
            urls[name] = os.environ.get(f"NORIA_CONSOLE_BROWSER_{env}_URL",
                                        f"http://127.0.0.1:{_port(name)}")
        return cls(urls)

    @classmethod
    def start(cls, session_infra: Infra, timeout_s: float = 120.0) -> LivePlatform:
        ports = {p.name: p.port + PORT_OFFSET for p in PROCESSES}
        taken = sorted(name for name, port in ports.items() if listening(port))
        if taken:
            raise RuntimeError(
                f"the browser tests' ports are taken ({', '.join(taken)} at +{PORT_OFFSET}):"
                " another test run (the end-to-end platform?) is using them")
        own = contextlib.ExitStack()
        infra = own.enter_context(own_platform(session_infra, "cb"))
        platform = cls({name: f"http://127.0.0.1:{port}" for name, port in ports.items()},
                       topic_prefix=infra.topic_prefix, _own=own)
        try:
            platform._start_all(infra, ports, timeout_s)
        except BaseException:
            platform.stop()
            raise
        return platform

    def _start_all(self, infra: Infra, ports: dict[str, int], timeout_s: float) -> None:
        env_base = {
            "NORIA_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
            **{f"NORIA_{s.upper()}_DATABASE_URL": infra.service_url(s) for s in SERVICES},
        }
        extra = wiring(ports, e2e=True)
        # Everything trusts the tests' issuer and Keycloak; the console signs operators in
        # through Keycloak and, for the tests that paste test-issuer tokens, accepts those.
        test_issuer = os.environ.get("NORIA_OIDC_ISSUER", "")
        extra.setdefault("console", {}).update({
            "NORIA_CONSOLE_SAVINGS_URL": self.urls["savings"],
            "NORIA_CONSOLE_OIDC_ISSUER": infra.keycloak_issuer,
            "NORIA_CONSOLE_OIDC_JWKS_URL":
                f"{infra.keycloak_issuer}/protocol/openid-connect/certs",
            "NORIA_CONSOLE_OIDC_EXTRA_ISSUERS": test_issuer,
            "NORIA_CONSOLE_DEV_TOKEN_LOGIN": "true",
            "NORIA_CONSOLE_PUBLIC_URL": self.console,
        })
        LOGS.mkdir(parents=True, exist_ok=True)
        for proc in PROCESSES:
            env = process_env(proc, env_base, port=ports[proc.name])
            env["NORIA_OIDC_EXTRA_ISSUERS"] = infra.keycloak_issuer
            if proc.uses_database:  # its own topics and consumer groups
                env[f"{proc.env_prefix}TOPIC_PREFIX"] = infra.topic_prefix
            env.update(extra.get(proc.name, {}))
            if proc.migrate:
                subprocess.run([sys.executable, "-m", proc.module, "migrate"], env=env,
                               cwd=ROOT, check=True, capture_output=True)
            self._start(proc, env)
        self._wait_ready(timeout_s)

    def _start(self, proc: Process, env: dict[str, str]) -> None:
        log = open(LOGS / f"{proc.name}.log", "ab")
        self.started[proc.name] = subprocess.Popen(
            [sys.executable, "-m", proc.module, "serve"], env=env, cwd=ROOT, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        pending = dict(self.urls)
        while pending and time.monotonic() < deadline:
            for name, url in list(pending.items()):
                child = self.started.get(name)
                if child is not None and child.poll() is not None:
                    raise RuntimeError(f"{name} exited ({child.returncode}):\n{self.tail(name)}")
                if answers(url):
                    pending.pop(name)
            time.sleep(0.3)
        if pending:
            tails = "\n".join(f"--- {n}\n{self.tail(n)}" for n in pending)
            raise RuntimeError(f"not ready after {timeout_s:.0f}s: {sorted(pending)}\n{tails}")

    def tail(self, name: str, lines: int = 30) -> str:
        path = LOGS / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        for child in reversed(list(self.started.values())):
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in self.started.values():
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(5)
        self.started.clear()
        self._own.close()  # its database and topics


def _port(name: str) -> int:
    return next(p.port for p in PROCESSES if p.name == name)
