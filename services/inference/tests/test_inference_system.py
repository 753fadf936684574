"""The inference pools on the real broker with the model simulator: cascade, faults, timeouts, replay, agents.

One stack for the module (simulator in replay mode, router, both inference pools), isolated by a topic
prefix. Tenants and agents are published on their compacted topics directly — the contract the tenant
service fulfils — so these tests depend on nothing but the services under test. Usage is read from
``usage.recorded``, where every model call must appear exactly once.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from modelyard_events import (
    TIER_LIMITS,
    AgentSnapshot,
    ComplexityLevel,
    DeadLetter,
    ModelClass,
    Industry,
    OutcomeStatus,
    QueryOutcome,
    QueryRequest,
    QueryRouted,
    QuerySubmitted,
    RoutingDecision,
    TenantSnapshot,
    Tier,
    UsageRecorded,
)
from modelyard_harness import Stack, TopicReader, build_stack, produce_raw, publish_queries, unique_prefix


pytestmark = pytest.mark.system

RUN = uuid.uuid4().hex[:6]
#: Simple prompts the router sends to the SLM pool ("how do i ..." / "where is ...").
BADGE = f"How do I reset the badge printer {RUN}?"
PARCEL = f"Where is my parcel {RUN}?"
AGENT_PROMPT = f"You are Parcelbot {RUN}, the courier desk of Acme."
RECORDED = [
    # the small model hedges on this one, the large one knows
    {"prompt": BADGE, "responses": {
        "gpt-4o-mini": "I'm not sure, I don't know how that printer works.",
        "gpt-4o": "Hold the badge printer reset button for ten seconds, then print a test badge.",
    }},
    {"prompt": PARCEL, "responses": {"gpt-4o-mini": "Your parcel is at the depot and leaves for delivery today."}},
    {"prompt": PARCEL, "system": AGENT_PROMPT, "responses": {
        "gpt-4o-mini": "Parcelbot here: your parcel is at depot 7 and leaves for delivery today."}},
]
#: Quick failure handling, so that the fault tests take seconds: 2 attempts of at most 2 s each.
WORKER_ENV = {"MODELYARD_BACKEND_TIMEOUT_S": "2", "MODELYARD_BACKEND_ATTEMPTS": "2", "MODELYARD_BACKEND_BACKOFF_S": "0.05"}


@pytest.fixture(scope="module")
def stack(kafka, mongo_url, tmp_path_factory) -> Iterator[Stack]:
    replay = tmp_path_factory.mktemp("replay") / "recorded.jsonl"
    replay.write_text("\n".join(json.dumps(r) for r in RECORDED) + "\n")
    prefix = unique_prefix("inference")
    s = build_stack(kafka, mongo_url, prefix,
                    simulator_env={"MODELYARD_SIMULATOR_REPLAY_FILE": str(replay)}, extra_env=WORKER_ENV,
                    with_tenant_api=False)
    del s.processes["metering"]  # usage is checked on usage.recorded; the sink has tests of its own
    with s.running():
        yield s



@pytest.fixture(scope="module")
async def tenant(stack: Stack) -> str:
    tenant_id = f"acme-{RUN}"
    snapshot = TenantSnapshot(tenant_id=tenant_id, version=1, name="Acme", tier=Tier.ENTERPRISE,
                              industry=Industry.TECH, limits=TIER_LIMITS[Tier.ENTERPRISE])
    await produce_raw(stack.kafka, stack.topic("tenants.snapshots"),
                      [(tenant_id.encode(), snapshot.model_dump_json().encode())])
    return tenant_id


@pytest.fixture
async def simulator(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The simulator's admin API; knobs and counters are reset after each test."""
    async with httpx.AsyncClient(base_url=stack.simulator_url.removesuffix("/v1"), timeout=10) as admin:
        yield admin
        (await admin.post("/admin/reset")).raise_for_status()


@pytest.fixture
async def readers(stack: Stack) -> AsyncIterator[tuple[TopicReader, TopicReader]]:
    async with TopicReader(stack.kafka, stack.topic("queries.outcomes")) as outcomes, \
            TopicReader(stack.kafka, stack.topic("usage.recorded")) as usage:
        yield outcomes, usage


def query(tenant_id: str, text: str, **fields) -> QuerySubmitted:
    return QuerySubmitted(tenant_id=tenant_id, query_id=f"q-{uuid.uuid4().hex[:12]}", text=text, **fields)


