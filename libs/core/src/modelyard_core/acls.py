"""Least privilege on the bus: each service's Kafka principal and ACLs, generated from the topology.

``modelyard_events.topology`` says which topics each service receives and sends (the AsyncAPI
documents are generated from the same map) and which consumer groups it joins. From it:

* a topic the service receives: ``READ`` (which implies ``DESCRIBE``: metadata and offsets);
* a topic it sends to: ``WRITE`` (which also lets its idempotent producer start, KIP-679);
* every topic it uses: ``CREATE``, so the service can create its own topics at start-up (it never
  touches another service's);
* every consumer group it joins: ``READ`` (join, commit, fetch offsets).

Nothing else: no cluster permission, no wildcard, no prefix pattern. Names carry the deployment's
``MODELYARD_TOPICS__PREFIX``, so several deployments share a cluster without reaching each other.

``bindings(topics)`` is the list; ``format_*`` renders it for ``kafka-acls.sh`` or as Strimzi
``KafkaUser`` resources; ``apply`` creates the ACLs with an admin client (the command
``modelyard kafka acls --apply``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from aiokafka.protocol.admin import CreateAclsRequest

from modelyard_events.topology import CONSUMER_GROUPS, SERVICES

from .kafka_clients import make_admin
from .settings import KafkaSettings, Topics

#: The Kafka user name of each service's principal (``User:<name>``).
PRINCIPAL_PREFIX = "modelyard-"

Operation = Literal["READ", "WRITE", "CREATE"]
ResourceType = Literal["TOPIC", "GROUP"]

# Kafka protocol codes (org.apache.kafka.common.acl / resource).
_RESOURCE_CODE = {"TOPIC": 2, "GROUP": 3}
_OPERATION_CODE = {"READ": 3, "WRITE": 4, "CREATE": 5}
_LITERAL, _ALLOW = 3, 3


def principal(service: str) -> str:
    """The Kafka user the service authenticates as (SCRAM user name), e.g. ``modelyard-router``."""
    return f"{PRINCIPAL_PREFIX}{service}"


@dataclass(frozen=True, order=True)
class AclBinding:
    """One ALLOW rule on a literal resource name, from any host."""

    user: str
    resource_type: ResourceType
    name: str
    operation: Operation

    @property
    def principal(self) -> str:
        return f"User:{self.user}"


def service_topics(service: str, topics: Topics) -> tuple[list[str], list[str]]:
    """(topics the service reads, topics it writes), full names under the deployment's prefix."""
    receives, sends = SERVICES[service]

    def names(channels: Iterable[str]) -> list[str]:
        return [topics.deadletter(service) if c == "deadletter" else topics.name(c) for c in channels]

    return names(receives), names(sends)


def service_bindings(service: str, topics: Topics) -> list[AclBinding]:
    user = principal(service)
    reads, writes = service_topics(service, topics)
    out = {AclBinding(user, "TOPIC", t, "READ") for t in reads}
    out |= {AclBinding(user, "TOPIC", t, "WRITE") for t in writes}
    out |= {AclBinding(user, "TOPIC", t, "CREATE") for t in (*reads, *writes)}
    out |= {AclBinding(user, "GROUP", f"{topics.prefix}{g}", "READ") for g in CONSUMER_GROUPS.get(service, ())}
    return sorted(out)


def bindings(topics: Topics, services: Iterable[str] | None = None) -> list[AclBinding]:
    """Every service's ACLs (or those of ``services``)."""
    return [b for s in (services or SERVICES) for b in service_bindings(s, topics)]


# --------------------------------------------------------------------------------------------------
# Rendering


def format_json(acls: list[AclBinding]) -> str:
    return json.dumps([{**asdict(b), "principal": b.principal, "pattern": "LITERAL", "permission": "ALLOW"}
                       for b in acls], indent=2)


def format_kafka_acls(acls: list[AclBinding], *, bootstrap: str = "$BOOTSTRAP",
                      command_config: str = "$ADMIN_CONFIG") -> str:
    """One ``kafka-acls.sh --add`` command per rule (for a cluster without an operator)."""
    flag = {"TOPIC": "--topic", "GROUP": "--group"}
    return "\n".join(
        f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config {command_config} --add "
        f"--allow-principal {b.principal} --operation {b.operation.capitalize()} {flag[b.resource_type]} {b.name} "
        "--resource-pattern-type literal"
        for b in acls)


def strimzi_users(acls: list[AclBinding], *, cluster: str = "modelyard") -> list[dict[str, Any]]:
    """Strimzi ``KafkaUser`` resources (SCRAM-SHA-512, simple authorization) with the same rules."""
    users: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for b in acls:  # one rule per resource, with all its operations
        rule = users.setdefault(b.user, {}).setdefault((b.resource_type, b.name), {
            "resource": {"type": b.resource_type.lower(), "name": b.name, "patternType": "literal"},
            "operations": [], "host": "*"})
        rule["operations"].append(b.operation.capitalize())
    return [{
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaUser",
        "metadata": {"name": user, "labels": {"strimzi.io/cluster": cluster, "app.kubernetes.io/part-of": "modelyard"}},
        "spec": {"authentication": {"type": "scram-sha-512"},
                 "authorization": {"type": "simple", "acls": list(rules.values())}},
    } for user, rules in users.items()]


# --------------------------------------------------------------------------------------------------
# Applying


class AclError(RuntimeError):
    pass


async def apply(kafka: KafkaSettings, acls: list[AclBinding]) -> int:
    """Create the ACLs on the cluster (as a principal allowed to, e.g. a super user); how many.

    Creating an ACL that exists already is a no-op in Kafka, so this is safe to repeat. aiokafka has no
    public ACL call yet; the CreateAcls request is sent through the admin client's request path.
    """
    admin = make_admin(kafka, client_id="modelyard-acls")
    await admin.start()
    try:
        for b in acls:
            request = CreateAclsRequest(_RESOURCE_CODE[b.resource_type], b.name, _LITERAL, b.principal, "*",
                                        _OPERATION_CODE[b.operation], _ALLOW)
            response = await admin._send_request(request)  # noqa: SLF001 - see the docstring
            for error_code, error_message in response.creation_responses:
                if error_code:
                    raise AclError(f"creating {b} failed: error {error_code} {error_message}")
        return len(acls)
    finally:
        await admin.close()

