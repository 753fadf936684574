"""The worker's decisions against the model simulator: complete, escalate, fall back, fail; one usage per call."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord
from modelyard_core.bus import Bus, Delivery, Outgoing
from modelyard_core.pricing import load_pricing
from modelyard_events import (
    AgentSnapshot,
    Answer,
    CascadeStep,
    ChatMessage,
    ComplexityLevel,
    ModelClass,
    OutcomeStatus,
    QueryEscalated,
    QueryOutcome,
    QueryRequest,
    QueryRouted,
    RoutingDecision,
    UsageRecorded,
)
from modelyard_inference.backend import Backend
from modelyard_inference.worker import Worker, agent_key, call_event_id

from .conftest import fast_settings

EASY = {"X-Simulator-Difficulty": "0"}
HARD = {"X-Simulator-Difficulty": "1"}  # the small model hedges, with low token probabilities
PRICING = load_pricing()


def routed(text: str = "How do I reset my password?", *, model_class: ModelClass = ModelClass.SLM,
           can_escalate: bool = True, cascade: list[CascadeStep] | None = None, best: Answer | None = None,
           threshold: float = 0.6, agent_id: str | None = None, history: list[ChatMessage] | None = None,
           tenant_id: str = "acme") -> QueryRouted:
    return QueryRouted(
        tenant_id=tenant_id, query_id=str(uuid.uuid4()),
        request=QueryRequest(text=text, agent_id=agent_id, history=history or []),
        decision=RoutingDecision(complexity=ComplexityLevel.MODERATE, score=2.0, model_class=model_class,
                                 model=PRICING.class_defaults[model_class]),
        submitted_at=datetime.now(UTC), cascade=cascade or [], cascade_threshold=threshold,
        can_escalate=can_escalate, best_answer=best,
    )


def delivery(event: QueryRouted, offset: int = 0) -> Delivery[QueryRouted]:
    value = event.model_dump_json().encode()
    record = ConsumerRecord("queries.routed.slm", 0, offset, 0, 0, event.tenant_id.encode(), value, None, 0,
                            len(value), ())
    return Delivery(event, record, {})


class AgentsView:
    """The part of ``CompactedTopicView`` the worker uses, filled by the test instead of by Kafka."""

    def __init__(self, agents: list[AgentSnapshot] = ()) -> None:
        self.items = {agent_key(a.tenant_id, a.agent_id): a for a in agents}
        self.syncs = 0

    def get(self, key: str) -> AgentSnapshot | None:
        return self.items.get(key)

    async def sync(self, *, timeout_s: float) -> bool:
        self.syncs += 1
        return True


def make_worker(backend: Backend, agents: AgentsView | None = None) -> Worker:
    settings = backend.settings
    return Worker(settings, Bus(settings, "inference"), backend, PRICING, agents)  # the broker is never started


def split(outgoing: list[Outgoing], query_id: str) -> tuple[list[UsageRecorded], list]:
    mine = [o for o in outgoing if o.event.query_id == query_id]
    usage = [o.event for o in mine if isinstance(o.event, UsageRecorded)]
    return usage, [o for o in mine if not isinstance(o.event, UsageRecorded)]


async def test_a_confident_answer_completes_and_its_call_is_metered(simulated_backend) -> None:
    backend, _ = await simulated_backend(headers=EASY)
    worker = make_worker(backend)
    q = routed()
    usage, decided = split(await worker.answer_all([delivery(q)]), q.query_id)
    assert len(usage) == 1 and len(decided) == 1
    outcome = decided[0].event
    assert isinstance(outcome, QueryOutcome) and decided[0].topic == "queries.outcomes"
    assert outcome.status is OutcomeStatus.COMPLETED and outcome.answer and outcome.confidence >= 0.6
    u = usage[0]
    assert u.event_id == call_event_id(q.query_id, 1) and not u.cascade_step and u.error is None
    assert u.input_tokens == outcome.input_tokens > 0 and u.output_tokens == outcome.output_tokens > 0
    assert u.cost_usd > 0 and u.cost_usd == pytest.approx(PRICING.cost("gpt-4o-mini", u.input_tokens, u.output_tokens))
    assert u.llm_cost_usd > u.cost_usd
    assert outcome.cascade[0].model == "gpt-4o-mini" and outcome.cost_usd == pytest.approx(u.cost_usd)


async def test_an_unsure_small_model_answer_escalates_with_its_answer_and_reasons(simulated_backend) -> None:
    backend, _ = await simulated_backend(headers=HARD)
    q = routed("Analyze the root cause of the outage and design a recovery strategy")
    usage, decided = split(await make_worker(backend).answer_all([delivery(q)]), q.query_id)
    assert len(usage) == 1 and usage[0].error is None
    esc = decided[0].event
    assert isinstance(esc, QueryEscalated) and decided[0].topic == "queries.escalations"
    assert esc.cascade[0].confidence < 0.6 and any(r.startswith("hedging:") for r in esc.reasons)
    assert esc.best_answer is not None and esc.best_answer.model == "gpt-4o-mini"


async def test_the_llm_step_completes_the_cascade_and_is_metered_as_a_cascade_step(simulated_backend) -> None:
    backend, _ = await simulated_backend()
    slm_step = CascadeStep(model_class=ModelClass.SLM, model="gpt-4o-mini", confidence=0.3, input_tokens=10,
                           output_tokens=20, cost_usd=0.001)
    slm_answer = Answer(text="I'm not sure", model_class=ModelClass.SLM, model="gpt-4o-mini", confidence=0.3)
    q = routed("Analyze the root cause of the outage", model_class=ModelClass.LLM, cascade=[slm_step], best=slm_answer)
    usage, decided = split(await make_worker(backend).answer_all([delivery(q)]), q.query_id)
    outcome = decided[0].event
    assert outcome.status is OutcomeStatus.COMPLETED and outcome.model == "gpt-4o" and outcome.confidence >= 0.6
    assert [s.model for s in outcome.cascade] == ["gpt-4o-mini", "gpt-4o"]
    assert outcome.cost_usd == pytest.approx(0.001 + usage[0].cost_usd)
    assert usage[0].event_id == call_event_id(q.query_id, 2) and usage[0].cascade_step


async def test_unsure_at_the_top_keeps_the_larger_model_s_answer(simulated_backend) -> None:
    # a large model having a bad day: low token probabilities on every prompt; its answer is still preferred to
    # the small model's unsure one (the scorer's confidences are not comparable across models)
    backend, _ = await simulated_backend(models={"gpt-4o": {"token_prob_easy": 0.45, "token_prob_hard": 0.45}})
    earlier = Answer(text="An earlier, surer answer.", model_class=ModelClass.SLM, model="gpt-4o-mini", confidence=0.55)
    q = routed(model_class=ModelClass.LLM, can_escalate=False, best=earlier,
               cascade=[CascadeStep(model_class=ModelClass.SLM, model="gpt-4o-mini", confidence=0.55)])
    _, decided = split(await make_worker(backend).answer_all([delivery(q)]), q.query_id)
    outcome = decided[0].event
    assert outcome.status is OutcomeStatus.COMPLETED and outcome.model == "gpt-4o" and outcome.answer != earlier.text
    assert outcome.cascade[-1].confidence < 0.55 and outcome.reason is None


async def test_at_the_top_an_answer_failing_a_verifier_gives_way_to_a_surer_earlier_one(simulated_backend) -> None:
    backend, _ = await simulated_backend(fast_settings(max_output_tokens=3))  # every answer is cut off: "length"
    earlier = Answer(text="An earlier, surer answer.", model_class=ModelClass.SLM, model="gpt-4o-mini", confidence=0.55)
    q = routed(model_class=ModelClass.LLM, can_escalate=False, best=earlier,
               cascade=[CascadeStep(model_class=ModelClass.SLM, model="gpt-4o-mini", confidence=0.55)])
    _, decided = split(await make_worker(backend).answer_all([delivery(q)]), q.query_id)
    outcome = decided[0].event
    assert outcome.status is OutcomeStatus.COMPLETED and outcome.answer == earlier.text
    assert outcome.cascade[-1].reasons[0] == "truncation: finish_reason length [hard]"
    assert "failed a verifier; earlier answer kept" in outcome.reason


async def test_a_backend_that_stays_down_falls_back_to_the_next_class(simulated_backend) -> None:
    backend, _ = await simulated_backend(headers={"X-Simulator-Fault": "503"})
    q = routed()
    usage, decided = split(await make_worker(backend).answer_all([delivery(q)]), q.query_id)
    esc = decided[0].event
    assert isinstance(esc, QueryEscalated) and esc.best_answer is None
    assert "backend unavailable" in esc.reasons[0] and "HTTP 503" in esc.cascade[0].error
    # the failed call is metered too, as an error without tokens or cost
    u = usage[0]
    assert u.error and "503" in u.error and u.input_tokens == u.output_tokens == 0 and u.cost_usd == 0
    assert u.event_id == call_event_id(q.query_id, 1)


async def test_down_with_nowhere_to_go_fails_or_keeps_the_earlier_answer(simulated_backend) -> None:
    backend, _ = await simulated_backend(headers={"X-Simulator-Fault": "500"})
    worker = make_worker(backend)
    alone = routed(model_class=ModelClass.LLM, can_escalate=False)
    earlier = Answer(text="The SLM said this.", model_class=ModelClass.SLM, model="gpt-4o-mini", confidence=0.4)
    with_best = routed(model_class=ModelClass.LLM, can_escalate=False, best=earlier,
                       cascade=[CascadeStep(model_class=ModelClass.SLM, model="gpt-4o-mini", confidence=0.4)])
    outgoing = await worker.answer_all([delivery(alone, 0), delivery(with_best, 1)])
    assert len(outgoing) == 4
    failed = split(outgoing, alone.query_id)[1][0].event
    assert failed.status is OutcomeStatus.FAILED and "HTTP 500" in failed.reason
    kept = split(outgoing, with_best.query_id)[1][0].event
    assert kept.status is OutcomeStatus.COMPLETED and kept.answer == earlier.text and "unavailable" in kept.reason
    assert kept.cascade[-1].error


async def test_an_unexpected_error_in_one_call_still_gives_that_query_a_decision(simulated_backend) -> None:
    class Broken(Backend):
        async def complete(self, model, messages):
            raise RuntimeError("a bug")

    backend, _ = await simulated_backend()
    q = routed(can_escalate=False)
    usage, decided = split(await make_worker(Broken(backend.settings, backend.client)).answer_all([delivery(q)]),
                           q.query_id)
    assert decided[0].event.status is OutcomeStatus.FAILED and "internal error" in decided[0].event.reason
    assert usage[0].error


async def test_the_agent_system_prompt_and_the_history_reach_the_model(simulated_backend, tmp_path: Path) -> None:
    prompt = "Where is my parcel?"
    replay = tmp_path / "replay.jsonl"
    replay.write_text("\n".join(json.dumps(r) for r in [
        {"prompt": prompt, "responses": {"gpt-4o-mini": "Without the agent prompt."}},
        {"prompt": prompt, "system": "You are Parcelbot of Acme.", "responses": {"gpt-4o-mini": "Parcelbot here."}},
    ]))
    backend, _ = await simulated_backend(replay_file=replay)
    agents = AgentsView([AgentSnapshot(tenant_id="acme", agent_id="bot", name="Parcelbot", agent_type="support",
                                       system_prompt="You are Parcelbot of Acme.")])
    worker = make_worker(backend, agents)
    history = [ChatMessage(role="user", content="Hi"), ChatMessage(role="assistant", content="Hello!")]
    mine = routed(prompt, agent_id="bot", history=history, threshold=0)
    other_tenant = routed(prompt, agent_id="bot", tenant_id="globex", threshold=0)  # same agent id, not theirs
    assert worker.messages(mine) == [
        {"role": "system", "content": "You are Parcelbot of Acme."},
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": prompt},
    ]
    outgoing = await worker.answer_all([delivery(mine, 0), delivery(other_tenant, 1)])
    assert split(outgoing, mine.query_id)[1][0].event.answer == "Parcelbot here."
    assert split(outgoing, other_tenant.query_id)[1][0].event.answer == "Without the agent prompt."


async def test_an_agent_unknown_to_the_view_makes_it_catch_up_once_per_batch(simulated_backend) -> None:
    backend, _ = await simulated_backend(fast_settings(agent_sync_timeout_s=0.5), headers=EASY)
    agents = AgentsView()
    worker = make_worker(backend, agents)
    batch = [delivery(routed(agent_id="new-agent"), i) for i in range(3)]
    outgoing = await worker.answer_all(batch)
    assert agents.syncs == 1 and len(outgoing) == 6  # answered without a system prompt all the same
    await worker.answer_all([delivery(routed(), 3)])
    assert agents.syncs == 1  # no agent named: no catch-up


async def test_calls_in_flight_never_exceed_the_concurrency(simulated_backend) -> None:
    backend, admin = await simulated_backend(fast_settings(concurrency=4), all_models={"latency_ms": 20})
    worker = make_worker(backend)
    outgoing = await worker.answer_all([delivery(routed(), i) for i in range(24)])
    assert len(outgoing) == 48 and worker._peak == 4
    assert (await admin.get("/admin/stats")).json()["models"]["gpt-4o-mini"]["completed"] == 24
