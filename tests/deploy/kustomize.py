"""A small kustomize renderer for the features deploy/k8s uses, in pure Python.

PyPI has no kustomize and the tests must run offline on a fresh machine, so this
renders the overlays itself. It supports exactly what our kustomizations use and
raises :class:`Unsupported` for anything else, so a new kustomize feature in
deploy/k8s fails loudly here instead of being silently ignored:

- ``resources`` (YAML files and directories holding a kustomization)
- ``namespace``
- ``labels`` with ``includeSelectors: false`` (metadata labels only)
- ``images`` (``newName``, ``newTag``, ``digest``)
- ``configMapGenerator`` / ``secretGenerator`` with ``files`` and ``literals``, and
  ``generatorOptions.disableNameSuffixHash: true``
- ``patches``: strategic merge (maps merged, ``null`` deletes a key, lists of
  containers/env/volumes merged by name, ``$patch: delete`` removes a resource) and
  JSON 6902 (``add``, ``replace``, ``remove``), by ``path`` or inline, with a
  ``target`` (kind/name/namespace/group/version) or inferred from the patch

Transformers run in kustomize's order: patches, namespace, labels, images.
When ``kubectl`` is installed, tests/deploy/test_k8s.py also compares this output
with ``kubectl kustomize``.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_KEYS = {
    "apiVersion", "kind", "resources", "namespace", "labels", "images",
    "configMapGenerator", "secretGenerator", "generatorOptions", "patches",
}
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "PersistentVolume", "StorageClass", "PriorityClass", "IngressClass",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
}
# Strategic-merge keys of the list fields our patches touch (Kubernetes' patchMergeKey).
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
    "volumeMounts": "mountPath", "imagePullSecrets": "name",
}


class Unsupported(Exception):
    """The kustomization uses a feature this renderer does not implement."""


def load_yaml_docs(path: Path) -> list[Resource]:
    with path.open(encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def kustomization_file(directory: Path) -> Path:
    for name in KUSTOMIZATION_NAMES:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"no kustomization in {directory}")


def resource_id(res: Resource) -> tuple[str, str, str, str]:
    meta = res.get("metadata", {})
    return (res.get("apiVersion", ""), res["kind"], meta.get("namespace", ""), meta["name"])


def render(directory: Path) -> list[Resource]:
    """Render the kustomization in ``directory`` like ``kustomize build`` would."""
    directory = directory.resolve()
    kfile = kustomization_file(directory)
    (k,) = load_yaml_docs(kfile)
    unknown = set(k) - SUPPORTED_KEYS
    if unknown:
        raise Unsupported(f"{kfile}: kustomization fields not supported: {sorted(unknown)}")

    resources: list[Resource] = []
    for entry in k.get("resources", []):
        target = (directory / entry).resolve()
        if target.is_dir():
            resources.extend(render(target))
        elif target.is_file():
            resources.extend(load_yaml_docs(target))
        else:
            raise FileNotFoundError(f"{kfile}: resource {entry} not found")

    options = k.get("generatorOptions", {})
    if (k.get("configMapGenerator") or k.get("secretGenerator")) and not options.get(
            "disableNameSuffixHash"):
        raise Unsupported(f"{kfile}: generators need generatorOptions.disableNameSuffixHash")
    if set(options) - {"disableNameSuffixHash"}:
        raise Unsupported(f"{kfile}: generatorOptions {sorted(options)}")
    for gen in k.get("configMapGenerator", []):
        resources.append(_generate(directory, gen, secret=False))
    for gen in k.get("secretGenerator", []):
        resources.append(_generate(directory, gen, secret=True))
    _check_unique(resources, kfile)

    for patch in k.get("patches", []):
        resources = _apply_patch_entry(directory, resources, patch)
    if "namespace" in k:
        for res in resources:
            if res["kind"] not in CLUSTER_SCOPED:
                res.setdefault("metadata", {})["namespace"] = k["namespace"]
    for label in k.get("labels", []):
        if label.get("includeSelectors") or label.get("includeTemplates"):
            raise Unsupported(f"{kfile}: labels with includeSelectors/includeTemplates")
        for res in resources:
            res.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])
    for image in k.get("images", []):
        for res in resources:
            _set_image(res, image)
    return resources


def _check_unique(resources: list[Resource], where: Path) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for res in resources:
        rid = resource_id(res)
        if rid in seen:
            raise ValueError(f"{where}: resource {rid} defined twice")
        seen.add(rid)


def _generate(directory: Path, gen: dict[str, Any], *, secret: bool) -> Resource:
    if set(gen) - {"name", "files", "literals", "type"}:
        raise Unsupported(f"generator fields {sorted(gen)}")
    data: dict[str, str] = {}
    for literal in gen.get("literals", []):
        key, sep, value = literal.partition("=")
        if not sep:
            raise ValueError(f"literal without '=': {literal!r}")
        data[key] = value
    for entry in gen.get("files", []):
        key, sep, rel = entry.partition("=")
        path = directory / (rel if sep else key)
        if not sep:
            key = Path(key).name
        data[key] = path.read_text(encoding="utf-8")
    res: Resource = {"apiVersion": "v1", "kind": "Secret" if secret else "ConfigMap",
                     "metadata": {"name": gen["name"]}}
    if secret:
        res["type"] = gen.get("type", "Opaque")
        res["data"] = {key: base64.b64encode(v.encode()).decode() for key, v in data.items()}
    else:
        res["data"] = data
    return res


def _apply_patch_entry(directory: Path, resources: list[Resource],
                       entry: dict[str, Any]) -> list[Resource]:
    if set(entry) - {"path", "patch", "target"}:
        raise Unsupported(f"patch fields {sorted(entry)}")
    text = (directory / entry["path"]).read_text(encoding="utf-8") if "path" in entry \
        else entry["patch"]
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    if len(docs) == 1 and isinstance(docs[0], list):  # JSON 6902
        if "target" not in entry:
            raise ValueError("a JSON 6902 patch needs a target")
        matched = [r for r in resources if _matches(r, entry["target"])]
        if not matched:
            raise ValueError(f"patch target {entry['target']} matches no resource")
        for res in matched:
            for op in docs[0]:
                _json6902(res, op)
        return resources
    for patch in docs:
        if "target" in entry:
            matched = [r for r in resources if _matches(r, entry["target"])]
        else:
            matched = [r for r in resources if _same_object(r, patch)]
        if not matched:
            raise ValueError(f"no resource matches the patch {patch.get('kind')}/"
                             f"{patch.get('metadata', {}).get('name')}")
        if patch.get("$patch") == "delete":
            resources = [r for r in resources if not any(r is m for m in matched)]
            continue
        for res in matched:
            body = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind")}
            body["metadata"] = {k: v for k, v in patch.get("metadata", {}).items()
                                if k not in ("name", "namespace")}
            if not body["metadata"]:
                del body["metadata"]
            _smp(res, body)
    return resources


def _same_object(res: Resource, patch: Resource) -> bool:
    meta = patch.get("metadata", {})
    return (res["kind"] == patch.get("kind")
            and res["metadata"]["name"] == meta.get("name")
            and ("namespace" not in meta
                 or res["metadata"].get("namespace") == meta["namespace"]))


def _matches(res: Resource, target: dict[str, Any]) -> bool:
    if set(target) - {"kind", "name", "namespace", "group", "version"}:
        raise Unsupported(f"patch target selectors {sorted(target)}")
    group, _, version = res.get("apiVersion", "").rpartition("/")
    checks = {
        "kind": res["kind"], "name": res["metadata"]["name"],
        "namespace": res["metadata"].get("namespace", ""), "group": group,
        "version": version,
    }
    return all(checks[key] == value for key, value in target.items())


def _smp(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """Strategic merge of ``patch`` into ``target`` (in place)."""
    for key, value in patch.items():
        if key.startswith("$"):
            raise Unsupported(f"strategic-merge directive {key}")
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _smp(target[key], value)
        elif isinstance(value, list) and key in MERGE_KEYS and isinstance(target.get(key), list):
            merge_key = MERGE_KEYS[key]
            for item in value:
                existing = next((t for t in target[key] if t.get(merge_key) == item[merge_key]),
                                None)
                if existing is None:
                    target[key].append(copy.deepcopy(item))
                else:
                    _smp(existing, item)
        else:
            target[key] = copy.deepcopy(value)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError(f"JSON pointer must start with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _json6902(res: Resource, op: dict[str, Any]) -> None:
    parts = _pointer(op["path"])
    parent: Any = res
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    kind = op["op"]
    if kind not in ("add", "replace", "remove"):
        raise Unsupported(f"JSON 6902 op {kind}")
    if isinstance(parent, list):
        if kind == "add":
            value = copy.deepcopy(op["value"])
            if last == "-":
                parent.append(value)
            else:
                parent.insert(int(last), value)
        elif kind == "replace":
            parent[int(last)] = copy.deepcopy(op["value"])
        else:
            del parent[int(last)]
        return
    if kind == "replace" and last not in parent:
        raise ValueError(f"JSON 6902 replace of a missing path {op['path']}")
    if kind == "remove":
        del parent[last]
    else:
        parent[last] = copy.deepcopy(op["value"])


def pod_spec(res: Resource) -> dict[str, Any] | None:
    """The pod spec of a workload resource, or None."""
    spec = res.get("spec", {})
    if res["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        return spec.get("template", {}).get("spec")
    if res["kind"] == "CronJob":
        return spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    if res["kind"] == "Pod":
        return spec
    return None


def containers(res: Resource) -> list[dict[str, Any]]:
    spec = pod_spec(res) or {}
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def _set_image(res: Resource, image: dict[str, Any]) -> None:
    if set(image) - {"name", "newName", "newTag", "digest"}:
        raise Unsupported(f"images fields {sorted(image)}")
    for container in containers(res):
        ref = container.get("image", "")
        name, tag = _split_image(ref)
        if name != image["name"]:
            continue
        new_name = image.get("newName", name)
        if "digest" in image:
            container["image"] = f"{new_name}@{image['digest']}"
        elif "newTag" in image:
            container["image"] = f"{new_name}:{image['newTag']}"
        else:
            container["image"] = new_name + tag


def _split_image(ref: str) -> tuple[str, str]:
    """``repo/name:tag`` -> (``repo/name``, ``:tag``); keeps ``@digest`` in the suffix."""
    if "@" in ref:
        name, _, digest = ref.partition("@")
        return name, "@" + digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon:]
    return ref, ""
