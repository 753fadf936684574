"""How `eval-cascade` reads the pipeline's outcomes back into decisions (pure: outcomes built by the test)."""

from __future__ import annotations

from modelyard_events import CascadeStep, ModelClass, OutcomeStatus, QueryOutcome

from modelyard.cascade.data import Example
from modelyard.cascade.offline import Decisions
from modelyard.cascade.pipeline import policy_result

QUESTION = "Ann has 20 liters of juice. She gives 3 to Bob and 4 to Cy. How many liters does she keep?"


def example(row: int, correct: bool) -> Example:
    return Example(query=QUESTION, response="small answer", correct=correct, source="t.csv", row=row,
                   large_correct=True, large_response="large answer")


def outcome(*classes: ModelClass, answer: str, error: str | None = None, kept: ModelClass | None = None) -> QueryOutcome:
    """An outcome whose kept answer came from ``kept`` (default: the last call's class)."""
    steps = [CascadeStep(model_class=c, model="m", error=error if i == 0 else None) for i, c in enumerate(classes)]
    return QueryOutcome(tenant_id="t", query_id="q", status=OutcomeStatus.COMPLETED, answer=answer,
                        model_class=kept or classes[-1], cascade=steps)


def test_outcomes_become_the_same_decisions_the_offline_evaluation_makes() -> None:
    examples = [example(0, True), example(1, False), example(2, False), example(3, True)]
    outcomes = [
        outcome(ModelClass.SLM, answer="small answer"),  # kept
        outcome(ModelClass.SLM, ModelClass.LLM, answer="large answer"),  # escalated
        outcome(ModelClass.LLM, answer="large answer"),  # straight to the LLM
        outcome(ModelClass.SLM, ModelClass.LLM, answer="small answer", kept=ModelClass.SLM),  # small answer kept at the top
    ]
    offline = Decisions(0.6, [False, False, True, False], [False, True, False, True], [False, False, False, True])
    result = policy_result(examples, outcomes, offline, {"cost_usd": 1.0, "llm_only_cost_usd": 4.0, "completions": 6,
                                                         "calls": 6})
    assert result["agrees_with_offline"] == result["answered"] == 4 and result["not_replayed"] == 0
    assert (result["escalated"], result["direct"], result["accuracy"]) == (0.5, 0.25, 1.0)
    assert result["metered_cost"] == 0.25 and result["failed_calls"] == 0
    assert {k: result[k] for k in ("quality", "cost")} == {k: result["offline"][k] for k in ("quality", "cost")}


def test_a_failed_call_an_answer_not_replayed_and_a_missing_outcome_are_visible() -> None:
    examples = [example(0, True), example(1, True), example(2, True)]
    outcomes = [
        outcome(ModelClass.SLM, ModelClass.LLM, answer="large answer", error="HTTP 503: busy"),
        outcome(ModelClass.SLM, answer="something the model never said"),
        None,
    ]
    offline = Decisions(0.6, [False] * 3, [False] * 3, [False] * 3)
    result = policy_result(examples, outcomes, offline, {})
    assert result["answered"] == 2 and result["agrees_with_offline"] == 1
    assert result["failed_calls"] == 1 and result["first_error"] == "HTTP 503: busy" and result["not_replayed"] == 1
    assert result["metered_cost"] is None