async def run(stack: Stack, readers, queries: list[QuerySubmitted], timeout_s: float = 60):
    """Submit ``queries``; wait until each has an outcome and as many usage records as cascade steps."""
    outcomes, usage = readers
    wanted = {q.query_id for q in queries}
    await publish_queries(stack.kafka, stack.topic("queries.submitted"), queries)

    def by_query(records, model):
        found = defaultdict(list)
        for r in records:
            event = model.model_validate_json(r.value)
            if event.query_id in wanted:
                found[event.query_id].append(event)
        return found

    done = await outcomes.wait_for(lambda recs: (o := by_query(recs, QueryOutcome)).keys() >= wanted and o,
                                   timeout_s, f"outcomes of {len(wanted)} queries")
    calls = sum(len(o[0].cascade) for o in done.values())
    metered = await usage.wait_for(
        lambda recs: sum(map(len, (u := by_query(recs, UsageRecorded)).values())) >= calls and u,
        30, f"{calls} usage records")
    return done, metered


def assert_exactly_once(outcomes: dict[str, list[QueryOutcome]], usage: dict[str, list[UsageRecorded]]) -> None:
    """One outcome per query; one usage record per model call (cascade step), failed calls included."""
    for query_id, found in outcomes.items():
        assert len({o.event_id for o in found}) == 1, f"{query_id}: {len(found)} different outcomes"
        steps = found[0].cascade
        records = {u.event_id: u for u in usage[query_id]}
        assert len(records) == len(steps), f"{query_id}: {len(records)} usage records for {len(steps)} calls"
        assert sorted((u.model, bool(u.error)) for u in records.values()) == sorted((s.model, bool(s.error)) for s in steps)


async def test_an_unsure_slm_answer_is_escalated_to_the_llm_and_both_calls_are_metered(stack, tenant, readers,
                                                                                        simulator):
    q = query(tenant, BADGE)
    outcomes, usage = await run(stack, readers, [q])
    outcome = outcomes[q.query_id][0]
    assert outcome.status is OutcomeStatus.COMPLETED and outcome.model == "gpt-4o"
    assert outcome.answer == RECORDED[0]["responses"]["gpt-4o"]  # replayed, not generated
    slm, llm = outcome.cascade
    assert slm.model == "gpt-4o-mini" and slm.confidence < 0.6 and any(r.startswith("hedging:") for r in slm.reasons)
    assert llm.model == "gpt-4o" and llm.confidence >= 0.6
    assert_exactly_once(outcomes, usage)
    calls = sorted(usage[q.query_id], key=lambda u: u.cascade_step)
    assert [(u.model, u.cascade_step) for u in calls] == [("gpt-4o-mini", False), ("gpt-4o", True)]
    assert all(u.cost_usd > 0 and u.input_tokens > 0 for u in calls)
    assert outcome.cost_usd == pytest.approx(sum(u.cost_usd for u in calls))
    stats = (await simulator.get("/admin/stats")).json()["models"]
    assert stats["gpt-4o-mini"]["replayed"] == 1 and stats["gpt-4o"]["replayed"] == 1


async def test_the_agent_system_prompt_reaches_the_model(stack, tenant, readers, simulator):
    agent = AgentSnapshot(tenant_id=tenant, agent_id=f"parcelbot-{RUN}", name="Parcelbot", agent_type="courier",
                          system_prompt=AGENT_PROMPT)
    await produce_raw(stack.kafka, stack.topic("tenants.agents"),
                      [(f"{tenant}/{agent.agent_id}".encode(), agent.model_dump_json().encode())])
    with_agent, without = query(tenant, PARCEL, agent_id=agent.agent_id), query(tenant, PARCEL)
    outcomes, usage = await run(stack, readers, [with_agent, without])
    # the simulator replays the agent's answer only when the agent's system prompt came with the question
    assert outcomes[with_agent.query_id][0].answer == RECORDED[2]["responses"]["gpt-4o-mini"]
    assert outcomes[without.query_id][0].answer == RECORDED[1]["responses"]["gpt-4o-mini"]
    assert usage[with_agent.query_id][0].agent_id == agent.agent_id
    assert_exactly_once(outcomes, usage)


