"""deploy/k8s: render the kustomize overlays and check what a cluster would get.

Rendering is the real ``kubectl kustomize`` (tests/deploy/kustomize.py; the bootstrap
installs kubectl where it is missing, and these tests fail rather than skip without
it). Every rendered manifest is
validated offline against the Kubernetes OpenAPI schemas shipped in the
kubernetes-validate wheel, in strict mode (unknown fields fail). Strimzi's
KafkaTopic is a custom resource with no schema in that wheel: it is validated
against the small schema below, which covers every field we set.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.deploy.common import (
    K8S,
    OVERLAYS,
    ROOT,
    SERVICE_PORTS,
    SERVICES,
    TOPICS,
    by_kind,
    container_envs,
    find,
    rendered,
)
from tests.deploy.kustomize import (
    MIN_KUSTOMIZE,
    Resource,
    containers,
    kubectl,
    kustomize_version,
    pod_spec,
    render,
    resource_id,
)

# The oldest Kubernetes we support and the newest the schemas know: an API removed
# in between fails one of the two.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())

KAFKA_TOPIC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "kafka.strimzi.io/v1beta2"},
        "kind": {"const": "KafkaTopic"},
        "metadata": {
            "type": "object",
            "required": ["name", "labels"],
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
                         "maxLength": 253},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "required": ["strimzi.io/cluster"],
                           "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["partitions", "replicas"],
            "properties": {
                "topicName": {"type": "string", "pattern": r"^[a-zA-Z0-9._-]+$"},
                "partitions": {"type": "integer", "minimum": 1},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 32767},
                "config": {"type": "object",
                           "additionalProperties": {"type": ["string", "integer", "boolean"]}},
            },
        },
    },
}
CUSTOM_SCHEMAS = {("kafka.strimzi.io/v1beta2", "KafkaTopic"): KAFKA_TOPIC_SCHEMA}


def all_resources() -> list[tuple[str, Resource]]:
    return [(overlay, r) for overlay in OVERLAYS for r in rendered(overlay)]


def rid(r: Resource) -> str:
    return f"{r['kind']}/{r['metadata']['name']}"


# ---------------------------------------------------------------- rendering & schemas


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_without_duplicates(overlay: str) -> None:
    resources = rendered(overlay)
    ids = [resource_id(r) for r in resources]
    assert len(ids) == len(set(ids))
    namespace = find(resources, "Namespace", {"dev": "noria-dev", "prod": "noria"}[overlay])
    for r in resources:
        if r["kind"] != "Namespace":
            assert r["metadata"].get("namespace") == namespace["metadata"]["name"], rid(r)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifests_are_valid_against_the_kubernetes_schemas(overlay: str,
                                                            version: str) -> None:
    errors = []
    for r in rendered(overlay):
        custom = CUSTOM_SCHEMAS.get((r["apiVersion"], r["kind"]))
        if custom is not None:
            errors += [f"{rid(r)}: {e.message}"
                       for e in jsonschema.Draft7Validator(custom).iter_errors(r)]
            continue
        try:
            kubernetes_validate.validate(r, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{rid(r)}: {exc.message} at {'/'.join(map(str, exc.path))}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{rid(r)}: no schema for {r['apiVersion']} {r['kind']} in "
                          f"Kubernetes {version}: add one to CUSTOM_SCHEMAS if it is a CRD")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("path", ["base", "overlays/dev", "overlays/prod"])
def test_every_kustomization_renders_with_kubectl_kustomize_v5(path: str) -> None:
    binary = kubectl()
    assert kustomize_version(binary) >= MIN_KUSTOMIZE, binary
    resources = render(K8S / path)
    assert by_kind(resources, "Deployment"), f"{path}: kubectl kustomize rendered no Deployment"
    ids = [resource_id(r) for r in resources]
    assert len(ids) == len(set(ids)), f"{path}: a resource is rendered twice"


# ---------------------------------------------------------------- workloads


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        present = key in labels
        if (op == "In" and labels.get(key) not in values) or (
                op == "NotIn" and present and labels[key] in values) or (
                op == "Exists" and not present) or (op == "DoesNotExist" and present):
            return False
    return True


def pod_labels(r: Resource) -> dict[str, str]:
    return r["spec"]["template"]["metadata"].get("labels", {})


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_resources_and_workloads_match_their_selectors(
        overlay: str) -> None:
    for r in rendered(overlay):
        spec = pod_spec(r)
        if spec is None:
            continue
        if "selector" in r["spec"]:
            assert selects(r["spec"]["selector"], pod_labels(r)), f"{rid(r)}: selector"
        assert spec.get("automountServiceAccountToken") is False, (
            f"{rid(r)}: no service account token: Noria pods do not call the API server")
        for c in containers(r):
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res.get(kind, {})), (
                    f"{rid(r)} container {c['name']}: {kind} for cpu and memory")
            image = c["image"]
            assert ":" in image.rpartition("/")[2] and not image.endswith(":latest"), (
                f"{rid(r)} container {c['name']}: pin the image tag ({image})")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_run_non_root_with_probes_on_the_health_endpoints(overlay: str) -> None:
    resources = rendered(overlay)
    for svc in SERVICES:
        deploy = find(resources, "Deployment", svc)
        assert "replicas" not in deploy["spec"], f"{svc}: the HPA owns the replica count"
        spec = pod_spec(deploy)
        assert spec is not None
        assert spec["securityContext"]["runAsNonRoot"] is True
        (c,) = spec["containers"]
        assert c["command"] == ["python", "-m", f"services.{svc}", "serve"]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports == {"http": SERVICE_PORTS[svc]}
        assert c["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
        assert c["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]
        service = find(resources, "Service", svc)
        assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels(deploy))
        assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
            (SERVICE_PORTS[svc], "http")]
        assert f"noria-{svc}" in [s["configMapRef"]["name"] for s in c["envFrom"]]
        pdb = find(resources, "PodDisruptionBudget", svc)
        assert selects(pdb["spec"]["selector"], pod_labels(deploy))
        assert pdb["spec"].get("maxUnavailable") == 1 or "minAvailable" in pdb["spec"]


def topic_partitions(overlay: str) -> dict[str, int]:
    """Partitions per topic in the overlay: the topics Job's config or the KafkaTopics."""
    resources = rendered(overlay)
    kafka_topics = by_kind(resources, "KafkaTopic")
    if kafka_topics:
        return {t["spec"].get("topicName", t["metadata"]["name"]): t["spec"]["partitions"]
                for t in kafka_topics}
    config = find(resources, "ConfigMap", "noria-topics")["data"]
    partitions = int(config["NORIA_TOPIC_PARTITIONS"])
    return {name: partitions for topic in config["NORIA_TOPICS"].split()
            for name in (topic, f"{topic}.dlq")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscalers_never_exceed_the_partitions(overlay: str) -> None:
    resources = rendered(overlay)
    partitions = topic_partitions(overlay)
    main = min(n for t, n in partitions.items() if not t.endswith(".dlq"))
    for svc in SERVICES:
        hpa = find(resources, "HorizontalPodAutoscaler", svc)
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", svc)
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= main, (
            f"{overlay} {svc}: maxReplicas {hpa['spec']['maxReplicas']} > {main} partitions: "
            "the extra consumers would sit idle")
        config = find(resources, "ConfigMap", f"noria-{svc}")["data"]
        assert int(config[f"NORIA_{svc.upper()}_TOPIC_PARTITIONS"]) == main, (
            f"{overlay} {svc}: topic_partitions must equal the topics' partitions")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_topics_are_the_platform_topics_and_their_dead_letters(overlay: str) -> None:
    wanted = {name for t in TOPICS for name in (t, f"{t}.dlq")}
    assert set(topic_partitions(overlay)) == wanted


def test_prod_topics_are_replicated_three_times_with_two_in_sync() -> None:
    resources = rendered("prod")
    assert not [r for r in resources if r["metadata"]["name"] == "noria-topics"], (
        "prod: Strimzi owns the topics, the topics Job must be gone")
    for topic in by_kind(resources, "KafkaTopic"):
        assert topic["spec"]["replicas"] == 3, rid(topic)
        assert str(topic["spec"]["config"]["min.insync.replicas"]) == "2", rid(topic)
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "noria"
    for svc in SERVICES:
        config = find(resources, "ConfigMap", f"noria-{svc}")["data"]
        assert config[f"NORIA_{svc.upper()}_TOPIC_REPLICATION"] == "3"


def test_prod_is_bigger_and_stricter_than_dev() -> None:
    for svc in SERVICES:
        dev_hpa = find(rendered("dev"), "HorizontalPodAutoscaler", svc)["spec"]
        prod_hpa = find(rendered("prod"), "HorizontalPodAutoscaler", svc)["spec"]
        assert prod_hpa["minReplicas"] >= 2 and prod_hpa["minReplicas"] > dev_hpa["minReplicas"]
        c = find(rendered("prod"), "Deployment", svc)["spec"]["template"]["spec"][
            "containers"][0]
        assert c["resources"]["requests"]["memory"] == c["resources"]["limits"]["memory"], (
            f"prod {svc}: memory requests = limits (no overcommit, no surprise OOM kills)")
        assert c["image"].startswith("registry.example.com/noria/noria:")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migrations_job_migrates_every_service_with_its_own_credentials(
        overlay: str) -> None:
    job = find(rendered(overlay), "Job", "noria-migrations")
    spec = pod_spec(job)
    assert spec is not None and spec["restartPolicy"] in ("Never", "OnFailure")
    steps = {c["command"][2]: c for c in spec["initContainers"]}
    assert set(steps) == {f"services.{s}" for s in SERVICES}
    for svc in SERVICES:
        c = steps[f"services.{svc}"]
        assert c["command"] == ["python", "-m", f"services.{svc}", "migrate"]
        (env,) = c["env"]
        assert env["name"] == f"NORIA_{svc.upper()}_DATABASE_URL"
        assert env["valueFrom"]["secretKeyRef"] == {"name": f"noria-{svc}-db",
                                                     "key": "database-url"}


# ---------------------------------------------------------------- secrets


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_its_own_database_credentials(overlay: str) -> None:
    for svc in SERVICES:
        deploy = find(rendered(overlay), "Deployment", svc)
        env = {e["name"]: e for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
        ref = env[f"NORIA_{svc.upper()}_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": f"noria-{svc}-db", "key": "database-url"}
    dev = {c.where: c for c in container_envs("dev")}
    for svc in SERVICES:
        c = dev[f"dev: Deployment/{svc} container {svc}"]
        assert c.values[f"NORIA_{svc.upper()}_DATABASE_URL"].startswith(
            f"postgresql://noria_{svc}:")


def referenced_secrets(resources: tuple[Resource, ...]) -> set[str]:
    names = set()
    for r in resources:
        spec = pod_spec(r) or {}
        for c in containers(r):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    names.add(ref["name"])
            for s in c.get("envFrom", []):
                if "secretRef" in s:
                    names.add(s["secretRef"]["name"])
        for v in spec.get("volumes", []):
            if "secret" in v:
                names.add(v["secret"]["secretName"])
    return names


def test_dev_generates_every_secret_it_references() -> None:
    resources = rendered("dev")
    generated = {s["metadata"]["name"] for s in by_kind(resources, "Secret")}
    assert referenced_secrets(resources) <= generated


def test_prod_commits_no_secret_and_documents_each_one() -> None:
    resources = rendered("prod")
    assert not by_kind(resources, "Secret"), "prod secrets come from the secret manager"
    readme = (ROOT / "deploy/README.md").read_text(encoding="utf-8")
    for name in sorted(referenced_secrets(resources)):
        assert f"`{name}`" in readme, f"deploy/README.md does not say how to create {name}"


# ---------------------------------------------------------------- network policies


def policies_for(resources: tuple[Resource, ...], labels: dict[str, str],
                 kind: str) -> list[dict[str, Any]]:
    rules = []
    for policy in by_kind(resources, "NetworkPolicy"):
        spec = policy["spec"]
        if kind in spec.get("policyTypes", []) and selects(spec["podSelector"], labels):
            rules += [{**rule, "_policy": policy["metadata"]["name"]}
                      for rule in spec.get(kind.lower(), [])]
    return rules


def classify(rule: dict[str, Any]) -> str:
    """Name the destination of an egress rule."""
    ports = {p["port"] for p in rule.get("ports", [])}
    assert rule.get("to") and ports, (
        f"{rule['_policy']}: an egress rule without destinations or ports allows everything")
    text = json.dumps(rule["to"])
    names = {peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
             for peer in rule["to"]}
    if len(names) == 1 and (name := names.pop()) in SERVICE_PORTS:
        assert ports == {SERVICE_PORTS[name]}, f"{rule['_policy']}: {name} on {ports}"
        return f"api:{name}"
    if ports == {53}:
        return "dns"
    if '"app.kubernetes.io/name": "keycloak"' in text:
        assert ports == {8080}, f"{rule['_policy']}: keycloak on {ports}"
        return "keycloak"
    if "kafka" in text or "strimzi" in text:
        return "kafka"
    if "postgres" in text or ports == {5432}:
        return "postgres"
    if "otel" in text:
        return "otel"
    if "mobile-money" in text or (rule["_policy"].endswith("mobile-money")):
        return "mobile-money"
    if "smsc" in text or rule["_policy"].endswith("smsc"):
        return "smsc"
    raise AssertionError(f"{rule['_policy']}: unknown egress destination {text} {ports}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_default_deny_then_each_service_reaches_only_its_dependencies(overlay: str) -> None:
    resources = rendered(overlay)
    deny = find(resources, "NetworkPolicy", "noria-default-deny")["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    expected_extra = {"payments": {"mobile-money"}, "notifications": {"smsc"}}
    for svc in SERVICES:
        labels = pod_labels(find(resources, "Deployment", svc))
        reached = {classify(rule) for rule in policies_for(resources, labels, "Egress")}
        assert reached == {"dns", "kafka", "postgres", "otel", "keycloak"} | expected_extra.get(
            svc, set()), (
            f"{overlay} {svc} may reach {sorted(reached)}")
        ingress = policies_for(resources, labels, "Ingress")
        assert ingress, f"{overlay} {svc}: nobody may call it"
        for rule in ingress:
            assert [p["port"] for p in rule["ports"]] == [SERVICE_PORTS[svc]], rule["_policy"]
            assert rule.get("from"), f"{rule['_policy']}: ingress from anywhere"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_jobs_reach_only_what_they_need(overlay: str) -> None:
    resources = rendered(overlay)
    wanted = {"noria-migrations": {"dns", "postgres"}, "noria-topics": {"dns", "kafka"}}
    for job in by_kind(resources, "Job"):
        reached = {classify(rule) for rule in
                   policies_for(resources, pod_labels(job), "Egress")}
        assert reached == wanted[job["metadata"]["name"]], f"{overlay} {rid(job)}: {reached}"


def test_prod_egress_leaves_the_namespace_only_for_the_real_peers() -> None:
    resources = rendered("prod")
    for policy in by_kind(resources, "NetworkPolicy"):
        for rule in policy["spec"].get("egress", []):
            for peer in rule.get("to", []):
                block = peer.get("ipBlock")
                if block and block["cidr"] == "0.0.0.0/0":
                    assert policy["metadata"]["name"] == "payments-egress-mobile-money"
                    assert [p["port"] for p in rule["ports"]] == [443]
                    assert "10.0.0.0/8" in block.get("except", [])
                in_namespace = "podSelector" in peer and "namespaceSelector" not in peer
                selected = peer.get("podSelector", {}).get("matchLabels", {}).get(
                    "app.kubernetes.io/name")
                if in_namespace and selected not in (*SERVICE_PORTS, "keycloak"):
                    pytest.fail(f"prod {policy['metadata']['name']}: in-namespace peer "
                                f"{peer}: prod has no Kafka/PostgreSQL/simulator pods")


def test_dev_infrastructure_policy_selects_no_service() -> None:
    resources = rendered("dev")
    infra = find(resources, "NetworkPolicy", "noria-dev-infra")["spec"]["podSelector"]
    for svc in SERVICES:
        assert not selects(infra, pod_labels(find(resources, "Deployment", svc)))
    for r in by_kind(resources, "Job"):
        assert not selects(infra, pod_labels(r))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_console_calls_only_the_services_and_is_reached_only_through_the_ingress(
        overlay: str) -> None:
    resources = rendered(overlay)
    deploy = find(resources, "Deployment", "console")
    (c,) = deploy["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["python", "-m", "console", "serve"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    labels = pod_labels(deploy)
    reached = {classify(rule) for rule in policies_for(resources, labels, "Egress")}
    assert reached == {"dns", "keycloak"} | {f"api:{svc}" for svc in SERVICES}, reached
    (ingress,) = policies_for(resources, labels, "Ingress")
    assert [p["port"] for p in ingress["ports"]] == [8100]
    assert ingress["from"] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "ingress-nginx"}}}]
    for svc in SERVICES:  # and the services let it in
        rules = policies_for(resources, pod_labels(find(resources, "Deployment", svc)),
                             "Ingress")
        assert any(selects(peer.get("podSelector", {"matchLabels": {"-": "-"}}), labels)
                   for rule in rules for peer in rule["from"]), f"{svc} refuses the console"


def test_prod_pods_meet_the_restricted_pod_security_standard() -> None:
    """Namespace noria enforces "restricted": a pod that does not comply never starts."""
    resources = rendered("prod")
    namespace = find(resources, "Namespace", "noria")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for r in resources:
        spec = pod_spec(r)
        if spec is None:
            continue
        pod_sc = spec.get("securityContext", {})
        assert not (spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"))
        assert not any("hostPath" in v for v in spec.get("volumes", [])), rid(r)
        for c in containers(r):
            sc = c.get("securityContext", {})
            where = f"{rid(r)} container {c['name']}"
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
            assert sc.get("runAsUser", pod_sc.get("runAsUser", 1)) != 0, where
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
            assert seccomp.get("type") in ("RuntimeDefault", "Localhost"), where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert not sc.get("privileged"), where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("capabilities", {}).get("add"), where


# The realm each overlay's Keycloak imports: TOTP (a default required action for every
# operator) is the production realm's; a dev cluster imports the development realm.
REALM_OF = {"dev": "deploy/keycloak/noria-realm.json",
            "prod": "deploy/keycloak/noria-realm.production.json"}


def default_required_actions(realm: str) -> set[str]:
    return {a["alias"] for a in json.loads(realm).get("requiredActions", [])
            if a.get("enabled", True) and a.get("defaultAction")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keycloak_imports_its_overlays_realm_and_reaches_only_its_database(
        overlay: str) -> None:
    resources = rendered(overlay)
    deploy = find(resources, "Deployment", "keycloak")
    (c,) = deploy["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "quay.io/keycloak/keycloak:26.4.0"
    assert c["args"][:2] == ["start", "--import-realm"]
    assert "--hostname=http://keycloak:8080" in c["args"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "management"}
    realm_maps = [r for r in by_kind(resources, "ConfigMap")
                  if r["metadata"]["name"].startswith("noria-keycloak-realm")]
    assert len(realm_maps) == 1
    mounted = {v["name"]: v.get("configMap", {}).get("name")
               for v in deploy["spec"]["template"]["spec"]["volumes"]}
    assert mounted["realm"] == realm_maps[0]["metadata"]["name"]
    imported = realm_maps[0]["data"]["noria-realm.json"]
    assert imported == (ROOT / REALM_OF[overlay]).read_text()
    totp = "CONFIGURE_TOTP" in default_required_actions(imported)
    assert totp is (overlay == "prod"), f"{overlay}: TOTP required is {totp}"
    labels = pod_labels(deploy)
    reached = {classify(rule) for rule in policies_for(resources, labels, "Egress")}
    assert reached == {"dns", "postgres"}, reached
    callers = {svc for svc in (*SERVICES, "console") if selects(
        {"matchLabels": {"noria.io/keycloak": "client"}},
        pod_labels(find(resources, "Deployment", svc)))}
    assert callers == {*SERVICES, "console"}
    for svc in SERVICES:
        env = {e["name"] for e in find(resources, "Deployment", svc)["spec"]["template"][
            "spec"]["containers"][0]["env"]}
        assert "NORIA_METRICS_BASIC_AUTH" in env and not any("JWT" in e for e in env)
