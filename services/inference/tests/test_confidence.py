"""The confidence scorer: one test per signal, the offline scorer, and agreement with the simulator."""

from __future__ import annotations

import json
import math

import httpx
import openai
import pytest
from modelyard_inference.confidence import Confidence, phrases, score, score_lines, should_escalate

QUERY = "How do I configure the VPN client on the Windows laptops of the sales team?"
GOOD = "To configure the VPN client on the sales laptops, install the Windows package and import the team profile."


def logprobs_of(p: float, n: int = 20) -> list[float]:
    return [math.log(p)] * n


def test_empty_answer_scores_zero() -> None:
    for empty in ("", "   \n"):
        result = score(QUERY, empty, logprobs=logprobs_of(0.99))
        assert result == Confidence(0.0, ["empty answer"])


def test_confident_tokens_score_high_and_unsure_tokens_low() -> None:
    sure = score(QUERY, GOOD, logprobs=logprobs_of(0.95))
    assert sure.confidence == 1.0 and sure.reasons == []
    values = [score(QUERY, GOOD, logprobs=logprobs_of(p)).confidence for p in (0.9, 0.8, 0.6, 0.45, 0.3, 0.1)]
    assert values == sorted(values, reverse=True) and values[0] > values[-1]
    assert values[-1] == 0.0
    unsure = score(QUERY, GOOD, logprobs=logprobs_of(0.5))
    assert unsure.confidence < 0.6 and "low token probability" in unsure.reasons[0]


def test_a_near_guess_token_costs_a_little() -> None:
    clean = score(QUERY, GOOD, logprobs=logprobs_of(0.95))
    one_guess = score(QUERY, GOOD, logprobs=logprobs_of(0.95, 30) + [math.log(0.01)])
    assert one_guess.confidence < clean.confidence
    assert one_guess.confidence > 0.6
    assert any("near-guess" in r for r in one_guess.reasons)


def test_without_logprobs_the_base_is_neutral() -> None:
    result = score(QUERY, GOOD)
    assert 0.6 < result.confidence < 1.0 and result.reasons == ["no log-probabilities"]
    assert score(QUERY, GOOD, logprobs=[]).confidence == result.confidence


@pytest.mark.parametrize(
    "hedge",
    [
        "I'm not sure, but",
        "I don\u2019t know for certain, but",
        "It is hard to say, but",
        "I cannot determine it exactly, but",
        "My best guess:",
    ],
)
def test_uncertainty_phrases_lower_the_score(hedge: str) -> None:
    plain = score(QUERY, GOOD, logprobs=logprobs_of(0.95))
    hedged = score(QUERY, f"{hedge} {GOOD}", logprobs=logprobs_of(0.95))
    assert hedged.confidence < 0.6 <= plain.confidence
    assert any(r.startswith("uncertainty") for r in hedged.reasons)


def test_more_hedges_lower_it_further_and_lookalikes_do_not_count() -> None:
    one = score(QUERY, "I'm not sure. " + GOOD)
    two = score(QUERY, "I'm not sure, and I could be wrong. " + GOOD)
    assert two.confidence < one.confidence
    lookalike = score(QUERY, GOOD + " Make sure the client is current. We don't knowingly block it.")
    assert lookalike.confidence == score(QUERY, GOOD).confidence


def test_refusal_at_the_start_is_penalised_but_not_a_quotation_deep_inside() -> None:
    refusal = score(
        QUERY, "I'm sorry, but I can't help with that request about VPN client laptops.", logprobs=logprobs_of(0.95)
    )
    assert refusal.confidence <= 0.2 and any(r.startswith("refusal") for r in refusal.reasons)
    quoted = (
        GOOD + " " + "Then check the installer log. " * 8 + "If it says 'I cannot provide a certificate', renew it."
    )
    assert score(QUERY, quoted, logprobs=logprobs_of(0.95)).confidence == 1.0


def test_truncated_answer_is_penalised() -> None:
    full = score(QUERY, GOOD, logprobs=logprobs_of(0.95), finish_reason="stop")
    cut = score(QUERY, GOOD, logprobs=logprobs_of(0.95), finish_reason="length")
    assert full.confidence == 1.0 and cut.confidence == 0.5
    assert any("length" in r for r in cut.reasons)
    assert score(QUERY, GOOD, logprobs=logprobs_of(0.95), finish_reason="content_filter").confidence < 0.5


def test_off_topic_answer_is_penalised_only_for_a_substantive_query() -> None:
    off = score(QUERY, "Bananas are rich in potassium and grow in warm climates.", logprobs=logprobs_of(0.95))
    assert off.confidence < 0.8 and any("does not address" in r for r in off.reasons)
    # inflections still count as the same word: "configure" ~ "configuring"
    assert score(QUERY, "Start by configuring it with the installer.", logprobs=logprobs_of(0.95)).confidence == 1.0
    assert score("hi", "Hello! How can I help you today?", logprobs=logprobs_of(0.95)).confidence == 1.0


