"""Config drift: the environment that docker-compose.yml and the Kubernetes overlays
give each Python process must be exactly what its settings class reads.

For every container that runs ``python -m <module>``:
- every ``NORIA_*`` variable it sets is a field of the module's settings class
  (pydantic-settings ignores unknown variables, so a typo or a renamed field would
  otherwise be silently dropped);
- every required field (no default) is set;
- a long-running process sets every field whose default points at loopback
  (``127.0.0.1``/``localhost``: in a container that is the container itself), and no
  value it sets points at loopback;
- the settings class accepts the values (types, validators), loaded from exactly
  that environment.

The settings classes are imported at test time: fields added later are checked
without changing this file. A container naming a module that does not exist, or
one without a settings class, fails.
"""

from __future__ import annotations

import json
import os

import pytest
from pydantic import ValidationError

from tests.deploy.common import (
    BROWSER_FACING,
    LOOPBACK,
    OVERLAYS,
    RUNNABLES,
    MissingRunnable,
    compose,
    compose_environment,
    container_envs,
    env_example,
    interpolate,
    long_running,
    python_module,
    settings_for,
)


def check_environment(where: str, module: str, args: list[str], values: dict[str, str],
                      monkeypatch: pytest.MonkeyPatch, external: frozenset[str] = frozenset()
                      ) -> None:
    try:
        info = settings_for(module)
    except MissingRunnable:
        pytest.fail(f"{where}: runs `python -m {module}`, which does not exist")
    cls = info.source
    given = {name.upper(): value for name, value in values.items()}
    given_names = set(given) | {e.upper() for e in external}
    problems: list[str] = []
    for name in sorted(given_names):
        if name.startswith("NORIA_") and name not in info.env_to_field:
            problems.append(f"{name} is set but {cls} has no such field "
                            f"(it reads {sorted(info.env_to_field)})")
    for env_name, field_name in sorted(info.required.items()):
        if env_name not in given_names:
            problems.append(f"{env_name} is required by {cls}.{field_name} but not set")
    for name in list(os.environ):  # defaults as a container sees them, not this process
        if name.upper().startswith("NORIA_"):
            monkeypatch.delenv(name)
    if long_running(args):
        given_fields = {info.env_to_field.get(n) for n in given_names}
        for env_name, default in sorted(info.loopback_defaults().items()):
            if info.env_to_field.get(env_name) not in given_fields:
                problems.append(f"{env_name} is not set and defaults to {default}: in a "
                                "container that is the container itself; set the peer's address")
        for name, value in sorted(given.items()):
            if name in info.env_to_field and LOOPBACK.search(value) and (
                    info.env_to_field[name] not in BROWSER_FACING):
                problems.append(f"{name}={value} points at the container itself")
    assert not problems, f"{where} (python -m {module}):\n  " + "\n  ".join(problems)

    for name, value in given.items():
        monkeypatch.setenv(name, value)
    if info.cls is None:  # plain os.environ reads: names and defaults checked above
        return
    try:
        info.cls(_env_file=None)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise AssertionError(f"{where}: {cls} rejects this environment:\n{exc}") from None


# ---------------------------------------------------------------- docker compose


def compose_python_services() -> list[str]:
    return sorted(name for name, svc in compose()["services"].items()
                  if python_module(svc.get("command")))


@pytest.mark.parametrize("service", compose_python_services())
def test_compose_environment_matches_settings(service: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    svc = compose()["services"][service]
    parsed = python_module(svc["command"])
    assert parsed is not None
    module, args = parsed
    env = env_example()
    values = {k: interpolate(v, env) for k, v in compose_environment(svc).items()}
    check_environment(f"docker-compose.yml service {service}", module, args, values,
                      monkeypatch)


def test_compose_runs_python_only_with_python_m() -> None:
    """Every image-built service names its module, so the drift check above sees it."""
    for name, svc in compose()["services"].items():
        if "build" in svc:
            assert python_module(svc.get("command")), (
                f"compose service {name} builds the Noria image but its command is not "
                "`python -m <module> ...`")


# ---------------------------------------------------------------- Kubernetes


def k8s_python_containers() -> list[tuple[str, int]]:
    return [(overlay, i) for overlay in OVERLAYS
            for i, c in enumerate(container_envs(overlay)) if c.module]


@pytest.mark.parametrize(("overlay", "index"), k8s_python_containers(),
                         ids=lambda v: str(v))
def test_k8s_environment_matches_settings(overlay: str, index: int,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    c = container_envs(overlay)[index]
    assert c.module is not None
    check_environment(c.where, c.module, c.args, c.values, monkeypatch,
                      frozenset(c.external))


def test_k8s_runs_the_noria_image_only_with_python_m() -> None:
    """The Noria image's containers run a module the drift check knows (or ``-c``)."""
    for overlay in OVERLAYS:
        for c in container_envs(overlay):
            if c.image.rpartition("/")[2].partition(":")[0] != "noria":
                continue
            assert c.command[:2] in (["python", "-m"], ["python", "-c"]), (
                f"{c.where}: the Noria image runs {c.command}, not `python -m <module>`")
            assert c.module is None or c.module in RUNNABLES, (
                f"{c.where}: python -m {c.module} is not in RUNNABLES")
            if c.module is None:
                assert not any(n.startswith("NORIA_") for n in c.values), (
                    f"{c.where}: configured with NORIA_* variables but runs no known module")


# ---------------------------------------------------------------- across processes


def _providers(value: str) -> set[str]:
    return set(json.loads(value))


def test_console_reconciles_the_providers_payments_has() -> None:
    """NORIA_CONSOLE_PROVIDERS names providers that payments is configured with."""
    env = env_example()
    svcs = compose()["services"]
    console = interpolate(compose_environment(svcs["console"])["NORIA_CONSOLE_PROVIDERS"], env)
    payments = compose_environment(svcs["payments"])
    configured = _providers(interpolate(payments["NORIA_PAYMENTS_PROVIDERS"], env))
    assert set(console.split(",")) <= configured, f"compose: {console} vs {configured}"
    for overlay in OVERLAYS:
        envs = {c.where.split(" container")[0]: c for c in container_envs(overlay)}
        console_env = envs[f"{overlay}: Deployment/console"].values
        payments_env = envs[f"{overlay}: Deployment/payments"].values
        names = set(console_env["NORIA_CONSOLE_PROVIDERS"].split(","))
        default = payments_env.get("NORIA_PAYMENTS_DEFAULT_PROVIDER", "sim")
        if "NORIA_PAYMENTS_PROVIDERS" in payments_env:
            assert names <= _providers(payments_env["NORIA_PAYMENTS_PROVIDERS"]), overlay
        assert default in names, (
            f"{overlay}: the console does not reconcile payments' default provider {default}")
