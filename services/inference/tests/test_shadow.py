"""Shadow evaluation in the workers, against the model simulator: the SLM worker's copy after an accepted answer
(and none after an escalated one), the LLM worker's comparison and shadow usage; and the comparison itself."""

from __future__ import annotations

import pytest
from modelyard_events import ModelClass, QueryOutcome, QueryRouted, ShadowCompared, ShadowOf, ShadowPlan, UsageRecorded
from modelyard_inference.shadow import compare, final_answer, shadow_call_id

from .test_worker import EASY, HARD, delivery, make_worker, routed, split

PLAN = ShadowPlan(share=0.05, model_class=ModelClass.LLM, model="gpt-4o")


async def test_an_accepted_sampled_small_answer_is_delivered_and_also_sent_to_the_large_model(simulated_backend) -> None:
    backend, _ = await simulated_backend(headers=EASY)
    q = routed().model_copy(update={"shadow": PLAN})
    usage, decided = split(await make_worker(backend).answer_all([delivery(q)]), q.query_id)
    assert [o.topic for o in decided] == ["queries.outcomes", "queries.routed.llm"]  # the outcome first
    outcome, copy = decided[0].event, decided[1].event
    assert isinstance(outcome, QueryOutcome) and outcome.route is not None and not outcome.cascade[0].escalated
    assert isinstance(copy, QueryRouted) and copy.shadow is None and not copy.can_escalate and copy.cascade == []
    assert (copy.decision.model_class, copy.decision.model) == (ModelClass.LLM, "gpt-4o")
    assert copy.shadow_of == ShadowOf(answer=outcome.answer, model="gpt-4o-mini", share=0.05)
    assert copy.event_id != q.event_id and len(usage) == 1 and not usage[0].shadow


async def test_an_escalated_small_answer_is_marked_and_gets_no_shadow_copy(simulated_backend) -> None:
    backend, _ = await simulated_backend(headers=HARD)
    q = routed("Analyze the root cause of the outage and design a recovery strategy").model_copy(update={"shadow": PLAN})
    _, decided = split(await make_worker(backend).answer_all([delivery(q)]), q.query_id)
    assert [o.topic for o in decided] == ["queries.escalations"]
    assert decided[0].event.cascade[-1].escalated


async def test_the_large_model_answers_a_shadow_copy_with_a_comparison_and_a_shadow_usage_only(simulated_backend) -> None:
    backend, _ = await simulated_backend(headers=EASY)
    q = routed(model_class=ModelClass.LLM, can_escalate=False).model_copy(
        update={"shadow_of": ShadowOf(answer="Something else entirely about printers and toner.", model="gpt-4o-mini",
                                      share=0.05)})
    usage, decided = split(await make_worker(backend).answer_all([delivery(q)]), q.query_id)
    assert [o.topic for o in decided] == ["queries.shadows"]
    compared = decided[0].event
    assert isinstance(compared, ShadowCompared) and compared.share == 0.05 and compared.large_model == "gpt-4o"
    assert compared.route.text == q.request.text and compared.method == "similarity" and not compared.agreed
    assert len(usage) == 1 and isinstance(usage[0], UsageRecorded)
    u = usage[0]
    assert u.shadow and u.shadow_agreed is False and u.event_id == shadow_call_id(q.query_id) and u.cost_usd > 0


@pytest.mark.parametrize(("small", "large", "agreed", "method"), [
    ("First, 14 - 3 = 11. Then 11 * 5 = 55. The answer is 55.", "So 11 * 5 = 55 in total. The answer is 55.", True, "exact"),
    ("First, 14 - 3 = 11. The answer is 54.", "So 11 * 5 = 55 in total, and that is all. The answer is 55.", False, "exact"),
    ("#### 1,200", "The total comes to $1200 after all the fees are added together. Answer: 1200", True, "exact"),
    ("Answer: B", "answer: b", True, "exact"),
    ('{"city": "Paris", "days": 3}', '{"days": 3, "city": "Paris"}', True, "exact"),
    ("Paris", "paris.", True, "exact"),
    ("Paris", "Lyon", False, "exact"),
])
def test_short_and_structured_answers_are_compared_exactly(small, large, agreed, method):
    got = compare(small, large)
    assert (got.agreed, got.method) == (agreed, method)


def test_long_free_text_is_compared_by_word_overlap_against_the_threshold():
    small = "To reset the password open the account settings page, choose security and follow the reset link we email you."
    close = "Open the account settings, choose security, then follow the reset link in the email to reset the password."
    other = "Printers on the third floor need new toner cartridges before the quarterly audit of office supplies."
    same = compare(small, close)
    assert same.method == "similarity" and same.agreed and same.similarity >= 0.5
    assert not compare(small, other).agreed and compare(small, other).similarity < 0.1
    assert not compare(small, close, threshold=0.95).agreed
    assert final_answer("no final answer here") is None and final_answer("The answer is (c)") == "C"
