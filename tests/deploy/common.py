"""What the deployment tests share: paths, the compose file, settings discovery.

The one table to maintain is :data:`RUNNABLES`: every Python module that the compose
file or the Kubernetes manifests run with ``python -m <module>``, and where its
settings class lives. The env-var checks read the settings classes at test time,
so a field added to a settings class is picked up without touching the tests.
"""

from __future__ import annotations

import ast
import base64
import importlib
import importlib.util
import inspect
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices, AliasPath
from pydantic_settings import BaseSettings

from shared.contracts import savings as savings_contracts
from shared.kafka import TOPICS as PLATFORM_TOPICS
from shared.settings import OidcSettings
from tests.deploy.kustomize import Resource, containers, render

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")

SERVICES = ("clients", "loans", "payments", "notifications", "savings")
SERVICE_PORTS = {"clients": 8101, "loans": 8102, "payments": 8103, "notifications": 8104,
                 "savings": 8105}

# Every topic the deployments create: the platform's (shared/kafka.py) and savings' own
# (which the savings service also ensures at start-up).
TOPICS = tuple(dict.fromkeys((*PLATFORM_TOPICS, savings_contracts.EVENTS,
                              savings_contracts.COMMANDS)))

# python -m <module>  ->  where its configuration is read:
#   "pkg.settings:Class"  a pydantic-settings class (``pkg.settings`` alone: the one
#                         pydantic-settings class defined in that module);
#   "environ:pkg"         no settings class: the ``os.environ.get("NORIA_...", default)``
#                         / ``os.getenv`` / ``os.environ[...]`` calls in the package's
#                         source, read statically (the simulators do this).
RUNNABLES: dict[str, str] = {
    "services.clients": "services.clients.settings:ClientsSettings",
    "services.loans": "services.loans.settings:LoansSettings",
    "services.payments": "services.payments.settings:PaymentsSettings",
    "services.notifications": "services.notifications.settings:NotificationsSettings",
    "services.savings": "services.savings.settings:SavingsSettings",
    "simulators.mobile_money": "environ:simulators.mobile_money",
    "simulators.smsc": "environ:simulators.smsc",
    "console": "console.settings:ConsoleSettings",
}

# Production Secrets are not in the repository (deploy/README.md, "Production secrets").
# The drift tests load the prod settings with these example values, shaped as the
# README documents them, so the settings classes' validation still runs.
PROD_SECRET_EXAMPLES: dict[str, dict[str, str]] = {
    **{f"noria-{svc}-db": {
        "database-url": f"postgresql://noria_{svc}:example@db.internal.example:5432/noria"}
       for svc in SERVICES},
    "noria-metrics": {"basic-auth": "prometheus:an-example-scraper-password"},
    "noria-oidc-clients": {"console-secret": "example-console-secret",
                           "admin-secret": "example-admin-secret"},
    "noria-console-session": {"key": "ZXhhbXBsZS1jb25zb2xlLXNlc3Npb24ta2V5LTMyYnk="},
    "noria-keycloak-db": {"jdbc-url": "jdbc:postgresql://db.internal.example:5432/keycloak",
                          "username": "noria_keycloak", "password": "example"},
    "noria-keycloak-admin": {"username": "admin", "password": "example"},
    "noria-payments-provider": {"providers": json.dumps({"wallet": {
        "base_url": "https://mobile-money.example/v1", "api_key": "example",
        "callback_secrets": ["whsec_ZXhhbXBsZS1jYWxsYmFjay1zZWNyZXQ="]}})},
    "noria-notifications-provider": {"providers": json.dumps([{
        "name": "smsc", "kind": "smpp", "host": "smsc.operator.example", "port": 2775,
        "system_id": "noria", "password": "example"}])},
}

# Settings read by browsers, not by the container (the console's own public URL): a
# loopback value there is the operator's machine.
BROWSER_FACING = frozenset({"public_url"})

# Values that would point a container at itself instead of its peer.
LOOPBACK = re.compile(r"\b(127\.0\.0\.1|localhost|::1)\b")


