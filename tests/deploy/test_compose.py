"""docker-compose.yml, .env.example, the Dockerfile and the telemetry configs.

No Docker engine runs here, so these checks are what keep ``docker compose up``
honest: the file is valid against the Compose Specification's JSON schema, has
every process with its port and health check, starts things in a safe order
(``depends_on`` conditions), and agrees with .env.example, Prometheus, the
collector, the topics of shared/kafka.py and the Dockerfile.
"""

from __future__ import annotations

import json
import re
import tomllib
from importlib import resources
from typing import Any

import jsonschema
import pytest

from tests.deploy.common import (
    DOCKERFILE,
    DOCKERIGNORE,
    ROOT,
    SERVICE_PORTS,
    SERVICES,
    TOPICS,
    compose,
    compose_environment,
    env_example,
    interpolate,
    interpolation_references,
    load_yaml,
    python_module,
)

# compose service -> (python -m module, args, published ports, health check kind)
NORIA_PROCESSES: dict[str, tuple[str, list[str], list[int]]] = {
    **{svc: (f"services.{svc}", ["serve"], [port]) for svc, port in SERVICE_PORTS.items()},
    "mobile-money": ("simulators.mobile_money", [], [8190]),
    "smsc": ("simulators.smsc", [], [2775, 8191]),
    "console": ("console", [], [8100]),
}
INFRA_IMAGES = {
    "postgres": "postgres:16",
    "kafka": "apache/kafka:",
    "kafka-topics": "apache/kafka:",
    "otel-collector": "otel/opentelemetry-collector",
    "jaeger": "jaegertracing/",
    "prometheus": "prom/prometheus:",
}
# Long-running services whose image has no shell or client to probe itself with.
NO_HEALTHCHECK = {
    "otel-collector": "distroless image; its health_check extension listens on :13133",
    "jaeger": "distroless image",
}


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def is_oneshot(svc: dict[str, Any]) -> bool:
    return str(svc.get("restart", "no")) == "no"


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors)


def test_every_process_is_there_with_its_command_and_ports() -> None:
    svcs = services()
    for name, (module, args, ports) in NORIA_PROCESSES.items():
        assert name in svcs, f"compose has no service {name}"
        svc = svcs[name]
        assert python_module(svc["command"]) == (module, args), f"{name}: command"
        assert "build" in svc and svc["build"]["context"] == ".", f"{name}: builds ./Dockerfile"
        published = sorted(
            (int(host), int(container)) for host, _, container in
            (str(p).rpartition(":") for p in svc.get("ports", [])))
        assert published == sorted((p, p) for p in ports), f"{name}: ports {published}"
    for name, image in INFRA_IMAGES.items():
        assert name in svcs, f"compose has no service {name}"
        assert svcs[name]["image"].startswith(image), f"{name}: image {svcs[name]['image']}"
        assert ":latest" not in svcs[name]["image"] and ":" in svcs[name]["image"], (
            f"{name}: pin the image version")


def test_one_migrations_oneshot_per_service() -> None:
    migrations = {name: python_module(svc.get("command")) for name, svc in services().items()
                  if (python_module(svc.get("command")) or ("", []))[1] == ["migrate"]}
    modules = sorted(m[0] for m in migrations.values() if m)
    assert modules == sorted(f"services.{s}" for s in SERVICES)
    for name in migrations:
        svc = services()[name]
        assert is_oneshot(svc), f"{name}: a one-shot must not restart"
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_long_running_services_have_health_checks() -> None:
    for name, svc in services().items():
        if is_oneshot(svc) or name in NO_HEALTHCHECK:
            continue
        check = svc.get("healthcheck")
        assert check and check.get("test"), f"{name}: no health check"
        assert not check.get("disable"), f"{name}: health check disabled"
    for svc_name, port in SERVICE_PORTS.items():
        test = " ".join(services()[svc_name]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/health/ready" in test, (
            f"{svc_name}: the health check must ask its own /health/ready")


def test_depends_on_conditions_match_what_the_dependency_is() -> None:
    svcs = services()
    for name, svc in svcs.items():
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on needs the long form with conditions"
        for dep, spec in deps.items():
            assert dep in svcs, f"{name} depends on unknown service {dep}"
            target = svcs[dep]
            if is_oneshot(target):
                wanted = "service_completed_successfully"
            elif target.get("healthcheck"):
                wanted = "service_healthy"
            else:
                wanted = "service_started"
            assert spec.get("condition") == wanted, (
                f"{name} -> {dep}: condition should be {wanted}, is {spec.get('condition')}")


def test_services_start_after_infrastructure_topics_and_their_migrations() -> None:
    svcs = services()
    for svc_name in SERVICES:
        deps = svcs[svc_name]["depends_on"]
        for needed in ("postgres", "kafka", "kafka-topics", f"migrate-{svc_name}"):
            assert needed in deps, f"{svc_name} does not wait for {needed}"
    assert "mobile-money" in svcs["payments"]["depends_on"]
    assert "smsc" in svcs["notifications"]["depends_on"]
    assert set(SERVICES) <= set(svcs["console"]["depends_on"])


