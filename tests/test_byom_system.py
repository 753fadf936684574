"""Bring your own model end to end (issue 20): an enterprise tenant's queries of a class reach its own
endpoint — a second model simulator process — priced with its prices and metered as tenant-paid, while
other tenants are untouched; a broken tenant endpoint fails that tenant's queries with a clear reason
and nobody else's.

The whole pipeline as processes; the tenant's endpoint is a second `modelyard simulator` serving a
model of its own name (``acme-private-7b``). The platform's backend is the first simulator.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from modelyard_events import OutcomeStatus, QueryOutcome, QuerySubmitted
from modelyard_harness import Stack, TopicReader, build_stack, create_tenant, free_port, outcomes_by_query, publish_queries, unique_prefix
from pymongo import AsyncMongoClient

pytestmark = pytest.mark.system

OWN_MODEL = "acme-private-7b"
OWN_KEY = "sk-acme-own-endpoint-key-1234567890"
PRICES = {"input_usd_per_m": 1.25, "output_usd_per_m": 5.0}
SIMPLE = "What is the status of ticket #{n}?"


@pytest.fixture(scope="module")
def byom(kafka: str, mongo_url: str) -> Iterator[Stack]:
    s = build_stack(kafka, mongo_url, unique_prefix("byom"),
                    extra_env={"MODELYARD_MODEL_ENDPOINTS_ALLOW_HTTP_LOCALHOST": "true"})
    s.add("tenant-sim", ["simulator"], "/v1/models",
          MODELYARD_SIMULATOR_MODELS=json.dumps({OWN_MODEL: {"kind": "slm", "latency_ms": 5}}))
    with s.running():
        yield s


def own_url(stack: Stack) -> str:
    return stack.processes["tenant-sim"].ready_url.removesuffix("/models")


async def put_endpoint(stack: Stack, tenant: dict, base_url: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        return await http.put(f"/v1/tenants/{tenant['tenant_id']}/models", headers={"Authorization": f"Bearer {tenant['api_key']}"},
                              json={"model_class": "slm", "base_url": base_url, "model": OWN_MODEL, "api_key": OWN_KEY, **PRICES})


async def ask(stack: Stack, tenants: list[dict], n: int) -> dict[str, list[QueryOutcome]]:
    queries = [QuerySubmitted(tenant_id=t["tenant_id"], query_id=str(uuid.uuid4()), text=SIMPLE.format(n=i), requested_class="slm")
               for t in tenants for i in range(n)]
    async with TopicReader(stack.kafka, stack.topic("queries.outcomes")) as reader:
        await publish_queries(stack.kafka, stack.topic("queries.submitted"), queries)
        wanted = {q.query_id for q in queries}
        done = await reader.wait_for(lambda recs: wanted <= (o := outcomes_by_query(recs)).keys() and o, 120, "every outcome")
    by_tenant: dict[str, list[QueryOutcome]] = {t["tenant_id"]: [] for t in tenants}
    for q in queries:
        by_tenant[q.tenant_id].append(done[q.query_id][0])
    return by_tenant


async def sim_stats(url: str, model: str) -> dict:
    async with httpx.AsyncClient(timeout=10) as http:
        stats = (await http.get(url.removesuffix("/v1") + "/admin/stats")).json()
    return stats["models"].get(model) or {}


async def sim_requests(url: str, model: str) -> int:
    return (await sim_stats(url, model)).get("requests", 0)


async def _until_answered_by(stack: Stack, tenant: dict, model: str, timeout_s: float = 30.0) -> None:
    """Probe queries until one is answered by ``model``: the inference workers' tenant views caught up."""
    deadline = time.monotonic() + timeout_s
    while (await ask(stack, [tenant], 1))[tenant["tenant_id"]][0].cascade[0].model != model:
        assert time.monotonic() < deadline, f"queries of {tenant['tenant_id']} never reached {model}"


