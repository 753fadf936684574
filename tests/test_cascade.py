"""The cascade on real recorded answers through the real pipeline (issue 17).

Real Kafka, the real MongoDB-protocol server, every service as its own process; the model simulator replays
the recorded GSM8K answers shipped with the app (Mixtral's as gpt-4o-mini, GPT-4's as gpt-4o), so what the
workers judge is what the models actually said.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from pymongo import AsyncMongoClient

from modelyard.cascade.data import GSM8K_DEV, Example, read
from modelyard.cascade.offline import judge_all, policy_tenant, routed_to_large
from modelyard.cascade.report import every_nth
from modelyard_events import ModelClass, OutcomeStatus, QuerySubmitted, RoutingPreference, UsageRecorded
from modelyard_harness import ADMIN, Stack, TopicReader, build_stack, create_tenant, outcomes_by_query, publish_queries, unique_prefix
from modelyard_inference.answers import default_model

pytestmark = pytest.mark.system

SMALL, LARGE = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
REPLAY = {
    "MODELYARD_SIMULATOR_REPLAY_FILE": str(GSM8K_DEV),
    "MODELYARD_SIMULATOR_REPLAY_MODELS": json.dumps({SMALL: "gpt-4o-mini", LARGE: "gpt-4o"}),
    # the recorded answers have no log-probabilities: replay serves none, as recorded
    "MODELYARD_SIMULATOR_REPLAY_LOGPROBS": "false",
}


@pytest.fixture(scope="module")
def replay_stack(kafka: str, mongo_url: str) -> Iterator[Stack]:
    s = build_stack(kafka, mongo_url, unique_prefix("cascade"), simulator_env=REPLAY)
    with s.running():
        yield s


@pytest.fixture(scope="module")
def gsm8k() -> list[Example]:
    return read(GSM8K_DEV)


async def submit(stack: Stack, queries: list[QuerySubmitted], timeout_s: float = 90) -> dict:
    wanted = {q.query_id for q in queries}
    async with TopicReader(stack.kafka, stack.topic("queries.outcomes")) as outcomes:
        await publish_queries(stack.kafka, stack.topic("queries.submitted"), queries)
        found = await outcomes.wait_for(lambda recs: wanted <= (o := outcomes_by_query(recs)).keys() and o,
                                        timeout_s, f"{len(queries)} outcomes")
    return {k: v[0] for k, v in found.items() if k in wanted}


async def metered(stack: Stack, tenant_id: str, calls: int, timeout_s: float = 60) -> dict:
    """The tenant's day document once metering has folded ``calls`` calls."""
    import asyncio
    import time

    mongo = AsyncMongoClient(stack.mongo_url)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            docs = [d async for d in mongo[stack.database]["usage_tenant_daily"].find({"tenant_id": tenant_id})]
            if sum(d.get("calls", 0) for d in docs) >= calls or time.monotonic() > deadline:
                return {k: sum(d.get(k, 0) for d in docs) for k in ("calls", "extra_completions", "output_tokens")}
            await asyncio.sleep(0.1)
    finally:
        await mongo.close()


async def test_a_recorded_answer_with_wrong_arithmetic_escalates_and_a_confident_right_one_stays(replay_stack, gsm8k):
    balanced = policy_tenant(RoutingPreference.BALANCED)
    verdicts = judge_all(gsm8k, default_model())
    direct = routed_to_large(gsm8k, balanced)
    slip = next(i for i, v in enumerate(verdicts.small)
                if not direct[i] and v.score.hard and v.score.reasons[0].startswith("arithmetic:"))
    kept = next(i for i, v in enumerate(verdicts.small)
                if not direct[i] and gsm8k[i].correct and not v.score.escalate(0.6) and v.score.confidence > 0.7)
    tenant = await create_tenant(replay_stack.api_url, "Arithmetic Co", industry="other", tier="basic")
    assert tenant["policy"]["cascade_threshold"] == 0.6
    q = {i: QuerySubmitted(tenant_id=tenant["tenant_id"], query_id=str(uuid.uuid4()), text=gsm8k[i].query)
         for i in (slip, kept)}
    outcomes = await submit(replay_stack, list(q.values()))

    wrong = outcomes[q[slip].query_id]
    assert wrong.status is OutcomeStatus.COMPLETED and [s.model_class for s in wrong.cascade] == [ModelClass.SLM, ModelClass.LLM]
    assert wrong.cascade[0].reasons == verdicts.small[slip].score.reasons  # the worker's verdict is the offline one
    assert wrong.cascade[0].reasons[0].startswith("arithmetic:") and wrong.cascade[0].reasons[0].endswith("[hard]")
    assert wrong.answer == gsm8k[slip].large_response and wrong.model == "gpt-4o"

    right = outcomes[q[kept].query_id]
    assert right.status is OutcomeStatus.COMPLETED and len(right.cascade) == 1
    assert right.answer == gsm8k[kept].response and right.model == "gpt-4o-mini"
    assert right.confidence == verdicts.small[kept].score.confidence
    usage = await metered(replay_stack, tenant["tenant_id"], 3)
    assert usage["calls"] == 3 and usage["extra_completions"] == 0


