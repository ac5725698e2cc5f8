"""The real running platform for the browser tests.

``LivePlatform.attach_or_start`` reuses the processes already answering on their
default ports (a developer's ``make up``) and starts the missing ones exactly as
``make up`` does (``python -m <module> serve`` with the environment from
``scripts.platform``), on the default ports so the services and simulators find
each other with their default settings. Only the processes it started are
stopped afterwards. To run the browser tests against another deployment, set
``NORIA_CONSOLE_BROWSER_URL`` (the console) and ``NORIA_CONSOLE_BROWSER_<SERVICE>_URL``.
"""

from __future__ import annotations

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

LOGS = Path(os.environ.get("NORIA_STATE_DIR", ROOT / ".noria")) / "console-browser-logs"
SERVICES = ("clients", "loans", "payments", "notifications", "savings")


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/ready", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class LivePlatform:
    urls: dict[str, str]
    started: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def console(self) -> str:
        return self.urls["console"]

    @classmethod
    def from_environment(cls) -> LivePlatform | None:
        console = os.environ.get("NORIA_CONSOLE_BROWSER_URL")
        if not console:
            return None
        urls = {"console": console.rstrip("/")}
        for name in SERVICES:
            urls[name] = os.environ.get(f"NORIA_CONSOLE_BROWSER_{name.upper()}_URL",
                                        f"http://127.0.0.1:{_port(name)}")
        return cls(urls)

    @classmethod
    def attach_or_start(cls, infra: Infra, timeout_s: float = 120.0) -> LivePlatform:
        env_base = {
            "NORIA_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
            **{f"NORIA_{s.upper()}_DATABASE_URL": infra.service_url(s) for s in SERVICES},
        }
        extra = wiring({p.name: p.port for p in PROCESSES})
        # Everything trusts the tests' issuer and Keycloak; the console signs operators in
        # through Keycloak and, for the tests that paste test-issuer tokens, accepts those.
        test_issuer = os.environ.get("NORIA_OIDC_ISSUER", "")
        extra.setdefault("console", {}).update({
            "NORIA_CONSOLE_OIDC_ISSUER": infra.keycloak_issuer,
            "NORIA_CONSOLE_OIDC_JWKS_URL":
                f"{infra.keycloak_issuer}/protocol/openid-connect/certs",
            "NORIA_CONSOLE_OIDC_EXTRA_ISSUERS": test_issuer,
            "NORIA_CONSOLE_DEV_TOKEN_LOGIN": "true",
            "NORIA_CONSOLE_PUBLIC_URL": next(p.url for p in PROCESSES if p.name == "console"),
        })
        platform = cls({p.name: p.url for p in PROCESSES})
        LOGS.mkdir(parents=True, exist_ok=True)
        for proc in PROCESSES:
            if answers(proc.url):
                continue
            env = process_env(proc, env_base)
            env["NORIA_OIDC_EXTRA_ISSUERS"] = infra.keycloak_issuer
            env.update(extra.get(proc.name, {}))
            if proc.migrate:
                subprocess.run([sys.executable, "-m", proc.module, "migrate"], env=env,
                               cwd=ROOT, check=True, capture_output=True)
            platform._start(proc, env)
        platform._wait_ready(timeout_s)
        return platform

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
            self.stop()
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


def _port(name: str) -> int:
    return next(p.port for p in PROCESSES if p.name == name)
