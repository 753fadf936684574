"""The router learns from its own cascades, through the real pipeline (issue 16).

The whole pipeline as processes on the real broker and MongoDB protocol: the model simulator, a router
serving the shipped helpdesk model and learning (`MODELYARD_ROUTER__LEARN=true`), both inference pools
and metering. Two tenants ask the same everyday questions through their own agent; the simulator's small
model hedges on everything asked through acme's agent (its system prompt carries a hedge marker: a
figure from the simulator, not from a real model), so acme's small answers keep escalating and globex's
are accepted. The router ends up sending acme's questions straight to the LLM, says learning did it, and
keeps sending globex's to the SLM. Then the router is killed (SIGKILL) and restarted: what it learned is
still served, and the learner resumes from its checkpoint, learning each outcome exactly once.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from modelyard_events import (
    TIER_LIMITS,
    AgentSnapshot,
    Industry,
    ModelClass,
    QueryOutcome,
    QueryRouted,
    QuerySubmitted,
    RoutingPolicy,
    ShadowCompared,
    TenantSnapshot,
    Tier,
    UsageRecorded,
    shadow_sampled,
)
from modelyard_harness import Stack, TopicReader, build_stack, produce_raw, publish_queries, unique_prefix
from modelyard_router.learner import labels
from modelyard_router.settings import LearnedRouting
from modelyard_usage.read import routing_stats
from pymongo import AsyncMongoClient

pytestmark = pytest.mark.system

MARKER = "Acme Escalations Desk"
QUESTIONS = (
    "How do I export last month's usage report to a spreadsheet?",
    "Where do I change the billing address on our account?",
    "How do I add a user to our team workspace?",
    "How can I change the language of the notification e-mails?",
    "How do I reset the API key for our integration?",
    "Can you explain how to set up two-factor sign-in for my account?",
)


@pytest.fixture(scope="module")
def pipeline(kafka: str, mongo_url: str) -> Iterator[Stack]:
    stack = build_stack(
        kafka, mongo_url, unique_prefix("learning"), with_tenant_api=False,
        simulator_env={"MODELYARD_SIMULATOR_ALL_MODELS": json.dumps({"latency_ms": 0}),
                       "MODELYARD_SIMULATOR_MODELS": json.dumps({"gpt-4o-mini": {"hedge_markers": [MARKER]}})},
        extra_env={"MODELYARD_ROUTER__MODEL": "helpdesk", "MODELYARD_ROUTER__LEARN": "true",
                   "MODELYARD_ROUTER__SNAPSHOT_INTERVAL_S": "0.5", "MODELYARD_ROUTER__CHECKPOINT_INTERVAL_S": "0.5"})
    stack.start(*stack.processes)
    try:
        yield stack
    finally:
        stack.stop()


async def tenant_with_agent(stack: Stack, name: str, system_prompt: str, **policy) -> tuple[str, str]:
    tenant_id, agent_id = f"{name}-{uuid.uuid4().hex[:6]}", f"agent-{name}"
    t = TenantSnapshot(tenant_id=tenant_id, version=1, name=name, tier=Tier.ENTERPRISE, industry=Industry.OTHER,
                       limits=TIER_LIMITS[Tier.ENTERPRISE], policy=RoutingPolicy(**policy))
    a = AgentSnapshot(tenant_id=tenant_id, agent_id=agent_id, name=name, agent_type="general", system_prompt=system_prompt)
    await produce_raw(stack.kafka, stack.topic("tenants.snapshots"), [(tenant_id.encode(), t.model_dump_json().encode())])
    await produce_raw(stack.kafka, stack.topic("tenants.agents"), [(f"{tenant_id}/{agent_id}".encode(), a.model_dump_json().encode())])
    return tenant_id, agent_id


class Pipeline:
    """Publishes queries as an upstream system and reads what became of them."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.readers = {t: TopicReader(stack.kafka, stack.topic(t)) for t in ("queries.routed.slm", "queries.routed.llm",
                                                                               "queries.outcomes", "queries.shadows",
                                                                               "usage.recorded", "router.models")}

    async def __aenter__(self) -> Pipeline:
        for r in self.readers.values():
            await r.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for r in self.readers.values():
            await r.__aexit__(*exc)

    def outcomes(self) -> dict[str, QueryOutcome]:
        return {o.query_id: o for o in map(QueryOutcome.model_validate_json, (r.value for r in list(self.readers["queries.outcomes"].records)))}

    def first_route(self, query_id: str) -> QueryRouted:
        routed = [e for t in ("queries.routed.slm", "queries.routed.llm")
                  for e in map(QueryRouted.model_validate_json, (r.value for r in list(self.readers[t].records)))
                  if e.query_id == query_id and not e.cascade]
        return routed[0]

    def events(self, topic: str, model):
        return [model.model_validate_json(r.value) for r in list(self.readers[topic].records)]

    async def ask(self, asks: list[tuple[str, str | None, str]], timeout_s: float = 60,
                  ids: list[str] | None = None) -> list[QueryOutcome]:
        """(tenant, agent, text) each; their outcomes, once every one has one."""
        ids = ids or [str(uuid.uuid4()) for _ in asks]
        qs = [QuerySubmitted(tenant_id=t, query_id=q, text=text, agent_id=agent) for q, (t, agent, text) in zip(ids, asks)]
        await publish_queries(self.stack.kafka, self.stack.topic("queries.submitted"), qs)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            found = self.outcomes()
            if all(q.query_id in found for q in qs):
                return [found[q.query_id] for q in qs]
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{sum(q.query_id in found for q in qs)} of {len(qs)} outcomes")
            await asyncio.sleep(0.05)


