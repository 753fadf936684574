"""The scorer with the shipped model file: the seed's helpdesk behaviour and the math answers' verdicts."""

import json
import math

import pytest

from modelyard_inference.answers import DEFAULT_THRESHOLD, Model, score
from modelyard_inference.answers.features import FEATURES
from modelyard_inference.answers.scorer import FORMAT, default_model

GSM8K_SHA256 = "c843542bdf747ecd31b58e058ce05f68bc85161900d420dec9ed093c520f6737"
QUERY = "How do I configure the VPN client on the Windows laptops of the sales team?"
GOOD = "To configure the VPN client on the sales laptops, install the Windows package and import the team profile."


def logprobs_of(p: float, n: int = 20) -> list[float]:
    return [math.log(p)] * n


# --- helpdesk: a confident correct answer stays; hedged, empty, truncated, refused ones escalate ----------


def test_confident_answer_stays_with_and_without_logprobs() -> None:
    for kwargs in ({"logprobs": logprobs_of(0.95)}, {}, {"finish_reason": "stop"}):
        result = score(QUERY, GOOD, **kwargs)
        assert not result.escalate() and result.confidence >= 0.8 and not result.hard, kwargs
        assert result.reasons == []


def test_empty_answer_escalates_at_any_threshold() -> None:
    for empty in ("", "   \n"):
        result = score(QUERY, empty, logprobs=logprobs_of(0.99))
        assert result.confidence == 0.0 and result.hard and result.escalate(0.0)
        assert result.reasons == ["empty: empty answer [hard]"]


def test_token_confidence_orders_the_score_and_unsure_tokens_escalate() -> None:
    values = [score(QUERY, GOOD, logprobs=logprobs_of(p)).confidence for p in (0.95, 0.9, 0.8, 0.6, 0.45, 0.3, 0.1)]
    assert values == sorted(values, reverse=True) and values[-1] < 0.01
    unsure = score(QUERY, GOOD, logprobs=logprobs_of(0.5))
    assert unsure.escalate() and "token surprise" in unsure.reasons[0]


def test_a_near_guess_token_costs_a_little() -> None:
    clean = score(QUERY, GOOD, logprobs=logprobs_of(0.95, 30))
    one_guess = score(QUERY, GOOD, logprobs=logprobs_of(0.95, 30) + [math.log(0.01)])
    assert DEFAULT_THRESHOLD < one_guess.confidence < clean.confidence
    assert any("near-guess" in r for r in one_guess.reasons)


@pytest.mark.parametrize(
    "hedge",
    ["I'm not sure, but", "I don\u2019t know for certain, but", "It is hard to say, but",
     "I cannot determine it exactly, but", "My best guess:"],
)
def test_hedged_answers_escalate(hedge: str) -> None:
    for kwargs in ({"logprobs": logprobs_of(0.95)}, {}):
        hedged = score(QUERY, f"{hedge} {GOOD}", **kwargs)
        assert hedged.escalate() and any(r.startswith("hedging") for r in hedged.reasons)


def test_more_hedges_lower_it_further_and_lookalikes_do_not_count() -> None:
    one = score(QUERY, "I'm not sure. " + GOOD)
    two = score(QUERY, "I'm not sure, and I could be wrong. " + GOOD)
    assert two.confidence < one.confidence
    lookalike = score(QUERY, GOOD + " Make sure the client is current. We don't knowingly block it.")
    assert lookalike.confidence == score(QUERY, GOOD).confidence


def test_refusal_escalates_but_a_quotation_deep_inside_does_not() -> None:
    refusal = score(QUERY, "I'm sorry, but I can't help with that request about VPN client laptops.")
    assert refusal.hard and refusal.escalate(0.0) and refusal.reasons[0].startswith("refusal")
    quoted = GOOD + " " + "Then check the installer log. " * 8 + "If it says 'I cannot provide a certificate', renew it."
    assert not score(QUERY, quoted, logprobs=logprobs_of(0.95)).escalate()


@pytest.mark.parametrize("finish_reason", ["length", "content_filter"])
def test_truncated_or_filtered_answers_escalate_regardless_of_the_threshold(finish_reason: str) -> None:
    cut = score(QUERY, GOOD, logprobs=logprobs_of(0.99), finish_reason=finish_reason)
    assert cut.hard and cut.escalate(threshold=0.0) and cut.confidence < DEFAULT_THRESHOLD


