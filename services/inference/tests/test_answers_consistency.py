"""Self-consistency: k answers compared by their final answers (pure logic; samples are plain dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from modelyard_inference.answers import judge, reasoning_question, score

DUCKS = ("Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
         "friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck "
         "egg. How much in dollars does she make every day at the farmers' market?")


def worked(used: int = 7) -> str:
    """A worked answer; ``used`` other than 3 + 4 = 7 is a fluent mistake (its arithmetic holds)."""
    left = 16 - used
    return f"She uses {used} eggs, so 16 - {used} = {left} are left.\nShe sells them for {left} * $2 = ${left * 2}.\n#### {left * 2}"


@dataclass(frozen=True)
class Sample:
    text: str
    finish_reason: str | None = "stop"
    logprobs: list[float] | None = None


def test_one_sample_is_judged_exactly_as_score_does() -> None:
    verdict = judge(DUCKS, [Sample(worked())])
    assert verdict.score == score(DUCKS, worked(), finish_reason="stop")
    assert verdict.chosen == 0 and verdict.agreement is None and verdict.votes == ()


def test_unanimous_samples_keep_the_single_answer_confidence() -> None:
    verdict = judge(DUCKS, [Sample(worked())] * 3)
    assert verdict.agreement == 1.0 and verdict.votes == ("18", "18", "18")
    assert verdict.score.confidence == score(DUCKS, worked()).confidence and not verdict.score.hard


def test_a_split_vote_with_a_majority_lowers_confidence_and_says_so() -> None:
    # the third sample reasons to another (arithmetically consistent) answer: a fluent mistake
    samples = [Sample(worked()), Sample(worked(6)), Sample(worked())]
    verdict = judge(DUCKS, samples)
    assert verdict.votes == ("18", "20", "18") and verdict.agreement == pytest.approx(2 / 3, abs=1e-4)
    assert verdict.chosen in (0, 2) and not verdict.score.hard
    assert verdict.score.confidence < judge(DUCKS, [samples[0]] * 3).score.confidence
    assert "self_consistency: 2 of 3 agree (18, 20, 18)" in verdict.score.reasons
    assert any("samples disagreeing" in r for r in verdict.score.reasons)


def test_no_majority_is_a_hard_finding_that_escalates_at_any_threshold() -> None:
    samples = [Sample(worked()), Sample(worked(6)), Sample(worked(5))]
    verdict = judge(DUCKS, samples)
    assert verdict.score.hard and verdict.score.escalate(threshold=0.0)
    assert verdict.score.reasons[0] == "self_consistency: answers disagree: 18, 20, 22 (1 of 3 agree) [hard]"
    assert verdict.agreement == pytest.approx(1 / 3, abs=1e-4)


def test_min_agreement_is_the_policy_knob() -> None:
    samples = [Sample(worked()), Sample(worked(6)), Sample(worked())]
    assert judge(DUCKS, samples, min_agreement=0.7).score.hard  # 2 of 3 is not more than 0.7
    assert not judge(DUCKS, samples, min_agreement=0.5).score.hard


def test_a_sample_failing_a_verifier_casts_no_vote() -> None:
    slip = Sample(worked().replace("16 - 7 = 9", "16 - 7 = 8"))  # wrong arithmetic: hard finding
    verdict = judge(DUCKS, [slip, Sample(worked()), Sample(worked())])
    assert verdict.votes == (None, "18", "18") and verdict.chosen in (1, 2) and not verdict.score.hard
    alone = judge(DUCKS, [slip, slip, Sample(worked())])
    assert alone.score.hard and "1 of 3 agree" in alone.score.reasons[0]


def test_multiple_choice_samples_vote_with_their_letters() -> None:
    mcq = "Which layer routes packets between networks?\nA. Physical\nB. Data link\nC. Network\nD. Transport"
    verdict = judge(mcq, [Sample("C"), Sample("The answer is C."), Sample("B")])
    assert verdict.votes == ("C", "C", "B") and verdict.chosen in (0, 1) and not verdict.score.hard


def test_free_text_has_no_votes_and_keeps_the_most_confident_sample() -> None:
    query = "How do I configure the VPN client on the Windows laptops of the sales team?"
    good = "Install the Windows VPN client package and import the sales team profile."
    verdict = judge(query, [Sample("I'm not sure, but " + good), Sample(good)])
    assert verdict.chosen == 1 and verdict.agreement is None and verdict.votes == (None, None)
    assert verdict.score == score(query, good, finish_reason="stop")


def test_judging_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no completion"):
        judge(DUCKS, [])


@pytest.mark.parametrize(("query", "reasoning"), [
    (DUCKS, True),
    ("Kyle bought a book for $19.50 with a 25% discount. What was the original price of the book?", True),
    ("Which layer routes packets?\nA. Physical\nB. Network", True),
    ("What is the status of ticket #4411?", False),
    ("How do I reset my password?", False),
])
def test_which_questions_self_consistency_serves(query: str, reasoning: bool) -> None:
    assert reasoning_question(query) is reasoning
