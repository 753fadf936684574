"""The bus's permissions come from one map: the topology the AsyncAPI documents are generated from.
These checks keep the ACLs, the services' consumer groups, the local broker's SCRAM users and the
Kubernetes KafkaUser resources from drifting away from it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml
from modelyard_core import acls
from modelyard_core.settings import Topics
from modelyard_events.topology import CONSUMER_GROUPS, SERVICES
from modelyard_inference.settings import InferenceSettings
from modelyard_metering.settings import MeteringSettings
from modelyard_router.settings import RouterSettings

ROOT = Path(__file__).resolve().parents[1]


def rules(service: str, operation: str, kind: str = "TOPIC", prefix: str = "p.") -> set[str]:
    return {b.name for b in acls.service_bindings(service, Topics(prefix=prefix))
            if b.operation == operation and b.resource_type == kind}


def test_each_service_reads_exactly_what_it_receives_and_writes_exactly_what_it_sends():
    topics = Topics(prefix="p.")
    for service in SERVICES:
        reads, writes = acls.service_topics(service, topics)
        assert rules(service, "READ") == set(reads) and rules(service, "WRITE") == set(writes)
        assert rules(service, "CREATE") == set(reads) | set(writes)
        assert rules(service, "READ", "GROUP") == {f"p.{g}" for g in CONSUMER_GROUPS.get(service, ())}
        assert all(b.user == f"modelyard-{service}" for b in acls.service_bindings(service, topics))
    assert "p.usage.recorded" not in rules("router", "READ")
    assert "p.tenants.snapshots" not in rules("inference", "WRITE")
    assert rules("ingress", "READ") == {"p.queries.outcomes", "p.queries.streams", "p.tenants.revocations"}


def test_the_services_consumer_groups_are_the_topologys():
    assert (RouterSettings().group_id,) == CONSUMER_GROUPS["router"]
    assert (MeteringSettings().group_id,) == CONSUMER_GROUPS["metering"]
    assert tuple(InferenceSettings(pool=p).group_id for p in ("slm", "llm")) == CONSUMER_GROUPS["inference"]


def test_the_local_secured_broker_has_a_user_per_service():
    script = (ROOT / "deploy/local/kafka.sh").read_text()
    listed = re.search(r"^SERVICES=\(([^)]*)\)", script, re.M)
    assert listed and set(listed.group(1).split()) == set(SERVICES)


def test_the_kubernetes_kafka_users_are_generated_and_current():
    committed = list(yaml.safe_load_all((ROOT / "deploy/k8s/overlays/prod/kafka-users.yaml").read_text()))
    assert committed == acls.strimzi_users(acls.bindings(Topics())), \
        "regenerate: modelyard kafka acls --format strimzi (see the file's header)"


def test_the_command_prints_the_same_rules():
    out = subprocess.run([str(Path(sys.executable).with_name("modelyard")), "kafka", "acls", "--service", "router",
                          "--format", "json"], capture_output=True, text=True, check=True)
    printed = json.loads(out.stdout)
    assert {(r["resource_type"], r["name"], r["operation"]) for r in printed} == {
        (b.resource_type, b.name, b.operation) for b in acls.service_bindings("router", Topics())}
