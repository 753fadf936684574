"""The worker's judging: the scorer model it loads, and self-consistency. The backend is an in-memory fake that
returns the completions each test scripts (this is pure decision logic; the simulator tests cover the wire).
The k samples are asked for as the generation parameters ``n`` and ``temperature`` of the call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from modelyard_core.bus import Bus
from modelyard_events import Choice, Generation, ModelClass, OutcomeStatus, QueryEscalated, QueryOutcome, SelfConsistency
from modelyard_inference.answers import default_model, judge
from modelyard_inference.backend import Completion
from modelyard_inference.worker import Worker

from .conftest import fast_settings
from .test_answers_consistency import DUCKS, worked
from .test_worker import PRICING, delivery, routed, split


class FakeBackend:
    """Answers every call with the scripted texts (one choice per text) and records what was asked."""

    def __init__(self, settings, texts: list[str]) -> None:
        self.settings = settings
        self.texts = texts
        self.calls: list[dict] = []

    async def complete(self, model: str, messages: list[dict[str, str]], generation: Generation | None = None) -> Completion:
        samples = generation.n if generation is not None and generation.n else 1
        temperature = generation.temperature if generation is not None else None
        self.calls.append({"model": model, "samples": samples, "temperature": temperature})
        choices = tuple(Choice(index=i, content=t, finish_reason="stop") for i, t in enumerate(self.texts[:samples]))
        return Completion(choices[0].content, "stop", 100, 40 * samples, None, 5.0, 1, choices)


def worker_with(texts: list[str], pool: str = "slm", **settings) -> tuple[Worker, FakeBackend]:
    s = fast_settings(pool=pool, **settings)
    backend = FakeBackend(s, texts)
    return Worker(s, Bus(s, "inference"), backend, PRICING), backend  # the broker is never started


SC = SelfConsistency(samples=3, temperature=0.8)


async def test_self_consistency_asks_for_k_samples_in_one_call_and_meters_them_all() -> None:
    worker, backend = worker_with([worked()] * 3)
    q = routed(DUCKS).model_copy(update={"self_consistency": SC})
    usage, decided = split(await worker.answer_all([delivery(q)]), q.query_id)
    assert backend.calls == [{"model": "gpt-4o-mini", "samples": 3, "temperature": 0.8}]
    outcome = decided[0].event
    assert isinstance(outcome, QueryOutcome) and outcome.status is OutcomeStatus.COMPLETED and outcome.answer == worked()
    # every sampled completion is metered: the tokens of all three, and their count
    [u] = usage
    assert u.completions == 3 and u.output_tokens == 120
    assert u.cost_usd == pytest.approx(PRICING.cost("gpt-4o-mini", 100, 120))
    assert u.llm_cost_usd == pytest.approx(PRICING.baseline_cost(100, 40))  # the all-LLM counterfactual asks once


async def test_a_split_vote_lowers_confidence_and_keeps_a_majority_answer_when_the_threshold_allows() -> None:
    texts = [worked(6), worked(), worked()]
    worker, _ = worker_with(texts)
    q = routed(DUCKS).model_copy(update={"self_consistency": SC})
    _, decided = split(await worker.answer_all([delivery(q)]), q.query_id)
    esc = decided[0].event
    assert isinstance(esc, QueryEscalated) and "self_consistency: 2 of 3 agree (20, 18, 18)" in esc.reasons
    assert esc.best_answer.text == worked()  # the majority's answer, not the first sample
    lenient = routed(DUCKS, threshold=0.3).model_copy(update={"self_consistency": SC})
    _, decided = split(await worker.answer_all([delivery(lenient)]), lenient.query_id)
    assert isinstance(decided[0].event, QueryOutcome) and decided[0].event.answer == worked()


async def test_samples_without_a_majority_escalate_whatever_the_threshold() -> None:
    worker, _ = worker_with([worked(), worked(6), worked(5)])
    q = routed(DUCKS, threshold=0.0).model_copy(update={"self_consistency": SC})
    _, decided = split(await worker.answer_all([delivery(q)]), q.query_id)
    esc = decided[0].event
    assert isinstance(esc, QueryEscalated)
    assert esc.reasons[0] == "self_consistency: answers disagree: 18, 20, 22 (1 of 3 agree) [hard]"


@pytest.mark.parametrize(("text", "pool", "policy"), [
    ("How do I reset my password?", "slm", SC),  # not a reasoning question
    (DUCKS, "llm", SC),  # the large model answers once
    (DUCKS, "slm", None),  # no policy
    (DUCKS, "slm", SelfConsistency(samples=1)),
])
async def test_one_answer_is_asked_for_outside_the_policy(text: str, pool: str, policy) -> None:
    worker, backend = worker_with([worked()], pool=pool)
    model_class = ModelClass.SLM if pool == "slm" else ModelClass.LLM
    q = routed(text, model_class=model_class).model_copy(update={"self_consistency": policy})
    usage, _ = split(await worker.answer_all([delivery(q)]), q.query_id)
    assert backend.calls[0]["samples"] == 1 and backend.calls[0]["temperature"] is None
    assert usage[0].completions == 1


async def test_the_worker_judges_with_the_scorer_file_it_is_given(tmp_path: Path) -> None:
    # a model file whose intercept makes every answer look wrong: the worker must use it, not the default
    data = json.loads(json.dumps(default_model().data))
    data["intercept"] = 5.0
    for f in data["features"]:
        if f["name"] == "is_math":
            f["weight"] = 0.0
    path = tmp_path / "pessimist.json"
    path.write_text(json.dumps(data))
    q = routed(DUCKS)
    default_worker, _ = worker_with([worked()])
    _, decided = split(await default_worker.answer_all([delivery(q)]), q.query_id)
    assert isinstance(decided[0].event, QueryOutcome)
    worker, _ = worker_with([worked()], cascade={"scorer": str(path)})
    _, decided = split(await worker.answer_all([delivery(q)]), q.query_id)
    assert isinstance(decided[0].event, QueryEscalated) and decided[0].event.cascade[0].confidence < 0.01


def test_a_scorer_file_that_does_not_load_stops_the_worker_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="not a modelyard-answer-scorer file"):
        worker_with([worked()], cascade={"scorer": str(bad)})


async def test_the_worker_and_the_offline_judge_agree() -> None:
    worker, _ = worker_with([worked(), worked(6), worked()])
    q = routed(DUCKS).model_copy(update={"self_consistency": SC})
    completion = await worker.backend.complete("gpt-4o-mini", [], Generation(n=3))
    online = worker.judge(q, completion, voting=True)
    assert online == judge(DUCKS, completion.samples, model=default_model(), min_agreement=SC.min_agreement)