# ---------------------------------------------------------------- YAML / compose


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@cache
def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


@cache
def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for number, line in enumerate(ENV_EXAMPLE.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f".env.example line {number} is not KEY=VALUE: {line!r}"
        assert key not in values, f".env.example defines {key} twice"
        values[key.strip()] = value.strip()
    return values


_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class Reference:
    """One ``${NAME...}`` in the compose file."""

    name: str
    op: str | None
    arg: str | None


def interpolation_references(text: str) -> list[Reference]:
    refs = []
    for m in _INTERPOLATION.finditer(text):
        if m.group("escaped"):
            continue
        name = m.group("braced") or m.group("bare")
        refs.append(Reference(name, m.group("op"), m.group("arg")))
    return refs


def interpolate(value: Any, env: dict[str, str]) -> str:
    """Compose's variable interpolation of one scalar value."""
    text = str(value).lower() if isinstance(value, bool) else str(value)

    def sub(m: re.Match[str]) -> str:
        if m.group("escaped"):
            return "$"
        name = m.group("braced") or m.group("bare")
        op, arg = m.group("op"), m.group("arg") or ""
        current = env.get(name)
        if op == ":-":
            return current if current else arg
        if op == "-":
            return current if current is not None else arg
        if op in (":?", "?") and (current is None or (op == ":?" and not current)):
            raise AssertionError(f"compose requires ${{{name}}}: {arg}")
        return current or ""

    return _INTERPOLATION.sub(sub, text)


def compose_environment(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment", {})
    if isinstance(env, list):
        out: dict[str, Any] = {}
        for item in env:
            key, _, value = str(item).partition("=")
            out[key] = value
        return out
    return dict(env)


def python_module(command: Any) -> tuple[str, list[str]] | None:
    """``["python", "-m", "services.loans", "serve"]`` -> ("services.loans", ["serve"])."""
    if isinstance(command, str):
        command = command.split()
    if not command:
        return None
    command = list(command)
    if Path(str(command[0])).name.startswith("python") and len(command) >= 3 \
            and command[1] == "-m":
        return str(command[2]), [str(c) for c in command[3:]]
    return None


def long_running(args: list[str]) -> bool:
    return "migrate" not in args


# ---------------------------------------------------------------- settings discovery


@dataclass
class SettingsInfo:
    """What one runnable reads from the environment."""

    source: str  # the settings class, or the package whose os.environ reads were scanned
    cls: type[BaseSettings] | None
    env_to_field: dict[str, str] = field(default_factory=dict)
    environ_defaults: dict[str, str | None] = field(default_factory=dict)

    @property
    def required(self) -> dict[str, str]:
        """env name -> field, for fields without a default."""
        if self.cls is None:
            return {e: e for e, d in self.environ_defaults.items() if d is None}
        names = {f: e for e, f in self.env_to_field.items()}
        return {names[name]: name for name, info in self.cls.model_fields.items()
                if info.is_required() and name in names}

    def loopback_defaults(self) -> dict[str, str]:
        """env name -> default text, for fields whose default points at loopback."""
        if self.cls is None:
            return {e: d for e, d in self.environ_defaults.items()
                    if d is not None and LOOPBACK.search(d)}
        out: dict[str, str] = {}
        names: dict[str, str] = {}
        for e, f in self.env_to_field.items():
            names.setdefault(f, e)  # the field's own (prefixed) variable
        for name, info in self.cls.model_fields.items():
            if info.is_required() or name not in names:
                continue
            default = info.get_default(call_default_factory=True)
            text = _as_text(default)
            if LOOPBACK.search(text):
                out[names[name]] = text
        return out


def _as_text(value: Any) -> str:
    def plain(v: Any) -> Any:
        if hasattr(v, "model_dump"):
            return v.model_dump(mode="json")
        if hasattr(v, "get_secret_value"):
            return "<secret>"
        return str(v)

    try:
        return json.dumps(value, default=plain)
    except (TypeError, ValueError):
        return str(value)


class MissingRunnable(Exception):
    """The module a deployment runs has not been written yet."""


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


@cache
def settings_for(module: str) -> SettingsInfo:
    """The settings class of ``python -m <module>``.

    Raises MissingRunnable when the module itself does not exist yet, and
    AssertionError with a clear message when it exists without a settings class.
    """
    assert module in RUNNABLES, (
        f"a deployment runs `python -m {module}`, which tests/deploy/common.py RUNNABLES "
        "does not list: add it with the import path of its settings class")
    if not module_exists(module):
        raise MissingRunnable(module)
    where = RUNNABLES[module]
    if where.startswith("environ:"):
        return environ_reads(where.removeprefix("environ:"))
    mod_name, _, cls_name = where.partition(":")
    assert module_exists(mod_name), (
        f"`python -m {module}` exists but its settings module {mod_name} does not: "
        f"its environment variables cannot be checked (update RUNNABLES in "
        f"tests/deploy/common.py if the settings live elsewhere)")
    mod = importlib.import_module(mod_name)
    if cls_name:
        cls = getattr(mod, cls_name, None)
        assert cls is not None, f"{mod_name} has no class {cls_name}"
    else:
        found = [c for _, c in inspect.getmembers(mod, inspect.isclass)
                 if issubclass(c, BaseSettings) and c.__module__ == mod_name]
        assert len(found) == 1, (
            f"{mod_name} must define exactly one pydantic-settings class for "
            f"`python -m {module}`; found {[c.__name__ for c in found]}")
        cls = found[0]
    assert issubclass(cls, BaseSettings), f"{where} is not a pydantic-settings class"
    prefix = str(cls.model_config.get("env_prefix", ""))
    case_sensitive = bool(cls.model_config.get("case_sensitive", False))
    env_to_field: dict[str, str] = {}
    for name, info in cls.model_fields.items():
        alias = info.validation_alias or info.alias
        if isinstance(alias, str):
            names = [alias]
        elif isinstance(alias, AliasChoices):
            names = [c for c in alias.choices if isinstance(c, str)]
        elif isinstance(alias, AliasPath):
            names = [str(alias.path[0])]
        else:
            names = [prefix + name]
        for env_name in names:
            env_to_field[env_name if case_sensitive else env_name.upper()] = name
    if issubclass(cls, OidcSettings):
        # platform-wide variables (NORIA_OIDC_ISSUER, NORIA_METRICS_BASIC_AUTH, ...): each
        # OidcSettings field with a default factory reads NORIA_<FIELD> as its default
        for name, info in OidcSettings.model_fields.items():
            if info.default_factory is not None:
                env_to_field.setdefault(f"NORIA_{name.upper()}", name)
    return SettingsInfo(source=f"{mod_name}.{cls.__name__}", cls=cls, env_to_field=env_to_field)


def environ_reads(package: str) -> SettingsInfo:
    """The NORIA_* variables a package reads with os.environ/os.getenv, and defaults."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None
    folder = Path(spec.origin).parent
    defaults: dict[str, str | None] = {}
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            name, default, found = _environ_read(node)
            if found and name is not None and name.startswith("NORIA_"):
                defaults[name] = default
    assert defaults, (
        f"{package} has no pydantic-settings class and reads no NORIA_* variable with "
        "os.environ/os.getenv: point RUNNABLES in tests/deploy/common.py at its settings")
    return SettingsInfo(source=f"os.environ reads in {package}", cls=None,
                        env_to_field={n: n for n in defaults}, environ_defaults=defaults)


def _environ_read(node: ast.AST) -> tuple[str | None, str | None, bool]:
    """(variable, default source text or None if required, is-an-env-read)."""
    def is_environ(n: ast.AST) -> bool:
        return (isinstance(n, ast.Attribute) and n.attr == "environ") or (
            isinstance(n, ast.Name) and n.id == "environ")

    def const(n: ast.AST) -> str | None:
        return n.value if isinstance(n, ast.Constant) and isinstance(n.value, str) else None

    if isinstance(node, ast.Call) and node.args:
        func = node.func
        getter = (isinstance(func, ast.Attribute) and func.attr == "get"
                  and is_environ(func.value)) or (
            isinstance(func, ast.Attribute) and func.attr == "getenv") or (
            isinstance(func, ast.Name) and func.id == "getenv")
        if getter:
            default = ast.unparse(node.args[1]) if len(node.args) > 1 else "None"
            if isinstance(node.args[1] if len(node.args) > 1 else None, ast.Constant):
                default = str(node.args[1].value)  # type: ignore[attr-defined]
            return const(node.args[0]), default, True
    if isinstance(node, ast.Subscript) and is_environ(node.value) and isinstance(
            node.ctx, ast.Load):
        return const(node.slice), None, True
    return None, None, False


# ---------------------------------------------------------------- Kubernetes


@cache
def rendered(overlay: str) -> tuple[Resource, ...]:
    return tuple(render(K8S / "overlays" / overlay))


def by_kind(resources: tuple[Resource, ...] | list[Resource], kind: str) -> list[Resource]:
    return [r for r in resources if r["kind"] == kind]


def find(resources: tuple[Resource, ...] | list[Resource], kind: str, name: str) -> Resource:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


@dataclass
class ContainerEnv:
    """The environment a Kubernetes container gets, as far as the manifests tell."""

    where: str
    image: str
    command: list[str]
    module: str | None
    args: list[str]
    values: dict[str, str]  # resolved values
    external: set[str]  # set from a Secret that the overlay does not contain


def secret_values(resources: tuple[Resource, ...] | list[Resource]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for res in by_kind(resources, "Secret"):
        data = {k: base64.b64decode("".join(v.split())).decode()
                for k, v in res.get("data", {}).items()}
        data.update(res.get("stringData", {}))
        out[res["metadata"]["name"]] = data
    return out


def container_envs(overlay: str) -> list[ContainerEnv]:
    """Every container of an overlay with its environment.

    A Secret the overlay only references (prod: they come from a secret manager) is
    read from PROD_SECRET_EXAMPLES; such variables are listed in ``external``.
    """
    resources = rendered(overlay)
    config_maps = {r["metadata"]["name"]: r.get("data", {}) for r in by_kind(resources,
                                                                              "ConfigMap")}
    secrets = secret_values(resources)
    fallback = PROD_SECRET_EXAMPLES if overlay == "prod" else {}
    out = []
    for res in resources:
        for c in containers(res):
            where = f"{overlay}: {res['kind']}/{res['metadata']['name']} container {c['name']}"
            values: dict[str, str] = {}
            external: set[str] = set()
            for source in c.get("envFrom", []):
                prefix = source.get("prefix", "")
                if "configMapRef" in source:
                    name = source["configMapRef"]["name"]
                    assert name in config_maps, f"{where}: envFrom ConfigMap {name} not rendered"
                    values.update({prefix + k: str(v) for k, v in config_maps[name].items()})
                elif "secretRef" in source:
                    name = source["secretRef"]["name"]
                    assert name in secrets, (
                        f"{where}: envFrom Secret {name}: keys unknown, list the variables "
                        "with env/secretKeyRef instead")
                    values.update({prefix + k: v for k, v in secrets[name].items()})
            for item in c.get("env", []):
                name = item["name"]
                if "value" in item:
                    values[name] = str(item["value"])
                    continue
                ref = item.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    sname, key = ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]
                    if sname in secrets:
                        assert key in secrets[sname], f"{where}: Secret {sname} has no key {key}"
                        values[name] = secrets[sname][key]
                    else:
                        external.add(name)
                        if key in fallback.get(sname, {}):
                            values[name] = fallback[sname][key]
                elif "configMapKeyRef" in ref:
                    cname, key = ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"]
                    assert key in config_maps.get(cname, {}), f"{where}: no {cname}/{key}"
                    values[name] = str(config_maps[cname][key])
                else:
                    external.add(name)
            command = [*c.get("command", []), *c.get("args", [])]
            parsed = python_module(command)
            module, args = parsed if parsed else (None, [])
            out.append(ContainerEnv(where, c.get("image", ""), command, module, args,
                                    values, external))
    return out