def test_no_dependency_cycle() -> None:
    svcs = services()
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        assert state.get(name) != "open", f"dependency cycle: {' -> '.join([*path, name])}"
        state[name] = "open"
        for dep in svcs[name].get("depends_on", {}):
            visit(dep, [*path, name])
        state[name] = "done"

    for name in svcs:
        visit(name, [])


def test_kafka_is_single_node_kraft_with_single_replica_internal_topics() -> None:
    env = {k: str(v) for k, v in compose_environment(services()["kafka"]).items()}
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        assert env[key] == "1", key
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    mounts = [str(v).split(":")[1] for v in services()["kafka"]["volumes"]]
    assert env["KAFKA_LOG_DIRS"] in mounts, "Kafka's data must be on a volume"


def test_topics_oneshot_creates_the_platform_topics() -> None:
    env = compose_environment(services()["kafka-topics"])
    assert str(env["NORIA_TOPICS"]).split() == list(TOPICS)
    script = " ".join(services()["kafka-topics"]["command"])
    assert ".dlq" in script and "--if-not-exists" in script


def test_services_use_the_compose_kafka_and_collector() -> None:
    collector = load_yaml(ROOT / "deploy/otel/collector.yaml")
    http = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    port = http.rpartition(":")[2]
    assert "otlp" in collector["service"]["pipelines"]["traces"]["receivers"]
    for svc_name in SERVICES:
        env = compose_environment(services()[svc_name])
        prefix = f"NORIA_{svc_name.upper()}_"
        assert env[prefix + "KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env[prefix + "OTLP_ENDPOINT"] == f"http://otel-collector:{port}"
    exporters = collector["exporters"]
    jaeger = next(v for k, v in exporters.items() if k.startswith("otlp"))
    assert jaeger["endpoint"].split(":")[0] == "jaeger"


def test_prometheus_scrapes_every_service() -> None:
    config = load_yaml(ROOT / "deploy/prometheus/prometheus.yml")
    targets = {t for job in config["scrape_configs"] for sc in job.get("static_configs", [])
               for t in sc["targets"]}
    for svc_name, port in SERVICE_PORTS.items():
        assert f"{svc_name}:{port}" in targets, f"Prometheus does not scrape {svc_name}"
    mounts = " ".join(services()["prometheus"]["volumes"])
    assert "./deploy/prometheus/prometheus.yml:" in mounts


def test_env_example_and_compose_agree() -> None:
    env = env_example()
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    refs = interpolation_references(text)
    referenced = {r.name for r in refs}
    missing = sorted(referenced - set(env))
    assert not missing, f"compose uses variables .env.example does not define: {missing}"
    unused = sorted(set(env) - referenced)
    assert not unused, f".env.example defines variables compose never uses: {unused}"
    for ref in refs:
        if ref.op in (":-", "-"):
            assert ref.arg == env[ref.name], (
                f"compose's default for {ref.name} ({ref.arg!r}) differs from .env.example "
                f"({env[ref.name]!r})")
    # Compose without a .env gives the same configuration as with .env.example.
    for name, svc in services().items():
        for key, value in compose_environment(svc).items():
            assert interpolate(value, {}) == interpolate(value, env), f"{name}: {key}"


def test_database_passwords_are_url_safe() -> None:
    for key, value in env_example().items():
        if key.endswith("_DB_PASSWORD"):
            assert re.fullmatch(r"[A-Za-z0-9._~-]+", value), (
                f"{key}: it goes into postgresql:// URLs unencoded")


def test_each_service_connects_as_its_own_role() -> None:
    env = env_example()
    for name, svc in services().items():
        for key, value in compose_environment(svc).items():
            if not key.endswith("_DATABASE_URL"):
                continue
            svc_name = key.removeprefix("NORIA_").removesuffix("_DATABASE_URL").lower()
            url = interpolate(value, env)
            assert url.startswith(f"postgresql://noria_{svc_name}:"), f"{name}: {key}={url}"
            assert url.endswith("@postgres:5432/noria"), f"{name}: {key}={url}"
            assert f"${{NORIA_{svc_name.upper()}_DB_PASSWORD" in str(value), (
                f"{name}: {key} must use NORIA_{svc_name.upper()}_DB_PASSWORD")
            pg_env = compose_environment(services()["postgres"])
            assert f"NORIA_{svc_name.upper()}_DB_PASSWORD" in pg_env, (
                "the postgres init script needs every service's password")


def test_postgres_has_a_volume_and_the_provisioning_init_script() -> None:
    pg = services()["postgres"]
    volumes = [str(v) for v in pg["volumes"]]
    assert any(v.endswith(":/var/lib/postgresql/data") and not v.startswith(".")
               for v in volumes), "PostgreSQL data must be on a named volume"
    assert "./deploy/postgres/init:/docker-entrypoint-initdb.d:ro" in volumes
    assert "./deploy/postgres/provision.psql:/noria/provision.psql:ro" in volumes
    env = compose_environment(pg)
    assert env["POSTGRES_USER"] == "noria_admin" and env["POSTGRES_DB"] == "noria"
    named = set(compose().get("volumes", {}))
    for v in volumes:
        source = v.split(":")[0]
        if not source.startswith("."):
            assert source in named, f"volume {source} is not declared"


# ---------------------------------------------------------------- Dockerfile


def dockerfile_stages() -> list[tuple[str, list[str]]]:
    """[(FROM line, [instructions...])], continuation lines joined."""
    lines: list[str] = []
    current = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if raw.strip().startswith("#") and not current:
            continue
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        current += raw
        if current.strip():
            lines.append(current.strip())
        current = ""
    stages: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append((line, []))
        elif stages:
            stages[-1][1].append(line)
    return stages


def test_dockerfile_is_multi_stage_slim_python_and_locked() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    base = re.search(r"ARG PYTHON_IMAGE=(\S+)", text)
    assert base and base.group(1).startswith("python:3.11-slim"), "python:3.11-slim base"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "requires-python"]
    assert ">=3.11" in requires and "<3.12" in requires, "the image's Python must match"
    stages = dockerfile_stages()
    names = [line.split()[-1] for line, _ in stages]
    assert "builder" in names and names[-1] == "runtime", names
    builder = dict(stages)[next(line for line, _ in stages if line.endswith("AS builder"))]
    assert any("uv sync --frozen --no-dev" in i for i in builder), "uv sync --frozen --no-dev"


