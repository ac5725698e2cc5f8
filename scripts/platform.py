"""Start, check and stop Noria's own processes (the services and simulators).

``python -m scripts.platform up`` runs each service's migrations, starts every
process in the background with its log under ``.noria/logs``, waits until each
answers ``/health/ready`` and prints the URLs. PostgreSQL and Kafka come from
``scripts/infra/infra.sh`` (``make up`` runs both).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("NORIA_STATE_DIR", ROOT / ".noria"))
LOGS = STATE / "logs"
RUN = STATE / "run"


@dataclass(frozen=True)
class Process:
    name: str
    module: str
    port: int
    env_prefix: str
    uses_database: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    migrate: bool = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


PROCESSES: list[Process] = [
    Process("clients", "services.clients", 8101, "NORIA_CLIENTS_"),
    Process("loans", "services.loans", 8102, "NORIA_LOANS_"),
    Process("mobile-money-sim", "simulators.mobile_money", 8190, "NORIA_SIM_",
            uses_database=False, migrate=False),
    Process("payments", "services.payments", 8103, "NORIA_PAYMENTS_"),
    Process("smsc-sim", "simulators.smsc", 8191, "NORIA_SMSC_", uses_database=False,
            migrate=False, extra_env={"NORIA_SMSC_SMPP_PORT": "2775"}),
    Process("notifications", "services.notifications", 8104, "NORIA_NOTIFICATIONS_"),
    Process("savings", "services.savings", 8105, "NORIA_SAVINGS_"),
    Process("console", "console", 8100, "NORIA_CONSOLE_", uses_database=False, migrate=False),
]


def infra_env() -> dict[str, str]:
    out = subprocess.run([str(ROOT / "scripts/infra/infra.sh"), "env"], check=True,
                         capture_output=True, text=True).stdout
    env: dict[str, str] = {}
    for line in out.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            env[key] = value.strip().strip("'\"")
    return env


def wiring(ports: dict[str, int], *, e2e: bool = False) -> dict[str, dict[str, str]]:
    """How the processes find each other, given each one's HTTP port.

    Returned per process name: the extra environment variables to set. The same
    table serves ``make up`` (default ports) and the end-to-end harness (offset
    ports), so the two cannot drift apart.
    """
    def url(name: str) -> str:
        return f"http://127.0.0.1:{ports[name]}"

    smpp_port = 2775 + (10000 if e2e else 0)
    return {
        "mobile-money-sim": {
            "NORIA_SIM_COLLECTION_CALLBACK_URL":
                f"{url('payments')}/v1/mobile-money/sim/callbacks",
        },
        "payments": {
            "NORIA_PAYMENTS_PROVIDERS": json.dumps(
                {"sim": {"base_url": url("mobile-money-sim")}}),
            "NORIA_PAYMENTS_CALLBACK_BASE_URL": url("payments"),
        },
        "smsc-sim": {"NORIA_SMSC_SMPP_PORT": str(smpp_port)},
        "notifications": {
            "NORIA_NOTIFICATIONS_PROVIDERS": json.dumps([
                {"name": "smsc", "kind": "smpp", "host": "127.0.0.1", "port": smpp_port},
                {"name": "aggregator", "kind": "http",
                 "url": f"{url('smsc-sim')}/aggregator"},
            ]),
        },
        "console": {f"NORIA_CONSOLE_{svc.upper()}_URL": url(svc)
                    for svc in ("clients", "loans", "payments", "notifications")},
    }


def process_env(proc: Process, infra: dict[str, str], *, port: int | None = None
                ) -> dict[str, str]:
    env = dict(os.environ)
    env[f"{proc.env_prefix}KAFKA_BOOTSTRAP"] = infra["NORIA_KAFKA_BOOTSTRAP"]
    if proc.uses_database:
        db = infra.get(f"NORIA_{proc.name.upper()}_DATABASE_URL")
        if db:
            env[f"{proc.env_prefix}DATABASE_URL"] = db
    env[f"{proc.env_prefix}HTTP_PORT"] = str(port or proc.port)
    # the identity provider every process trusts; clients manages partners' clients in it
    for name in ("NORIA_OIDC_ISSUER", "NORIA_KEYCLOAK_URL", "NORIA_KEYCLOAK_ADMIN_CLIENT_SECRET"):
        if infra.get(name):
            env[name] = infra[name]
    env.update(proc.extra_env)
    return env


def pid_of(proc: Process) -> int | None:
    path = RUN / f"{proc.name}.pid"
    if not path.exists():
        return None
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (ValueError, ProcessLookupError, PermissionError):
        return None


def ready(proc: Process) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(f"{proc.url}/health/ready", timeout=2) as resp:  # noqa: S310
            return resp.status == 200, resp.read().decode()[:300]
    except urllib.error.HTTPError as exc:
        return False, exc.read().decode()[:300]
    except OSError as exc:
        return False, str(exc)


def up(names: list[str] | None, timeout_s: float) -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    RUN.mkdir(parents=True, exist_ok=True)
    infra = infra_env()
    selected = [p for p in PROCESSES if not names or p.name in names]
    children: dict[str, subprocess.Popen[bytes]] = {}
    for proc in selected:
        if pid_of(proc) is not None:
            print(f"[platform] {proc.name}: already running")
            continue
        env = process_env(proc, infra)
        env.update(wiring({p.name: p.port for p in PROCESSES}).get(proc.name, {}))
        if proc.migrate:
            print(f"[platform] {proc.name}: migrations")
            subprocess.run([sys.executable, "-m", proc.module, "migrate"], env=env, check=True,
                           cwd=ROOT)
        log = open(LOGS / f"{proc.name}.log", "ab")
        child = subprocess.Popen(
            [sys.executable, "-m", proc.module, "serve"], env=env, cwd=ROOT, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        children[proc.name] = child
        (RUN / f"{proc.name}.pid").write_text(str(child.pid))
        print(f"[platform] {proc.name}: started (pid {child.pid})")
    deadline = time.monotonic() + timeout_s
    pending = list(selected)
    while pending and time.monotonic() < deadline:
        for proc in list(pending):
            ok, _ = ready(proc)
            if ok:
                pending.remove(proc)
            elif proc.name in children and children[proc.name].poll() is not None:
                print(f"[platform] ERROR: {proc.name} exited; see {LOGS / (proc.name + '.log')}",
                      file=sys.stderr)
                return 1
        time.sleep(0.5)
    if pending:
        for proc in pending:
            print(f"[platform] ERROR: {proc.name} not ready after {timeout_s:.0f}s "
                  f"({ready(proc)[1]}); see {LOGS / (proc.name + '.log')}", file=sys.stderr)
        return 1
    print("[platform] ready:")
    for proc in selected:
        print(f"  {proc.name:<14} {proc.url:<24} docs {proc.url}/docs   "
              f"log {LOGS / (proc.name + '.log')}")
    if infra.get("NORIA_KEYCLOAK_URL"):
        print(f"  {'keycloak':<14} {infra['NORIA_KEYCLOAK_URL']:<24} realm "
              f"{infra.get('NORIA_OIDC_ISSUER', '')}")
        if os.environ.get("NORIA_ENV", "development") == "development":
            from scripts.keycloak_dev import PERSONAS, ensure_demo_passwords

            print("[platform] demo operators (development only; sign in to the console):")
            for user, password in ensure_demo_passwords().items():
                print(f"  {user:<8} {password:<14} {PERSONAS.get(user, '')}")
    print("  a token:  make token SUB=amina   |   make token ROLE=partner PARTNER=agent-7")
    return 0


def down() -> int:
    for proc in reversed(PROCESSES):
        pid = pid_of(proc)
        if pid is None:
            continue
        os.killpg(pid, signal.SIGTERM)
        for _ in range(100):
            if pid_of(proc) is None:
                break
            time.sleep(0.1)
        else:
            os.killpg(pid, signal.SIGKILL)
        (RUN / f"{proc.name}.pid").unlink(missing_ok=True)
        print(f"[platform] {proc.name}: stopped")
    return 0


def status() -> int:
    for proc in PROCESSES:
        ok = ready(proc)[0]
        state = "ready" if ok else ("running" if pid_of(proc) else "stopped")
        print(f"  {proc.name:<14} {state:<8} {proc.url}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    if args.command == "up":
        raise SystemExit(up(args.names, args.timeout))
    raise SystemExit(down() if args.command == "down" else status())


if __name__ == "__main__":
    main()