def test_tiny_answer_to_a_long_question_is_penalised_unless_multiple_choice() -> None:
    long_question = (
        "Our nightly export job to the data warehouse started failing after the storage migration last week; "
        "the logs show permission errors on the bucket. What should we check first?"
    )
    tiny = score(long_question, "Check permissions.", logprobs=logprobs_of(0.95))
    assert tiny.confidence < 1.0 and any("too short" in r for r in tiny.reasons)
    multiple_choice = (
        "Which layer of the OSI model is responsible for routing packets between networks across the internet today?\n"
        "A. Physical\nB. Data link\nC. Network\nD. Transport\nAnswer:"
    )
    assert score(multiple_choice, "C", logprobs=logprobs_of(0.95)).confidence == 1.0


def test_should_escalate_below_the_threshold_only() -> None:
    assert should_escalate(Confidence(0.59, []))
    assert not should_escalate(Confidence(0.6, []))
    assert should_escalate(Confidence(0.7, []), threshold=0.8)
    assert not should_escalate(Confidence(0.1, []), threshold=0.0)


def test_phrase_file_is_versioned() -> None:
    data = phrases()
    assert (
        data.version
        and data.uncertainty.found("well, i'm not sure") == ["i'm not sure"]
        and data.refusal.found("i must decline")
    )


def test_score_lines_uses_exactly_score() -> None:
    records = [
        {"query": QUERY, "response": GOOD, "logprobs": logprobs_of(0.7)},
        {"query": QUERY, "response": "I'm not sure. " + GOOD, "finish_reason": "length", "id": "q-2"},
        {"query": QUERY, "response": GOOD, "logprobs": {"content": [{"token": "x", "logprob": math.log(0.4)}] * 5}},
    ]
    out = [json.loads(line) for line in score_lines([json.dumps(r) for r in records], threshold=0.7)]
    expected = [
        score(QUERY, GOOD, logprobs=logprobs_of(0.7)),
        score(QUERY, "I'm not sure. " + GOOD, finish_reason="length"),
        score(QUERY, GOOD, logprobs=[math.log(0.4)] * 5),
    ]
    for line, result in zip(out, expected, strict=True):
        assert line["confidence"] == result.confidence and line["reasons"] == result.reasons
        assert line["escalate"] == should_escalate(result, 0.7)
    assert out[1]["id"] == "q-2" and "id" not in out[0]


def test_score_lines_reports_bad_lines_and_keeps_going() -> None:
    lines = [
        "{not json",
        json.dumps(["a list"]),
        json.dumps({"response": "x"}),
        json.dumps({"query": "q", "response": 3}),
        json.dumps({"query": "q", "response": "r", "logprobs": [0.5]}),
        json.dumps({"query": "q", "response": "r", "logprobs": "high"}),
        "",
        json.dumps({"query": QUERY, "response": GOOD}),
    ]
    out = [json.loads(line) for line in score_lines(lines)]
    assert [o.get("line") for o in out[:6]] == [1, 2, 3, 4, 5, 6]
    assert all("error" in o for o in out[:6])
    assert "query" in out[2]["error"] and "response" in out[3]["error"] and "<= 0" in out[4]["error"]
    assert len(out) == 7 and out[6]["confidence"] == score(QUERY, GOOD).confidence
    with pytest.raises(ValueError):
        list(score_lines([], threshold=1.5))


# --- agreement with the model simulator -------------------------------------------------------------

HARD_PROMPTS = [
    "Perform a root-cause analysis of yesterday's outage of the payments API, "
    "which failed for 40 minutes after a deploy",
    "Design a disaster recovery plan for our multi-region database cluster, including failover and data consistency",
    "Compare the trade-offs of two failover strategies for our distributed message queue and recommend one",
]
EASY_PROMPTS = [
    "What is the status of ticket 4411?",
    "How do I reset my password?",
    "Please unlock my login for the portal",
]


@pytest.fixture
def simulated_models():
    from modelyard_simulator import SimulatorConfig, create_app

    app = create_app(SimulatorConfig(all_models={"latency_ms": 0}))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://simulator")
    return openai.AsyncOpenAI(base_url="http://simulator/v1", api_key="unused", http_client=http, max_retries=0)


async def ask_and_score(client: openai.AsyncOpenAI, model: str, prompt: str) -> Confidence:
    reply = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], logprobs=True
    )
    choice = reply.choices[0]
    return score(
        prompt,
        choice.message.content,
        logprobs=[t.logprob for t in choice.logprobs.content],
        finish_reason=choice.finish_reason,
    )


async def test_simulated_large_models_score_confident(simulated_models) -> None:
    for model in ("gpt-4o", "gpt-4-turbo"):
        for prompt in HARD_PROMPTS + EASY_PROMPTS:
            assert (await ask_and_score(simulated_models, model, prompt)).confidence >= 0.8, (model, prompt)


async def test_simulated_small_model_escalates_hard_prompts_only(simulated_models) -> None:
    for prompt in HARD_PROMPTS:
        result = await ask_and_score(simulated_models, "gpt-4o-mini", prompt)
        assert result.confidence < 0.6 and any(r.startswith("uncertainty") for r in result.reasons), prompt
    for prompt in EASY_PROMPTS:
        assert (await ask_and_score(simulated_models, "gpt-4o-mini", prompt)).confidence >= 0.6, prompt


def test_every_simulator_hedge_is_a_known_uncertainty_phrase() -> None:
    from modelyard_simulator.generate import HEDGES

    for hedge in HEDGES:
        assert phrases().uncertainty.found(hedge.format(topic="the topic").lower()), hedge
