"""A small kustomize renderer for the subset deploy/k8s uses, so the manifests can be checked offline
on a machine without kustomize or kubectl.

Supported kustomization fields: ``resources`` (files and directories), ``namespace``, ``labels``
(``includeSelectors: false`` only), ``patches`` (strategic merge for built-in kinds, JSON merge for
custom resources, JSON 6902 operations; inline or from a file; target by kind and name), ``replicas``
and ``images``. Anything else raises :class:`Unsupported` rather than being ignored, and
tools/k8s_check.py compares this renderer's output with the real kustomize wherever one is installed.
The transformers run in kustomize's order: patches, namespace, labels, replicas, images.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "namespace", "labels", "patches", "replicas", "images"}
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

# Kinds kustomize never puts in a namespace.
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume",
    "StorageClass", "PriorityClass", "ClusterTriggerAuthentication", "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration", "APIService", "IngressClass", "RuntimeClass",
}
# API groups whose kinds Kubernetes patches strategically (list items merged by key); any other
# group is a custom resource and gets a JSON merge patch (lists replaced whole).
BUILTIN_GROUPS = {"", "apps", "batch", "policy", "autoscaling", "networking.k8s.io", "rbac.authorization.k8s.io"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
SCALABLE = {"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"}
# Strategic-merge keys of the lists that can appear in our patches (from the Kubernetes API types).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}


class Unsupported(Exception):
    """The kustomization uses something this renderer does not implement."""


class RenderError(Exception):
    """The kustomization is wrong (a patch that matches nothing, a duplicate resource, ...)."""


def resource_id(resource: Resource) -> tuple[str, str, str, str]:
    meta = resource.get("metadata", {})
    return (resource.get("apiVersion", ""), resource.get("kind", ""), meta.get("namespace", ""), meta.get("name", ""))


def api_group(resource: Resource) -> str:
    api_version = resource.get("apiVersion", "")
    return api_version.split("/")[0] if "/" in api_version else ""


def load_documents(path: Path) -> list[Resource]:
    with path.open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def find_kustomization(directory: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise RenderError(f"{directory}: no kustomization.yaml")


def build(directory: Path) -> list[Resource]:
    """Render the kustomization in ``directory`` the way ``kustomize build`` would."""
    directory = Path(directory)
    kustomization = yaml.safe_load(find_kustomization(directory).read_text()) or {}
    unknown = set(kustomization) - SUPPORTED_FIELDS
    if unknown:
        raise Unsupported(f"{directory}: kustomization fields not supported: {sorted(unknown)}")

    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            resources.extend(build(path))
        elif path.is_file():
            resources.extend(load_documents(path))
        else:
            raise RenderError(f"{directory}: resource {entry!r} not found")
    _reject_duplicates(directory, resources)

    for patch in kustomization.get("patches", []):
        _apply_patch(directory, resources, patch)
    if "namespace" in kustomization:
        for resource in resources:
            if resource.get("kind") not in CLUSTER_SCOPED:
                resource.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
    for label_set in kustomization.get("labels", []):
        _apply_labels(directory, resources, label_set)
    for replica in kustomization.get("replicas", []):
        _apply_replicas(directory, resources, replica)
    for image in kustomization.get("images", []):
        _apply_image(resources, image)
    return resources


def _reject_duplicates(directory: Path, resources: list[Resource]) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for resource in resources:
        rid = resource_id(resource)
        if rid in seen:
            raise RenderError(f"{directory}: resource {rid} is defined twice")
        seen.add(rid)


# --- patches ---------------------------------------------------------------------------------------


def _apply_patch(directory: Path, resources: list[Resource], entry: dict[str, Any]) -> None:
    if set(entry) - {"path", "patch", "target"}:
        raise Unsupported(f"{directory}: patch options not supported: {sorted(set(entry) - {'path', 'patch', 'target'})}")
    text = entry["patch"] if "patch" in entry else (directory / entry["path"]).read_text()
    documents = [doc for doc in yaml.safe_load_all(text) if doc]
    target = entry.get("target")
    if len(documents) > 1:
        # A file of several strategic-merge patches: each one names its own target.
        if target is not None or any(isinstance(doc, list) for doc in documents):
            raise Unsupported(f"{directory}: a multi-document patch must be strategic merges without a target")
        for document in documents:
            _apply_patch(directory, resources, {"patch": yaml.safe_dump(document)})
        return
    body = documents[0]
    if isinstance(body, list):
        if target is None:
            raise RenderError(f"{directory}: a JSON 6902 patch needs a target")
        for resource in _select(directory, resources, target):
            for operation in body:
                _json6902(resource, operation)
        return
    if target is None:
        target = {"kind": body["kind"], "name": body["metadata"]["name"]}
        matches = _select(directory, resources, target)
    else:
        matches = _select(directory, resources, target)
        # With a target, the patch's own kind and name are placeholders.
        body = {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
        body["metadata"] = {k: v for k, v in body.get("metadata", {}).items() if k != "name"}
    for resource in matches:
        if api_group(resource) in BUILTIN_GROUPS:
            _strategic_merge(resource, body)
        else:
            _json_merge(resource, body)


def _select(directory: Path, resources: list[Resource], target: dict[str, Any]) -> list[Resource]:
    unknown = set(target) - {"kind", "name", "group", "version"}
    if unknown:
        raise Unsupported(f"{directory}: patch target selectors not supported: {sorted(unknown)}")
    matches = []
    for resource in resources:
        if "kind" in target and resource.get("kind") != target["kind"]:
            continue
        if "name" in target and not re.fullmatch(target["name"], resource.get("metadata", {}).get("name", "")):
            continue
        if "group" in target and api_group(resource) != target["group"]:
            continue
        if "version" in target and resource.get("apiVersion", "").split("/")[-1] != target["version"]:
            continue
        matches.append(resource)
    if not matches:
        raise RenderError(f"{directory}: patch target {target} matches no resource")
    return matches


def _strategic_merge(base: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if key.startswith("$"):
            raise Unsupported(f"strategic-merge directive {key!r} not supported")
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            _strategic_merge(base[key], value)
        elif isinstance(value, list) and isinstance(base.get(key), list) and _merge_key(key, value + base[key]):
            merge_key = _merge_key(key, value + base[key])
            added = []
            for item in value:
                existing = next((old for old in base[key] if old.get(merge_key) == item.get(merge_key)), None)
                if existing is None:
                    added.append(copy.deepcopy(item))
                else:
                    _strategic_merge(existing, item)
            # kustomize puts the patch's new items before the existing ones.
            base[key][:0] = added
        else:
            base[key] = copy.deepcopy(value)


def _merge_key(field: str, items: list[Any]) -> str | None:
    if not all(isinstance(item, dict) for item in items):
        return None
    if field == "ports":  # container ports merge on containerPort, Service ports on port
        return "containerPort" if all("containerPort" in item for item in items) else "port"
    return MERGE_KEYS.get(field)


def _json_merge(base: dict[str, Any], patch: dict[str, Any]) -> None:
    """RFC 7386: objects merge, null deletes, everything else (lists too) replaces."""
    for key, value in patch.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            _json_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def _json6902(resource: Resource, operation: dict[str, Any]) -> None:
    op = operation.get("op")
    if op not in ("add", "replace", "remove"):
        raise Unsupported(f"JSON 6902 operation {op!r} not supported")
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in operation["path"].split("/")[1:]]
    parent: Any = resource
    for token in tokens[:-1]:
        parent = parent[int(token)] if isinstance(parent, list) else parent[token]
    last = tokens[-1]
    if isinstance(parent, list):
        if op == "add":
            index = len(parent) if last == "-" else int(last)
            parent.insert(index, copy.deepcopy(operation["value"]))
        elif op == "replace":
            parent[int(last)] = copy.deepcopy(operation["value"])
        else:
            del parent[int(last)]
        return
    if op in ("replace", "remove") and last not in parent:
        raise RenderError(f"JSON 6902 {op}: path {operation['path']} does not exist")
    if op == "remove":
        del parent[last]
    else:
        parent[last] = copy.deepcopy(operation["value"])


# --- labels, replicas, images -----------------------------------------------------------------------


def _apply_labels(directory: Path, resources: list[Resource], label_set: dict[str, Any]) -> None:
    if label_set.get("includeSelectors"):
        raise Unsupported(f"{directory}: labels with includeSelectors: true not supported")
    if set(label_set) - {"pairs", "includeSelectors", "includeTemplates"}:
        raise Unsupported(f"{directory}: labels options not supported: {sorted(label_set)}")
    pairs = label_set.get("pairs", {})
    for resource in resources:
        resource.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
        if label_set.get("includeTemplates") and resource.get("kind") in WORKLOADS:
            template = resource.setdefault("spec", {}).setdefault("template", {})
            template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def _apply_replicas(directory: Path, resources: list[Resource], replica: dict[str, Any]) -> None:
    matches = [r for r in resources if r.get("kind") in SCALABLE and r["metadata"].get("name") == replica["name"]]
    if not matches:
        raise RenderError(f"{directory}: replicas: no workload named {replica['name']!r}")
    for resource in matches:
        resource.setdefault("spec", {})["replicas"] = replica["count"]


def _split_image(image: str) -> tuple[str, str]:
    """'repo/name:tag' -> ('repo/name', ':tag'); digests kept as '@sha256:...'."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon:]
    return image, ""


def _apply_image(resources: list[Resource], entry: dict[str, Any]) -> None:
    if set(entry) - {"name", "newName", "newTag", "digest"}:
        raise Unsupported(f"images options not supported: {sorted(entry)}")
    for resource in resources:
        if resource.get("kind") not in WORKLOADS:
            continue
        pod = resource.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            name, suffix = _split_image(container.get("image", ""))
            if name != entry["name"]:
                continue
            if "digest" in entry:
                suffix = "@" + entry["digest"]
            elif "newTag" in entry:
                suffix = ":" + str(entry["newTag"])
            container["image"] = entry.get("newName", name) + suffix