async def test_half_the_slm_calls_failing_still_gives_every_query_exactly_one_outcome(stack, tenant, readers,
                                                                                      simulator):
    (await simulator.post("/admin/config", json={"models": {"gpt-4o-mini": {"error_rate": 0.5}}})).raise_for_status()
    queries = [query(tenant, f"What is the status of ticket #{i}?") for i in range(30)]
    outcomes, usage = await run(stack, readers, queries)
    assert_exactly_once(outcomes, usage)
    assert all(found[0].status is OutcomeStatus.COMPLETED for found in outcomes.values())
    stats = (await simulator.get("/admin/stats")).json()["models"]["gpt-4o-mini"]
    assert stats["errors_injected_total"] > 0  # faults happened, and retries or the LLM absorbed them
    fell_back = [o[0] for o in outcomes.values() if o[0].cascade[0].error]
    assert all(o.model == "gpt-4o" and "HTTP" in o.cascade[0].error for o in fell_back)
    failed_calls = [u for us in usage.values() for u in us if u.error]
    assert len(failed_calls) == len(fell_back)


@pytest.mark.parametrize(("hang_s", "error"), [(0.3, "HTTP 504"), (30, "timed out")],
                         ids=["backend-gives-up-first", "worker-deadline-first"])
async def test_an_slm_backend_that_times_out_falls_back_to_the_llm(stack, tenant, readers, simulator, hang_s, error):
    knobs = {"gpt-4o-mini": {"timeout_rate": 1.0, "timeout_s": hang_s}}
    (await simulator.post("/admin/config", json={"models": knobs})).raise_for_status()
    queries = [query(tenant, f"Where is my order {i}-{RUN}?") for i in range(3)]
    outcomes, usage = await run(stack, readers, queries)
    assert_exactly_once(outcomes, usage)
    for found in outcomes.values():
        o = found[0]
        assert o.status is OutcomeStatus.COMPLETED
        assert o.cascade[0].model == "gpt-4o-mini" and error in o.cascade[0].error and "after 2 attempts" in o.cascade[0].error
        fallback = o.cascade[1]
        assert fallback.model == "gpt-4o" and fallback.error is None
        # The LLM's answer is final unless the cascade judged it unsure (it depends on the text, which holds
        # the run's random id): then this enterprise tenant's top class answers after it.
        if fallback.escalated:
            assert o.model == o.cascade[-1].model != "gpt-4o"
        else:
            assert o.model == "gpt-4o"
    slm_calls = [u for us in usage.values() for u in us if u.model == "gpt-4o-mini"]
    assert len(slm_calls) == 3 and all(error in u.error and u.latency_ms > 0 for u in slm_calls)
    assert (await simulator.get("/admin/stats")).json()["models"]["gpt-4o-mini"]["timeouts_injected"] == 6


async def test_a_malformed_routed_record_is_dead_lettered_and_the_next_query_still_completes(stack, tenant, readers,
                                                                                             simulator):
    routed = QueryRouted(
        tenant_id=tenant, query_id=f"q-{uuid.uuid4().hex[:12]}", submitted_at=datetime.now(UTC),
        request=QueryRequest(text="What is the status of ticket #7?"), can_escalate=False,
        decision=RoutingDecision(complexity=ComplexityLevel.SIMPLE, score=0, model_class=ModelClass.SLM,
                                 model="gpt-4o-mini"),
    )
    garbage = b'{"type": "modelyard.query.routed.v1", "tenant_id": "x"'
    key = tenant.encode()  # same partition as the valid one: the bad record must not block it
    outcomes, _ = readers
    async with TopicReader(stack.kafka, stack.topic("deadletter.inference")) as dlq:
        await produce_raw(stack.kafka, stack.topic("queries.routed.slm"),
                          [(key, garbage), (key, routed.model_dump_json().encode())])
        letters = await dlq.wait_for(
            lambda recs: [d for r in recs if (d := DeadLetter.model_validate_json(r.value)).value_base64
                          and base64.b64decode(d.value_base64) == garbage], 30, "the dead letter")
        await outcomes.wait_for(
            lambda recs: any(QueryOutcome.model_validate_json(r.value).query_id == routed.query_id for r in recs),
            30, "the valid query's outcome")
    assert letters[0].error_type == "decode" and letters[0].source_topic == stack.topic("queries.routed.slm")