async def test_an_enterprise_tenants_queries_reach_its_own_endpoint(byom):
    acme = await create_tenant(byom.api_url, "Acme Own Model", industry="tech", tier="enterprise")
    other = await create_tenant(byom.api_url, "Plain Basic", industry="tech", tier="basic")
    refused = await put_endpoint(byom, other, own_url(byom))
    assert refused.status_code == 403 and refused.json()["error"] == "feature_not_in_tier", refused.text
    saved = await put_endpoint(byom, acme, own_url(byom))
    assert saved.status_code == 200, saved.text
    assert OWN_KEY not in saved.text and saved.json()["model"] == OWN_MODEL

    await _until_answered_by(byom, acme, OWN_MODEL)  # the workers' tenant views have the endpoint
    platform_before = await sim_requests(byom.simulator_url, "gpt-4o-mini")
    own_before = await sim_requests(own_url(byom), OWN_MODEL)
    by_tenant = await ask(byom, [acme, other], 6)
    mine, theirs = by_tenant[acme["tenant_id"]], by_tenant[other["tenant_id"]]
    assert all(o.status is OutcomeStatus.COMPLETED and o.cascade[0].model == OWN_MODEL for o in mine), mine
    assert all(o.status is OutcomeStatus.COMPLETED and o.cascade[0].model == "gpt-4o-mini" for o in theirs), theirs
    assert await sim_requests(own_url(byom), OWN_MODEL) - own_before == len(mine)  # the tenant's endpoint answered them
    assert await sim_requests(byom.simulator_url, OWN_MODEL) == 0
    assert await sim_requests(byom.simulator_url, "gpt-4o-mini") - platform_before == len(theirs)
    first = mine[0].cascade[0]
    assert first.cost_usd == pytest.approx((first.input_tokens * 1.25 + first.output_tokens * 5.0) / 1e6)

    # Metered as tenant-paid, with the tenant's prices; not part of the platform's billable tokens.
    own_calls = own_before + len(mine)  # the probes too: every call the endpoint answered
    mongo = AsyncMongoClient(byom.mongo_url)
    try:
        db = mongo[byom.database]
        deadline = time.monotonic() + 60
        while True:
            doc = await db["usage_daily"].find_one({"tenant_id": acme["tenant_id"], "model": OWN_MODEL})
            if doc and doc.get("tenant_paid_calls", 0) >= own_calls:
                break
            assert time.monotonic() < deadline, f"metering did not fold the tenant-paid calls: {doc}"
            await asyncio.sleep(0.2)
        own_stats = await sim_stats(own_url(byom), OWN_MODEL)
        assert doc["tenant_paid_calls"] == doc["calls"] == own_stats["requests"] == own_calls
        assert doc["tenant_paid_tokens"] == doc["input_tokens"] + doc["output_tokens"]
        own_tokens = doc["tenant_paid_tokens"]
        # The key is on the bus sealed only.
        snapshots = await _snapshots(byom, acme, lambda value: b'"endpoints":[{' in value)
        assert not any(OWN_KEY.encode() in value for value in snapshots)
    finally:
        await mongo.close()
    async with httpx.AsyncClient(base_url=byom.api_url, timeout=30) as http:
        month = mine[0].submitted_at.strftime("%Y-%m")
        report = (await http.get(f"/v1/tenants/{acme['tenant_id']}/billing/{month}", headers={"Authorization": f"Bearer {acme['api_key']}"})).json()
    assert report["usage"]["tenant_paid_tokens"] == own_tokens and report["usage"]["tenant_paid_calls"] == own_calls
    assert report["billable_tokens"] == report["usage"]["tokens"] - report["usage"]["tenant_paid_tokens"]


async def test_a_broken_tenant_endpoint_fails_only_that_tenants_queries(byom):
    broken = await create_tenant(byom.api_url, "Broken Own Model", industry="tech", tier="enterprise")
    other = await create_tenant(byom.api_url, "Bystander", industry="tech", tier="professional")
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    assert (await put_endpoint(byom, broken, dead)).status_code == 200
    await _snapshots(byom, broken, lambda value: b'"endpoints":[{' in value)
    deadline = time.monotonic() + 30  # until the workers' views have the (broken) endpoint
    while (await ask(byom, [broken], 1))[broken["tenant_id"]][0].status is not OutcomeStatus.FAILED:
        assert time.monotonic() < deadline, "the broken endpoint never took over the tenant's queries"
    by_tenant = await ask(byom, [broken, other], 8)
    failed, fine = by_tenant[broken["tenant_id"]], by_tenant[other["tenant_id"]]
    assert all(o.status is OutcomeStatus.FAILED for o in failed), failed
    assert all(o.reason and o.reason.startswith(f"the tenant's own endpoint for class slm ({dead}, model {OWN_MODEL}) failed")
               for o in failed), failed[0].reason
    assert all(o.status is OutcomeStatus.COMPLETED for o in fine), fine
    # Removing the endpoint gives the class back to the platform's models.
    async with httpx.AsyncClient(base_url=byom.api_url, timeout=30) as http:
        gone = await http.delete(f"/v1/tenants/{broken['tenant_id']}/models/slm", headers={"Authorization": f"Bearer {broken['api_key']}"})
    assert gone.status_code == 204
    await _snapshots(byom, broken, lambda value: b'"endpoints":[]' in value)  # published when the DELETE returned
    await _until_answered_by(byom, broken, "gpt-4o-mini")
    again = (await ask(byom, [broken], 2))[broken["tenant_id"]]
    assert all(o.status is OutcomeStatus.COMPLETED and o.cascade[0].model == "gpt-4o-mini" for o in again), again


async def _snapshots(stack: Stack, tenant: dict, newest_is, timeout_s: float = 30.0) -> list[bytes]:
    """The tenant's snapshots on the topic, once the newest one satisfies ``newest_is``."""
    key = tenant["tenant_id"].encode()

    def mine(records) -> list[bytes]:
        return [r.value for r in records if r.key == key and r.value is not None]

    async with TopicReader(stack.kafka, stack.topic("tenants.snapshots")) as reader:
        return await reader.wait_for(lambda recs: (values := mine(recs)) and newest_is(values[-1]) and values, timeout_s,
                                     "the tenant's newest snapshot")