WORD_PROBLEMS = [f"A farmer has {a} crates with {b} apples each and sells {c} apples. How many apples are left?"
                 for a, b, c in ((12, 7, 9), (15, 4, 11), (23, 6, 17), (9, 8, 5), (31, 3, 20), (14, 9, 13), (27, 5, 8),
                                 (18, 6, 21), (11, 12, 30), (16, 7, 25))]


async def test_self_consistency_samples_k_answers_meters_them_and_escalates_a_split_vote(replay_stack):
    tenant = await create_tenant(replay_stack.api_url, "Consistency Co", industry="other", tier="basic")
    async with httpx.AsyncClient(base_url=replay_stack.api_url, headers=ADMIN, timeout=10) as http:
        resp = await http.patch(f"/v1/tenants/{tenant['tenant_id']}",
                                json={"policy": {"self_consistency": {"samples": 3, "temperature": 0.9}}})
        assert resp.status_code == 200, resp.text
    admin = replay_stack.simulator_url.removesuffix("/v1")
    async with httpx.AsyncClient(base_url=admin, timeout=10) as sim:
        # every sample wrong, spread over eight different wrong answers: three samples rarely agree
        resp = await sim.post("/admin/config", json={"models": {"gpt-4o-mini": {
            "right_rate_easy": 0.0, "right_rate_hard": 0.0, "right_rate_spread": 0.0, "distractors": 8,
            "distractor_top_share": 0.0, "slip_rate": 0.0}}})
        assert resp.status_code == 200, resp.text
        try:
            queries = [QuerySubmitted(tenant_id=tenant["tenant_id"], query_id=str(uuid.uuid4()), text=t) for t in WORD_PROBLEMS]
            async with TopicReader(replay_stack.kafka, replay_stack.topic("usage.recorded")) as usage_topic:
                outcomes = await submit(replay_stack, queries)
                calls = sum(len(o.cascade) for o in outcomes.values())
                records = await usage_topic.wait_for(lambda recs: len(recs) >= calls and recs, 60, "usage records")
        finally:
            await sim.post("/admin/reset", json={"config": True})

    usage = [UsageRecorded.model_validate_json(r.value) for r in records]
    mine = [u for u in usage if u.tenant_id == tenant["tenant_id"]]
    slm = [u for u in mine if u.model_class is ModelClass.SLM]
    assert len(slm) == len(WORD_PROBLEMS) and all(u.completions == 3 for u in slm)
    assert all(u.completions == 1 for u in mine if u.model_class is not ModelClass.SLM)  # the LLM answers once
    split = [o for o in outcomes.values() if o.cascade[0].reasons and o.cascade[0].reasons[0].startswith(
        "self_consistency: answers disagree")]
    assert split, [o.cascade[0].reasons for o in outcomes.values()]
    assert all(len(o.cascade) == 2 and o.cascade[1].model_class is ModelClass.LLM for o in split)
    totals = await metered(replay_stack, tenant["tenant_id"], len(mine))
    assert totals["calls"] == len(mine) and totals["extra_completions"] == 2 * len(slm)
    assert totals["output_tokens"] == sum(u.output_tokens for u in mine)


async def test_eval_cascade_through_the_pipeline_agrees_with_the_offline_evaluation(replay_stack, gsm8k, monkeypatch):
    from modelyard.cascade.pipeline import run_pipeline_eval

    for key, value in replay_stack.env().items():
        if key.startswith("MODELYARD_"):
            monkeypatch.setenv(key, value)
    sample = every_nth(gsm8k, 30)
    result, code = await run_pipeline_eval(sample, api_url=replay_stack.api_url, timeout_s=120)
    assert code == 0 and result["ok"], result.get("problem")
    for name, row in result["policies"].items():
        assert row["answered"] == row["agrees_with_offline"] == len(sample), name
        assert row["not_replayed"] == 0 and row["completions"] == row["calls"]
        assert {k: row[k] for k in ("quality", "cost", "escalated", "direct")} == \
            {k: row["offline"][k] for k in ("quality", "cost", "escalated", "direct")}
        assert 0 < row["metered_cost"] < 1
    assert result["policies"]["cost"]["cost"] <= result["policies"]["quality"]["cost"]