def test_runtime_stage_is_non_root_without_build_tools() -> None:
    line, instructions = dockerfile_stages()[-1]
    assert line.startswith("FROM ${PYTHON_IMAGE}")
    users = [i.split()[1] for i in instructions if i.upper().startswith("USER ")]
    assert users, "the runtime stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), "the runtime runs as root"
    assert user.isdigit(), "numeric USER, so Kubernetes can verify runAsNonRoot"
    joined = "\n".join(instructions)
    for tool in ("apt-get install", "gcc", "build-essential", "pip install", "/uv "):
        assert tool not in joined, f"runtime stage has {tool!r}"
    assert "COPY --from=builder /opt/venv" in joined
    assert not any(i.upper().startswith("ENTRYPOINT") for i in instructions), (
        "the command selects the process: no ENTRYPOINT to work around")


def test_dockerignore_lets_through_exactly_what_runs() -> None:
    rules = [r.strip() for r in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
             if r.strip() and not r.startswith("#")]
    assert rules[0] == "*", ".dockerignore must start by ignoring everything"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    assert {"pyproject.toml", "uv.lock"} <= allowed
    runs = {python_module(s.get("command"))[0].split(".")[0]  # type: ignore[index]
            for s in services().values() if python_module(s.get("command"))}
    assert runs <= allowed, f".dockerignore hides packages compose runs: {runs - allowed}"
    assert "shared" in allowed, "every service imports shared/"


@pytest.mark.parametrize("path", ["deploy/postgres/init/10-noria-provision.sh"])
def test_scripts_are_executable(path: str) -> None:
    assert (ROOT / path).stat().st_mode & 0o111, f"{path} must be executable"


def test_every_process_trusts_keycloak_and_prometheus_scrapes_with_credentials() -> None:
    svcs = compose()["services"]
    kc = svcs["keycloak"]
    assert kc["image"] == "quay.io/keycloak/keycloak:26.4.0"
    assert "--hostname=http://keycloak:8080" in kc["command"]
    env = compose_environment(kc)
    assert env["KC_DB_URL"] == "jdbc:postgresql://postgres:5432/keycloak"
    assert env["KC_DB_USERNAME"] == "noria_keycloak"
    assert "/health/ready" in " ".join(kc["healthcheck"]["test"])
    assert any(v.endswith(":/opt/keycloak/data/import/noria-realm.json:ro")
               for v in kc["volumes"])
    for name in (*SERVICES, "console"):
        env = compose_environment(svcs[name])
        assert env["NORIA_OIDC_ISSUER"] == "http://keycloak:8080/realms/noria", name
        assert str(env["NORIA_METRICS_BASIC_AUTH"]).startswith("prometheus:"), name
        assert not any("JWT" in k for k in env), name
        assert svcs[name]["depends_on"]["keycloak"]["condition"] == "service_healthy", name
    prometheus = load_yaml(ROOT / "deploy/prometheus/prometheus.yml")
    (noria,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "noria"]
    assert noria["basic_auth"]["username"] == "prometheus"
    assert "NORIA_METRICS_PASSWORD" in compose_environment(svcs["prometheus"])