async def checkpoint(stack: Stack) -> dict:
    mongo = AsyncMongoClient(stack.mongo_url)
    try:
        doc = await mongo[f"{stack.database}_router"][LearnedRouting().checkpoints_collection].find_one({"_id": "learner"})
    finally:
        await mongo.close()
    return json.loads(zlib.decompress(doc["body"])) if doc else {}


def snapshot_outcomes(value: bytes) -> int:
    """How many outcomes a published snapshot learned from (its description says), 0 for anything else."""
    found = re.search(rb"learned online from (\d+) outcomes", value)
    return int(found.group(1)) if found else 0


async def caught_up(stack: Stack, learnable: int, timeout_s: float = 30) -> dict:
    """The learner's checkpoint once it has applied ``learnable`` outcomes (or as it is at the deadline)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        doc = await checkpoint(stack)
        if doc.get("online", {}).get("applied") == learnable or asyncio.get_running_loop().time() > deadline:
            return doc
        await asyncio.sleep(0.2)


async def snapshot_with_every_outcome(p: Pipeline, timeout_s: float = 30) -> None:
    """Wait until the learner has published a snapshot that learned from every learnable outcome so far."""
    learnable_now = sum(labels(o, LearnedRouting().accepted_weight) is not None for o in p.outcomes().values())
    deadline = asyncio.get_running_loop().time() + timeout_s
    while max((snapshot_outcomes(r.value) for r in list(p.readers["router.models"].records)), default=0) < learnable_now:
        assert asyncio.get_running_loop().time() < deadline, f"no snapshot learned from {learnable_now} outcomes"
        await asyncio.sleep(0.1)


async def test_a_tenant_whose_small_answers_keep_escalating_is_routed_to_the_llm_and_it_survives_a_crash(pipeline: Stack):
    acme = await tenant_with_agent(pipeline, "acme", f"You are the {MARKER} assistant of Acme Ltd.")
    globex = await tenant_with_agent(pipeline, "globex", "You are the help desk assistant of Globex Corp.")
    async with Pipeline(pipeline) as p:
        first = await p.ask([(*acme, QUESTIONS[0]), (*globex, QUESTIONS[0])])
        assert [o.cascade[0].model_class for o in first] == [ModelClass.SLM, ModelClass.SLM]  # the model's own verdict
        assert [len(o.cascade) for o in first] == [2, 1]  # acme's hedged answer escalated, globex's was accepted

        moved = None
        for round_ in range(40):  # globex asks twice as often: the shared words see as many acceptances as escalations
            asks = [(*acme, QUESTIONS[round_ % 6]), (*globex, QUESTIONS[(round_ + 1) % 6]), (*globex, QUESTIONS[(round_ + 2) % 6])]
            done = await p.ask(asks)
            if done[0].cascade[0].model_class is ModelClass.LLM:
                moved = p.first_route(done[0].query_id)
                break
        assert moved is not None, "acme's questions were never routed to the LLM"
        assert any(r.startswith("learning moved it: this tenant's correction +") for r in moved.decision.reasons), moved.decision.reasons
        assert moved.decision.router_model.startswith("default@")  # the learner's snapshot, published on router.models
        # The first question to move is the one the model found least simple; the others follow as acme's
        # escalations keep coming. Each round: wait for a snapshot that has learned from every outcome so far
        # (the routers decide with what the learner publishes), then ask all six questions for both tenants.
        for round_ in range(30):
            await snapshot_with_every_outcome(p)
            later = await p.ask([(*acme, q) for q in QUESTIONS] + [(*globex, q) for q in QUESTIONS])
            assert all(o.cascade[0].model_class is ModelClass.SLM for o in later[6:])  # globex's stay on the SLM
            if sum(o.cascade[0].model_class is not ModelClass.SLM for o in later[:6]) >= 4:
                break
        assert sum(o.cascade[0].model_class is not ModelClass.SLM for o in later[:6]) >= 4, f"after {round_ + 1} rounds"

        # A crash: the learner restarts from its last checkpoint and re-reads what came after it.
        pipeline.processes["router"].kill()
        pipeline.restart("router")
        after = await p.ask([(*acme, q) for q in QUESTIONS[:3]])
        assert sum(o.cascade[0].model_class is not ModelClass.SLM for o in after) >= 2  # still learned
        taught = [o for o in p.outcomes().values() if labels(o, LearnedRouting().accepted_weight) is not None]
        learnable = len(taught)
        doc = await caught_up(pipeline, learnable)
        assert doc["online"]["applied"] == learnable  # every learnable outcome once: none lost, none twice
        assert doc["online"]["tenant_outcomes"] == {t: sum(o.tenant_id == t for o in taught) for t in (acme[0], globex[0])}


async def test_shadow_evaluation_compares_sampled_small_answers_with_the_large_model_and_the_caller_waits_for_none(
        pipeline: Stack):
    tenant = await tenant_with_agent(pipeline, "initech", "You are the help desk assistant of Initech.", shadow_share=0.2)
    candidates = (str(uuid.uuid4()) for _ in range(10_000))
    sampled = [q for q in candidates if shadow_sampled(q, 0.2)][:6]
    others = [q for q in (str(uuid.uuid4()) for _ in range(200)) if not shadow_sampled(q, 0.2)][:4]
    async with Pipeline(pipeline) as p:
        outcomes = await p.ask([(*tenant, QUESTIONS[i]) for i in range(6)] + [(*tenant, QUESTIONS[i]) for i in range(4)],
                               ids=sampled + others)
        # The caller got the small model's answer, once per query; the shadow copies answered nobody.
        assert all(o.cascade[0].model_class is ModelClass.SLM and o.model_class is ModelClass.SLM for o in outcomes)
        assert sorted(o.query_id for o in p.events("queries.outcomes", QueryOutcome) if o.tenant_id == tenant[0]) == \
            sorted(sampled + others)
        accepted = {o.query_id for o in outcomes[:6] if len(o.cascade) == 1}
        assert accepted

        deadline = asyncio.get_running_loop().time() + 60
        while {c.query_id for c in p.events("queries.shadows", ShadowCompared)} < accepted:
            assert asyncio.get_running_loop().time() < deadline, "no comparison for every sampled, accepted answer"
            await asyncio.sleep(0.1)
        compared = [c for c in p.events("queries.shadows", ShadowCompared) if c.tenant_id == tenant[0]]
        assert {c.query_id for c in compared} == accepted  # none for the queries shadow evaluation did not sample
        assert all(c.small_model == "gpt-4o-mini" and c.large_model == "gpt-4o" and c.share == 0.2 for c in compared)
        shadow_usage = [u for u in p.events("usage.recorded", UsageRecorded) if u.tenant_id == tenant[0] and u.shadow]
        assert sorted(u.query_id for u in shadow_usage) == sorted(accepted)
        assert [u.shadow_agreed for u in sorted(shadow_usage, key=lambda u: u.query_id)] == \
            [c.agreed for c in sorted(compared, key=lambda c: c.query_id)]

    # Metering counts them apart; the routing statistics show the estimate with its sample size and interval.
    mongo = AsyncMongoClient(pipeline.mongo_url)
    try:
        today = datetime.now(UTC).date()
        deadline = asyncio.get_running_loop().time() + 60
        while (stats := await routing_stats(mongo[pipeline.database], tenant[0], today, today))["shadow"]["compared"] < len(accepted):
            assert asyncio.get_running_loop().time() < deadline, stats
            await asyncio.sleep(0.2)
    finally:
        await mongo.close()
    agreed = sum(c.agreed for c in compared)
    assert (stats["shadow"]["calls"], stats["shadow"]["agreed"]) == (len(accepted), agreed)
    assert stats["shadow"]["quality_vs_large"] == round(agreed / len(accepted), 4) and len(stats["shadow"]["ci95"]) == 2
    assert stats["calls"] == len(outcomes) and stats["llm_calls"] == 0  # the tenant's own calls: no shadow among them
    assert stats["shadow"]["cost_usd"] > 0 and stats["cost_usd"] > 0