def test_off_topic_and_too_short_answers_score_lower() -> None:
    on = score(QUERY, GOOD, logprobs=logprobs_of(0.95))
    off = score(QUERY, "Bananas are rich in potassium and grow in warm climates.", logprobs=logprobs_of(0.95))
    assert off.confidence < on.confidence and any(r.startswith("off_topic") for r in off.reasons)
    assert score(QUERY, "Start by configuring it with the installer.", logprobs=logprobs_of(0.95)).confidence == on.confidence
    long_q = ("Our nightly export job to the data warehouse started failing after the storage migration last week; "
              "the logs show permission errors on the bucket. What should we check first?")
    tiny = score(long_q, "Check permissions.", logprobs=logprobs_of(0.95))
    assert tiny.confidence < on.confidence and any(r.startswith("too_short") for r in tiny.reasons)
    mcq = "Which layer of the OSI model routes packets between networks?\nA. Physical\nB. Data link\nC. Network\nD. Transport"
    assert not score(mcq, "C", logprobs=logprobs_of(0.95)).escalate()


# --- math answers ---------------------------------------------------------------------------------------

DUCKS = ("Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
         "friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck "
         "egg. How much in dollars does she make every day at the farmers' market?")
RIGHT = ("Janet starts with 16 eggs per day.\nShe eats 3 for breakfast, so she has 16 - 3 = 13 eggs left.\n"
         "She uses 4 for baking, so she has 13 - 4 = 9 eggs left.\n"
         "She sells these 9 eggs at the farmers' market for 9 * $2 = $<<9*2=18>>18.\n#### 18")


def test_a_clean_worked_answer_stays() -> None:
    result = score(DUCKS, RIGHT)
    assert not result.escalate() and not result.hard


def test_an_arithmetic_slip_escalates_at_any_threshold_and_is_named() -> None:
    slip = RIGHT.replace("13 - 4 = 9", "13 - 4 = 8")
    result = score(DUCKS, slip)
    assert result.hard and result.escalate(threshold=0.0)
    assert result.reasons[0] == "arithmetic: 13 - 4 = 8 (is 9) [hard]"


def test_a_doubtful_answer_escalates_and_the_reasons_name_the_features() -> None:
    doubtful = ("Since she eats three, she does not keep 16. Therefore 16 - 3 - 4 = 9 eggs, which means "
                "9 * 2 = 18 dollars. However, the price may be rounded.\n#### 18.5")
    result = score(DUCKS, doubtful)
    assert result.escalate() and not result.hard
    joined = " ".join(result.reasons)
    assert "final answer not a whole number" in joined and "argument words" in joined
    assert all(r.startswith("scorer: ") and r.endswith(")") for r in result.reasons)


def test_thresholds_are_a_policy_on_one_confidence() -> None:
    result = score(DUCKS, RIGHT)
    assert result.escalate(threshold=min(result.confidence + 0.01, 1.0))
    assert not result.escalate(threshold=result.confidence)


# --- the model file ------------------------------------------------------------------------------------


def test_shipped_model_file_says_what_it_is() -> None:
    data = default_model().data
    assert data["format"] == FORMAT and data["format_version"] == 1
    assert data["training"]["data"][0]["sha256"] == GSM8K_SHA256 and data["training"]["data"][0]["which"] == "all"
    assert data["training"]["rows"] == 660 and data["calibration"]["max_cost"] == 0.5
    assert [f["name"] for f in data["features"]] == [f.name for f in FEATURES]
    assert {f["source"] for f in data["features"]} <= {"learned", "prior", "none"}
    assert 0.5 < data["metrics"]["auroc_wrong"] < 1.0


def test_a_model_file_of_another_format_or_with_unknown_features_is_refused(tmp_path) -> None:
    data = json.loads(json.dumps(default_model().data))
    with pytest.raises(ValueError, match="format_version"):
        Model({**data, "format_version": 99})
    with pytest.raises(ValueError, match="not a"):
        Model({**data, "format": "something-else"})
    with pytest.raises(ValueError, match="does not know"):
        Model({**data, "features": data["features"] + [{"name": "mystery", "weight": 1.0}]})
    older = {**data, "features": [f for f in data["features"] if f["name"] != "a_connectives"]}
    assert Model(older).weights[[f.name for f in FEATURES].index("a_connectives")] == 0.0


def test_a_final_answer_showing_the_last_result_rounded_is_that_result() -> None:
    from modelyard_inference.answers.analysis import Analysis
    from modelyard_inference.answers.features import INDEX, extract

    query = "John runs 60 miles in 7 days, the same distance each day. How far does he run each day?"
    for final, expected in (("8.57", 0.0), ("9.5", 1.0)):
        response = f"He runs 60 / 7 = <<60/7=8.571428571428571>>8.57 miles a day.\n#### {final}"
        assert extract(Analysis(query, response), [])[INDEX["a_final_not_last_result"]] == expected, final
