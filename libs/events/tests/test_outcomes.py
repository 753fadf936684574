"""``finished_outcome``: the one place a query's terminal outcome after model calls is built."""

from __future__ import annotations

from datetime import UTC, datetime

from modelyard_events import (
    Answer,
    CascadeStep,
    ComplexityLevel,
    ModelClass,
    OutcomeStatus,
    QueryRequest,
    QueryRouted,
    RoutingDecision,
    derived_id,
    finished_outcome,
    outcome_id,
)

SUBMITTED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def routed() -> QueryRouted:
    decision = RoutingDecision(complexity=ComplexityLevel.MODERATE, score=0.4, model_class=ModelClass.SLM, model="gpt-4o-mini")
    return QueryRouted(tenant_id="t1", query_id="q1", submitted_at=SUBMITTED, decision=decision,
                       request=QueryRequest(text="Why?", metadata={"ticket": "7"}))


STEPS = [
    CascadeStep(model_class=ModelClass.SLM, model="gpt-4o-mini", confidence=0.3, input_tokens=10, output_tokens=5, cost_usd=0.001),
    CascadeStep(model_class=ModelClass.LLM, model="gpt-4o", error="timeout"),
]


def test_a_completed_outcome_carries_the_answer_and_the_totals_of_every_call():
    best = Answer(text="Because.", model_class=ModelClass.SLM, model="gpt-4o-mini", confidence=0.3)
    o = finished_outcome(routed(), STEPS, answer=best, reason="kept")
    assert o.status is OutcomeStatus.COMPLETED
    assert (o.answer, o.model, o.model_class, o.confidence, o.reason) == ("Because.", "gpt-4o-mini", ModelClass.SLM, 0.3, "kept")
    assert (o.input_tokens, o.output_tokens, o.cost_usd) == (10, 5, 0.001)
    assert (o.tenant_id, o.query_id, o.submitted_at, o.complexity) == ("t1", "q1", SUBMITTED, ComplexityLevel.MODERATE)
    assert o.metadata == {"ticket": "7"} and o.cascade == STEPS


def test_without_an_answer_the_outcome_fails_with_the_reason():
    o = finished_outcome(routed(), STEPS, answer=None, reason="backend down")
    assert o.status is OutcomeStatus.FAILED and o.answer is None and o.model is None and o.reason == "backend down"


def test_the_outcome_id_is_one_per_query_whoever_builds_it():
    assert finished_outcome(routed(), STEPS, answer=None).event_id == outcome_id("q1") == derived_id("q1", "outcome")
