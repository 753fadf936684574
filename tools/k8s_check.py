#!/usr/bin/env python3
"""Offline check of deploy/k8s (``make k8s-check``): render, validate, and test the invariants.

For the base and every overlay under ``<root>/overlays/``:

1. render the kustomization with ``kubectl kustomize`` (or a standalone ``kustomize build``; see
   ``kustomize_command`` for what is looked for, and how to install it when neither is there);
2. validate each built-in kind against the Kubernetes JSON Schemas shipped by ``kubernetes-validate``
   (strict: unknown fields fail), and each KEDA kind against ``<root>/schemas/<kind>.schema.json``;
3. check what a schema cannot: every ScaledObject's ``maxReplicaCount`` is at most the partition
   count the services create topics with (``MODELYARD_KAFKA__PARTITIONS``), its topic, consumer group
   and brokers are the ones the pool really uses, grace periods exceed the shutdown timeout, probes,
   resources and PodDisruptionBudgets exist, secrets come from Secrets only, selectors match.

Prints a table per render and exits 1 on any problem (2 when the check itself cannot run).

    .venv/bin/python tools/k8s_check.py [--root deploy/k8s] [--kube-version 1.33] [TARGET ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from modelyard_core.settings import KafkaSettings, Settings, Topics

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = REPO / "deploy" / "k8s"
DEFAULT_KUBE_VERSION = "1.33"
CONFIG_MAP = "modelyard-config"
# Commands of the image that talk to Kafka (everything but the simulator).
KAFKA_COMMANDS = {"tenant", "router", "metering", "inference", "ingress", "webhooks"}
# An environment variable with one of these names carries a secret and must come from a Secret.
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|API_KEY|SESSION_KEY|MASTER_KEYS|MONGO__URL)$")
CUSTOM_GROUPS = {"keda.sh", "kafka.strimzi.io"}
#: The kustomize that kubectl 1.32 embeds; the version `go install` builds where no kubectl is found.
KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5@v5.5.0"
HOW_TO_INSTALL = f"""neither kubectl nor kustomize is installed. Either
  - install kubectl (https://kubernetes.io/docs/tasks/tools/; Debian/Ubuntu: the Kubernetes apt repository), or
  - build kustomize with Go (already needed for FerretDB): GOBIN=$PWD/.cache/bin go install {KUSTOMIZE_MODULE}
    (make k8s-check does this by itself when go is installed)"""


class RenderError(Exception):
    """kustomize could not render a kustomization."""


def resource_id(resource: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = resource.get("metadata", {})
    return (resource.get("apiVersion", ""), resource.get("kind", ""), meta.get("namespace", ""), meta.get("name", ""))


def api_group(resource: dict[str, Any]) -> str:
    api_version = resource.get("apiVersion", "")
    return api_version.split("/")[0] if "/" in api_version else ""


@dataclass
class Row:
    kind: str
    name: str
    namespace: str
    schema: str = "-"
    problems: list[str] = field(default_factory=list)


@dataclass
class Render:
    target: str
    resources: list[dict[str, Any]]
    renderer: str
    problems: list[str] = field(default_factory=list)  # problems not tied to one resource
    rows: dict[tuple[str, str, str, str], Row] = field(default_factory=dict)

    def row(self, resource: dict[str, Any]) -> Row:
        rid = resource_id(resource)
        if rid not in self.rows:
            self.rows[rid] = Row(rid[1], rid[3], rid[2])
        return self.rows[rid]

    def fail(self, resource: dict[str, Any], message: str) -> None:
        self.row(resource).problems.append(message)

    def all_problems(self) -> list[str]:
        found = [f"{self.target}: {p}" for p in self.problems]
        for row in self.rows.values():
            found += [f"{self.target}: {row.kind}/{row.name}: {p}" for p in row.problems]
        return found


# --- rendering --------------------------------------------------------------------------------------


def kustomize_command() -> list[str] | None:
    """``kubectl kustomize``, else ``kustomize build`` (on the PATH, or built into the cache folder)."""
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    cached = Path(os.environ.get("MODELYARD_CACHE_DIR", REPO / ".cache")) / "bin" / "kustomize"
    found = shutil.which("kustomize") or (str(cached) if cached.is_file() else None)
    return [found, "build"] if found else None


def render(directory: Path) -> Render:
    command = kustomize_command()
    if command is None:
        print(f"k8s-check: {HOW_TO_INSTALL}", file=sys.stderr)
        raise SystemExit(2)
    done = subprocess.run([*command, str(directory)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RenderError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    resources = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    return Render(str(directory), resources, " ".join(Path(command[0]).name if i == 0 else c for i, c in enumerate(command)))


# --- schemas ----------------------------------------------------------------------------------------


def validate_schemas(result: Render, schema_dir: Path, kube_version: str) -> None:
    for resource in result.resources:
        row = result.row(resource)
        group = api_group(resource)
        if group in CUSTOM_GROUPS:
            path = schema_dir / f"{resource['kind'].lower()}.schema.json"
            if not path.is_file():
                row.schema = "none"
                row.problems.append(f"no schema for {resource['apiVersion']} {resource['kind']} in {schema_dir}")
                continue
            validator = jsonschema.Draft202012Validator(json.loads(path.read_text()))
            errors = sorted(validator.iter_errors(resource), key=lambda e: list(e.absolute_path))
            row.schema = f"{path.name}" if not errors else "FAIL"
            for error in errors:
                where = ".".join(str(p) for p in error.absolute_path) or "(root)"
                row.problems.append(f"schema: {where}: {error.message}")
            continue
        try:
            version = kubernetes_validate.validate(resource, kube_version, strict=True)
            row.schema = f"k8s {version} strict"
        except kubernetes_validate.ValidationError as error:
            row.schema = "FAIL"
            where = ".".join(str(p) for p in error.path) or "(root)"
            row.problems.append(f"schema (k8s {error.version}): {where}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            row.schema = "none"
            row.problems.append(error.message)


# --- invariants -------------------------------------------------------------------------------------


def find(resources: list[dict[str, Any]], kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    for resource in resources:
        meta = resource.get("metadata", {})
        if resource.get("kind") == kind and meta.get("name") == name and meta.get("namespace", "") == namespace:
            return resource
    return None


def namespace_of(resource: dict[str, Any]) -> str:
    return resource.get("metadata", {}).get("namespace", "")


def pod_spec(resource: dict[str, Any]) -> dict[str, Any]:
    return resource.get("spec", {}).get("template", {}).get("spec", {})


def pod_labels(resource: dict[str, Any]) -> dict[str, str]:
    return resource.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def command_of(deployment: dict[str, Any]) -> list[str]:
    containers = pod_spec(deployment).get("containers", [])
    return list(containers[0].get("args", [])) if containers else []


def pool_of(deployment: dict[str, Any]) -> str | None:
    args = command_of(deployment)
    if args[:1] == ["inference"] and "--pool" in args:
        index = args.index("--pool")
        return args[index + 1] if index + 1 < len(args) else None
    return None


@dataclass
class Config:
    """What the services will run with, read from the rendered ConfigMap (defaults from Settings)."""

    partitions: int
    shutdown_timeout_s: float
    bootstrap_servers: str
    security_protocol: str
    topics: Topics

    @classmethod
    def from_config_map(cls, data: dict[str, str]) -> Config:
        kafka, settings = KafkaSettings(), Settings.model_fields
        return cls(
            partitions=int(data.get("MODELYARD_KAFKA__PARTITIONS", kafka.partitions)),
            shutdown_timeout_s=float(data.get("MODELYARD_SHUTDOWN_TIMEOUT_S", settings["shutdown_timeout_s"].default)),
            bootstrap_servers=data.get("MODELYARD_KAFKA__BOOTSTRAP_SERVERS", kafka.bootstrap_servers),
            security_protocol=data.get("MODELYARD_KAFKA__SECURITY_PROTOCOL", kafka.security_protocol),
            topics=Topics(prefix=data.get("MODELYARD_TOPICS__PREFIX", "")),
        )


def check_invariants(result: Render) -> None:
    resources = result.resources
    deployments = [r for r in resources if r.get("kind") == "Deployment"]
    by_namespace: dict[str, Config] = {}
    for namespace in {namespace_of(r) for r in deployments}:
        config_map = find(resources, "ConfigMap", CONFIG_MAP, namespace)
        if config_map is None:
            if any(command_of(d)[:1] and command_of(d)[0] in KAFKA_COMMANDS for d in deployments):
                result.problems.append(f"no ConfigMap {CONFIG_MAP} in namespace {namespace!r}")
            continue
        by_namespace[namespace] = Config.from_config_map(config_map.get("data", {}))

    scaled_targets = set()
    for scaled in (r for r in resources if r.get("kind") == "ScaledObject"):
        target = check_scaled_object(result, scaled, by_namespace.get(namespace_of(scaled)))
        if target is not None:
            scaled_targets.add(resource_id(target))
    for deployment in deployments:
        config = by_namespace.get(namespace_of(deployment))
        check_deployment(result, deployment, config, resource_id(deployment) in scaled_targets)
    for resource in resources:
        kind = resource.get("kind")
        if kind == "Service":
            check_service(result, resource, deployments)
        elif kind == "PodDisruptionBudget":
            check_pdb(result, resource, deployments)
        elif kind == "ConfigMap":
            for key in resource.get("data", {}):
                if SECRET_NAME.search(key):
                    result.fail(resource, f"{key} looks like a secret: keep it in a Secret, not a ConfigMap")
        elif kind == "Secret" and (resource.get("data") or resource.get("stringData")):
            result.fail(resource, "a Secret with values in the manifests: reference Secrets created outside them")


def check_scaled_object(result: Render, scaled: dict[str, Any], config: Config | None) -> dict[str, Any] | None:
    spec = scaled.get("spec", {})
    namespace = namespace_of(scaled)
    ref = spec.get("scaleTargetRef", {})
    target = find(result.resources, ref.get("kind", "Deployment"), ref.get("name", ""), namespace)
    if target is None:
        result.fail(scaled, f"scaleTargetRef {ref.get('kind', 'Deployment')}/{ref.get('name')} is not in the render")
    max_replicas, min_replicas = spec.get("maxReplicaCount"), spec.get("minReplicaCount", 0)
    if max_replicas is None:
        result.fail(scaled, "maxReplicaCount is not set (KEDA's default, 100, is above any partition count)")
    elif isinstance(min_replicas, int) and isinstance(max_replicas, int) and min_replicas > max_replicas:
        result.fail(scaled, f"minReplicaCount {min_replicas} > maxReplicaCount {max_replicas}")
    if config is None:
        result.fail(scaled, f"no ConfigMap {CONFIG_MAP} in its namespace to read the partition count from")
        return target
    if isinstance(max_replicas, int) and max_replicas > config.partitions:
        result.fail(
            scaled,
            f"maxReplicaCount {max_replicas} > {config.partitions} partitions (MODELYARD_KAFKA__PARTITIONS): "
            "consumers beyond the partition count get no partition and sit idle",
        )
    pool = pool_of(target) if target is not None else None
    for index, trigger in enumerate(spec.get("triggers", [])):
        if trigger.get("type") != "kafka":
            continue
        meta = trigger.get("metadata", {})
        where = f"triggers[{index}]"
        if pool is None:
            result.fail(scaled, f"{where}: the target does not run `inference --pool <pool>`")
        else:
            expected_topic = config.topics.routed(pool)
            expected_group = f"{config.topics.prefix}modelyard-inference-{pool}"
            if meta.get("topic") != expected_topic:
                result.fail(scaled, f"{where}: topic {meta.get('topic')!r}, but pool {pool} consumes {expected_topic!r}")
            if meta.get("consumerGroup") != expected_group:
                result.fail(scaled, f"{where}: consumerGroup {meta.get('consumerGroup')!r}, expected {expected_group!r}")
        if meta.get("bootstrapServers") != config.bootstrap_servers:
            result.fail(
                scaled,
                f"{where}: bootstrapServers {meta.get('bootstrapServers')!r} differ from the services' "
                f"{config.bootstrap_servers!r}",
            )
        if meta.get("allowIdleConsumers") == "true":
            result.fail(scaled, f"{where}: allowIdleConsumers lets KEDA add consumers that get no partition")
        if config.security_protocol.startswith("SASL"):
            auth = trigger.get("authenticationRef")
            if not auth:
                result.fail(scaled, f"{where}: Kafka uses {config.security_protocol}, but KEDA has no authenticationRef")
            elif find(result.resources, auth.get("kind", "TriggerAuthentication"), auth["name"], namespace) is None:
                result.fail(scaled, f"{where}: authenticationRef {auth['name']!r} is not in the render")
    return target


def check_deployment(result: Render, deployment: dict[str, Any], config: Config | None, autoscaled: bool) -> None:
    spec, pod = deployment.get("spec", {}), pod_spec(deployment)
    args = command_of(deployment)
    command = args[0] if args else ""
    shutdown = config.shutdown_timeout_s if config else Settings.model_fields["shutdown_timeout_s"].default
    grace = pod.get("terminationGracePeriodSeconds")
    # The grace period also has to cover a preStop pause, which runs before SIGTERM is sent.
    pause = max((pre_stop_sleep(c) for c in pod.get("containers", [])), default=0)
    if grace is None:
        result.fail(deployment, "terminationGracePeriodSeconds is not set")
    elif grace <= shutdown + pause:
        needed = f"the graceful-shutdown timeout {shutdown:g} s" + (f" plus the {pause} s preStop pause" if pause else "")
        result.fail(deployment, f"terminationGracePeriodSeconds {grace} is not above {needed}")
    if autoscaled and "replicas" in spec:
        result.fail(deployment, "spec.replicas is set, but KEDA owns the replica count of this Deployment")
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        result.fail(deployment, "pod securityContext.runAsNonRoot is not true")
    for container in pod.get("containers", []):
        name = container.get("name")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            found = container.get(probe)
            if not found:
                result.fail(deployment, f"container {name}: no {probe}")
            elif command in KAFKA_COMMANDS and found.get("httpGet", {}).get("path") != path:
                result.fail(deployment, f"container {name}: {probe} must GET {path}")
        resources = container.get("resources", {})
        for part in ("requests", "limits"):
            missing = {"cpu", "memory"} - set(resources.get(part, {}))
            if missing:
                result.fail(deployment, f"container {name}: resources.{part} lacks {', '.join(sorted(missing))}")
        env = {item["name"]: item for item in container.get("env", [])}
        for item in env.values():
            if SECRET_NAME.search(item["name"]) and "secretKeyRef" not in item.get("valueFrom", {}):
                result.fail(deployment, f"container {name}: {item['name']} must come from a secretKeyRef")
            ref = item.get("valueFrom", {}).get("configMapKeyRef")
            if ref and find(result.resources, "ConfigMap", ref["name"], namespace_of(deployment)) is None:
                result.fail(deployment, f"container {name}: ConfigMap {ref['name']!r} is not in the render")
        for source in container.get("envFrom", []):
            ref = source.get("configMapRef")
            if ref and find(result.resources, "ConfigMap", ref["name"], namespace_of(deployment)) is None:
                result.fail(deployment, f"container {name}: envFrom ConfigMap {ref['name']!r} is not in the render")
        if config and command in KAFKA_COMMANDS and config.security_protocol.startswith("SASL"):
            for variable in ("MODELYARD_KAFKA__SASL_USERNAME", "MODELYARD_KAFKA__SASL_PASSWORD"):
                if variable not in env:
                    result.fail(
                        deployment, f"container {name}: Kafka uses {config.security_protocol} but {variable} is unset"
                    )
    pdbs = [
        p for p in result.resources
        if p.get("kind") == "PodDisruptionBudget" and namespace_of(p) == namespace_of(deployment)
        and selects(p.get("spec", {}).get("selector", {}).get("matchLabels", {}), pod_labels(deployment))
    ]
    if not pdbs:
        result.fail(deployment, "no PodDisruptionBudget selects its pods")


def pre_stop_sleep(container: dict[str, Any]) -> int:
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    if "sleep" in pre_stop:
        return int(pre_stop["sleep"].get("seconds", 0))
    command = pre_stop.get("exec", {}).get("command", [])
    if len(command) == 2 and command[0] == "sleep" and command[1].isdigit():
        return int(command[1])
    return 0


def check_service(result: Render, service: dict[str, Any], deployments: list[dict[str, Any]]) -> None:
    selector = service.get("spec", {}).get("selector", {})
    backends = [
        d for d in deployments if namespace_of(d) == namespace_of(service) and selects(selector, pod_labels(d))
    ]
    if not backends:
        result.fail(service, f"selector {selector} matches no Deployment")
        return
    named_ports = {
        port.get("name") for d in backends for c in pod_spec(d).get("containers", []) for port in c.get("ports", [])
    }
    for port in service.get("spec", {}).get("ports", []):
        target = port.get("targetPort")
        if isinstance(target, str) and target not in named_ports:
            result.fail(service, f"targetPort {target!r} is not a named container port of {selector}")


def check_pdb(result: Render, pdb: dict[str, Any], deployments: list[dict[str, Any]]) -> None:
    spec = pdb.get("spec", {})
    selector = spec.get("selector", {}).get("matchLabels", {})
    matched = [d for d in deployments if namespace_of(d) == namespace_of(pdb) and selects(selector, pod_labels(d))]
    if len(matched) != 1:
        result.fail(pdb, f"selector {selector} matches {len(matched)} Deployments, expected exactly 1")
        return
    replicas = matched[0].get("spec", {}).get("replicas", 1)
    if spec.get("maxUnavailable") == 0 or (
        isinstance(spec.get("minAvailable"), int) and spec["minAvailable"] >= replicas
    ):
        result.fail(pdb, "allows no voluntary eviction: node drains would block")


# --- report -----------------------------------------------------------------------------------------


def print_table(result: Render) -> None:
    print(f"\n== {result.target}  ({len(result.resources)} resources; renderer: {result.renderer})")
    rows = sorted(result.rows.values(), key=lambda r: (r.kind, r.name))
    widths = [max([len(h)] + [len(v) for v in col]) for h, col in (
        ("KIND", [r.kind for r in rows]), ("NAME", [r.name for r in rows]),
        ("NAMESPACE", [r.namespace or "-" for r in rows]), ("SCHEMA", [r.schema for r in rows]),
    )]
    line = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    print(line.format("KIND", "NAME", "NAMESPACE", "SCHEMA", "CHECKS"))
    for row in rows:
        status = "ok" if not row.problems else f"FAIL ({len(row.problems)})"
        print(line.format(row.kind, row.name, row.namespace or "-", row.schema, status))


def default_targets(root: Path) -> list[Path]:
    overlays = sorted(p for p in (root / "overlays").glob("*") if (p / "kustomization.yaml").is_file())
    return [root / "base", *overlays]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="deploy/k8s folder (schemas/, base/, overlays/)")
    parser.add_argument("--kube-version", default=DEFAULT_KUBE_VERSION, help="Kubernetes version of the schemas")
    parser.add_argument("targets", nargs="*", type=Path, help="kustomization folders (default: base and overlays/*)")
    args = parser.parse_args(argv)

    targets = args.targets or default_targets(args.root)
    problems: list[str] = []
    total = 0
    for target in targets:
        try:
            result = render(target)
        except (RenderError, yaml.YAMLError, OSError) as error:
            problems.append(f"{target}: cannot render: {error}")
            print(f"\n== {target}  cannot render: {error}")
            continue
        validate_schemas(result, args.root / "schemas", args.kube_version)
        check_invariants(result)
        print_table(result)
        problems += result.all_problems()
        total += len(result.resources)

    print()
    for problem in problems:
        print(f"FAIL {problem}")
    print(f"k8s-check: {len(targets)} renders, {total} resources, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
