"""The learned router model in the router service, on the real broker and MongoDB protocol (issue 16).

Two router processes in one consumer group, started with `MODELYARD_ROUTER__MODEL=helpdesk`. Queries
are published straight to `queries.submitted`, tenants straight to the snapshots topic. An operator
publishes another model with `modelyard router publish-model`: both replicas switch to it; withdrawing
it brings back the configured file.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from aiokafka.partitioner import murmur2
from modelyard_events import TIER_LIMITS, Industry, ModelClass, QueryRouted, QuerySubmitted, TenantSnapshot, Tier
from modelyard_harness import Stack, TopicReader, isolated_stack, modelyard_command, produce_raw, publish_queries, unique_prefix
from modelyard_learn import modelfile
from modelyard_router.learned import builtin_path

pytestmark = pytest.mark.system

BREACH = "Someone got into our payment database last night and card data may be exposed, what do we owe regulators?"
STATUS = "What is the status of ticket 4411?"


@pytest.fixture(scope="module")
def routers(kafka: str, mongo_url: str) -> Iterator[Stack]:
    stack = isolated_stack(kafka, mongo_url, unique_prefix("learned"))
    for name in ("router-a", "router-b"):
        stack.add(name, ["router"], "/readyz", MODELYARD_ROUTER__MODEL="helpdesk")
    stack.start("router-a", "router-b")
    try:
        yield stack
    finally:
        stack.stop()


def partition_of(key: str, partitions: int) -> int:
    """The producer's default partitioner (murmur2 of the key), as Kafka clients agree on it."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


async def tenants(stack: Stack, per_partition: int) -> list[str]:
    """Tenants on every partition of the stack's topics, so every replica routes some of them."""
    partitions = int(stack.env()["MODELYARD_KAFKA__PARTITIONS"])
    ids: list[str] = []
    while any(sum(partition_of(t, partitions) == p for t in ids) < per_partition for p in range(partitions)):
        t = f"learned-{uuid.uuid4().hex[:8]}"
        if sum(partition_of(x, partitions) == partition_of(t, partitions) for x in ids) < per_partition:
            ids.append(t)
    snaps = [TenantSnapshot(tenant_id=t, version=1, name=t, tier=Tier.ENTERPRISE, industry=Industry.OTHER,
                            limits=TIER_LIMITS[Tier.ENTERPRISE]) for t in ids]
    await produce_raw(stack.kafka, stack.topic("tenants.snapshots"), [(s.tenant_id.encode(), s.model_dump_json().encode()) for s in snaps])
    return ids


async def route(stack: Stack, reader: TopicReaders, tenant_ids: list[str], text: str) -> list[QueryRouted]:
    now = datetime.now(UTC)
    qs = [QuerySubmitted(tenant_id=t, query_id=str(uuid.uuid4()), text=text, time=now) for t in tenant_ids]
    await publish_queries(stack.kafka, stack.topic("queries.submitted"), qs)
    return await reader.routed({q.query_id for q in qs})


class TopicReaders:
    def __init__(self, stack: Stack) -> None:
        self.readers = [TopicReader(stack.kafka, stack.topic(t)) for t in ("queries.routed.slm", "queries.routed.llm")]

    async def __aenter__(self) -> TopicReaders:
        for r in self.readers:
            await r.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for r in self.readers:
            await r.__aexit__(*exc)

    async def routed(self, ids: set[str], timeout_s: float = 60) -> list[QueryRouted]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            found = {e.query_id: e for r in self.readers for e in map(QueryRouted.model_validate_json, (x.value for x in list(r.records)))
                     if e.query_id in ids}
            if len(found) == len(ids):
                return list(found.values())
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{len(found)} of {len(ids)} queries routed")
            await asyncio.sleep(0.05)


def publish_model(stack: Stack, *args: str) -> dict:
    done = subprocess.run([modelyard_command(), "router", "publish-model", *args], env=stack.env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


async def until_every_replica_serves(stack: Stack, reader: TopicReaders, tenant_ids: list[str], label: str,
                                     timeout_s: float = 60) -> list[QueryRouted]:
    """Route a query per tenant (tenants on every partition: both replicas decide) until all name ``label``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        decided = await route(stack, reader, tenant_ids, STATUS)
        if all(d.decision.router_model == label for d in decided):
            return decided
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"not every replica serves {label}: {sorted({d.decision.router_model for d in decided})}")
        await asyncio.sleep(0.2)


async def test_the_configured_model_routes_explains_and_a_published_one_replaces_it_on_every_replica(routers: Stack):
    tenant_ids = await tenants(routers, 2)
    configured = f"helpdesk@{modelfile.digest(modelfile.load(builtin_path('helpdesk'))[1])[:12]}"
    async with TopicReaders(routers) as reader:
        breach = (await route(routers, reader, tenant_ids[:1], BREACH))[0]
        status = (await route(routers, reader, tenant_ids[:1], STATUS))[0]
        assert breach.decision.model_class is ModelClass.LLM_PLUS and status.decision.model_class is ModelClass.SLM
        assert breach.decision.router_model == status.decision.router_model == configured
        assert 0 <= status.decision.score < breach.decision.score <= 1  # P(small fails)
        assert any(r.startswith(f"learned router {configured}") for r in breach.decision.reasons)
        assert any(r.startswith("moved P(small fails) most") for r in breach.decision.reasons)

        published = publish_model(routers, "mmlu", "--description", "knowledge traffic")
        assert published["source"] == "operator" and published["name"] == "default"
        decided = await until_every_replica_serves(routers, reader, tenant_ids, published["label"])
        assert {d.decision.router_model for d in decided} == {published["label"]}

        publish_model(routers, "--withdraw")
        await until_every_replica_serves(routers, reader, tenant_ids, configured)
