"""deploy/k8s passes tools/k8s_check.py, and the check fails on each kind of broken manifest.

Broken manifests are made from a copy of deploy/k8s in a temporary folder; the check runs as a
subprocess, exactly as ``make k8s-check`` runs it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
CHECK = REPO / "tools" / "k8s_check.py"


def run_check(*args: str | Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, str(CHECK), *map(str, args)], capture_output=True, text=True, timeout=180, cwd=REPO
    )
    if done.returncode == 2 and "neither kubectl nor kustomize" in done.stderr:
        pytest.skip(done.stderr.strip())  # `make test` builds kustomize with Go first; this is a bare pytest run
    return done


def edit(path: Path, kind: str, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``change`` to the one document of ``kind``/``name`` in a multi-document YAML file."""
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    matches = [d for d in documents if d.get("kind") == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name} not found once in {path}"
    change(matches[0])
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))


@pytest.fixture
def k8s(tmp_path: Path) -> Path:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    return copy


def check_copy(root: Path, *targets: str) -> subprocess.CompletedProcess[str]:
    return run_check("--root", root, *[root / t for t in targets])


def test_manifests_pass_the_check() -> None:
    done = run_check()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "renderer: kubectl kustomize" in done.stdout or "renderer: kustomize build" in done.stdout
    for target in ("base", "overlays/dev", "overlays/prod"):
        assert f"== {K8S / target}" in done.stdout
    assert "ScaledObject" in done.stdout and "scaledobject.schema.json" in done.stdout
    assert done.stdout.strip().endswith("0 problems")


def test_max_replicas_above_partitions_fails(k8s: Path) -> None:
    edit(k8s / "base" / "inference-slm.yaml", "ScaledObject", "modelyard-inference-slm",
         lambda so: so["spec"].update(maxReplicaCount=9))
    done = check_copy(k8s, "base", "overlays/prod")
    assert done.returncode == 1
    assert done.stdout.count("ScaledObject/modelyard-inference-slm: maxReplicaCount 9 > 8 partitions") == 2, done.stdout
    assert "inference-llm: maxReplicaCount" not in done.stdout


def test_partition_count_comes_from_the_config_map(k8s: Path) -> None:
    # Fewer partitions in prod: the unchanged maxReplicaCount of 8 is now too high for both pools.
    edit(k8s / "overlays" / "prod" / "config.yaml", "ConfigMap", "modelyard-config",
         lambda cm: cm["data"].update(MODELYARD_KAFKA__PARTITIONS="4"))
    done = check_copy(k8s, "overlays/prod")
    assert done.returncode == 1
    assert "inference-slm: maxReplicaCount 8 > 4 partitions" in done.stdout
    assert "inference-llm: maxReplicaCount 8 > 4 partitions" in done.stdout


def test_scaled_object_schema_violation_fails(k8s: Path) -> None:
    # KEDA trigger metadata is map[string]string: a number does not apply.
    def numeric_lag(so: dict[str, Any]) -> None:
        so["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 256

    edit(k8s / "base" / "inference-slm.yaml", "ScaledObject", "modelyard-inference-slm", numeric_lag)
    done = check_copy(k8s, "base")
    assert done.returncode == 1
    assert "schema: spec.triggers.0.metadata.lagThreshold: 256 is not of type 'string'" in done.stdout, done.stdout


def test_unknown_field_in_a_deployment_fails(k8s: Path) -> None:
    def typo(deployment: dict[str, Any]) -> None:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        container["readinesProbe"] = container.pop("readinessProbe")

    edit(k8s / "base" / "router.yaml", "Deployment", "modelyard-router", typo)
    done = check_copy(k8s, "base")
    assert done.returncode == 1
    assert "Deployment/modelyard-router: schema (k8s 1.33)" in done.stdout
    assert "readinesProbe" in done.stdout
    assert "Deployment/modelyard-router: container modelyard: no readinessProbe" in done.stdout


def test_grace_period_not_above_shutdown_timeout_fails(k8s: Path) -> None:
    edit(k8s / "base" / "metering.yaml", "Deployment", "modelyard-metering",
         lambda d: d["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=20))
    done = check_copy(k8s, "base")
    assert done.returncode == 1
    assert "terminationGracePeriodSeconds 20 is not above the graceful-shutdown timeout 20 s" in done.stdout


def test_consumer_group_of_another_pool_fails(k8s: Path) -> None:
    def wrong_group(so: dict[str, Any]) -> None:
        so["spec"]["triggers"][0]["metadata"]["consumerGroup"] = "modelyard-inference-slm"

    edit(k8s / "base" / "inference-llm.yaml", "ScaledObject", "modelyard-inference-llm", wrong_group)
    done = check_copy(k8s, "base")
    assert done.returncode == 1
    assert "consumerGroup 'modelyard-inference-slm', expected 'modelyard-inference-llm'" in done.stdout


def test_literal_secret_value_fails(k8s: Path) -> None:
    def literal_token(deployment: dict[str, Any]) -> None:
        env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        for item in env:
            if item["name"] == "MODELYARD_ADMIN_TOKEN":
                item.pop("valueFrom")
                item["value"] = "hunter2"

    edit(k8s / "base" / "tenant.yaml", "Deployment", "modelyard-tenant", literal_token)
    done = check_copy(k8s, "base")
    assert done.returncode == 1
    assert "MODELYARD_ADMIN_TOKEN must come from a secretKeyRef" in done.stdout


def test_sasl_without_keda_credentials_fails(k8s: Path) -> None:
    # Drop the prod overlay's ScaledObject patch: KEDA would then read lag without SASL credentials.
    kustomization = k8s / "overlays" / "prod" / "kustomization.yaml"
    data = yaml.safe_load(kustomization.read_text())
    data["patches"] = [p for p in data["patches"] if p.get("target", {}).get("kind") != "ScaledObject"]
    kustomization.write_text(yaml.safe_dump(data, sort_keys=False))
    done = check_copy(k8s, "overlays/prod")
    assert done.returncode == 1
    assert "Kafka uses SASL_PLAINTEXT, but KEDA has no authenticationRef" in done.stdout
    assert "bootstrapServers 'modelyard-kafka-bootstrap.kafka.svc:9092' differ" in done.stdout
