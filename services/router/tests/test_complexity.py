"""Complexity analysis: the data file, the matcher, each factor, and the seed's examples."""

from __future__ import annotations

import copy
import re

import pytest
from modelyard_events import ComplexityLevel
from modelyard_router.complexity import ComplexityModel, load_complexity_model, load_spec, words
from modelyard_router.terms import TermMatcher

SIMPLE, MODERATE, COMPLEX, CRITICAL = (
    ComplexityLevel.SIMPLE,
    ComplexityLevel.MODERATE,
    ComplexityLevel.COMPLEX,
    ComplexityLevel.CRITICAL,
)


@pytest.fixture(scope="module")
def model() -> ComplexityModel:
    return load_complexity_model()


def _points(reasons: list[str]) -> float:
    """Sum of the points the reasons say were added (the last reason states the total)."""
    total = 0.0
    for reason in reasons[:-1]:
        if "not added" in reason:
            continue
        total += float(re.findall(r"[+-]\d+\.\d\d", reason)[-1])
    return total


# --- the data file --------------------------------------------------------------------------------


def test_keyword_file_is_versioned_and_covers_every_level_with_40_plus_terms():
    spec = load_spec()
    assert spec["version"]
    terms = spec["keywords"]["terms"]
    assert set(terms) == {level.value for level in ComplexityLevel}
    assert all(len(terms[level]) >= 10 for level in terms)
    assert sum(len(v) for v in terms.values()) >= 40
    for must, level in [("status", "simple"), ("how to", "moderate"), ("root cause", "complex"),
                        ("strategy", "complex"), ("disaster recovery", "critical"), ("breach", "critical"),
                        ("design ... architecture", "critical")]:
        assert must in terms[level]
    assert any(t.startswith("analy") for t in terms["complex"])


def test_a_term_listed_twice_is_refused():
    spec = copy.deepcopy(load_spec())
    spec["keywords"]["terms"]["simple"].append("root cause")
    with pytest.raises(ValueError, match="listed twice"):
        ComplexityModel(spec)


def test_a_short_wildcard_is_refused():
    spec = copy.deepcopy(load_spec())
    spec["keywords"]["terms"]["complex"].append("ab*")
    with pytest.raises(ValueError, match="wildcard"):
        ComplexityModel(spec)


def test_thresholds_must_increase():
    spec = copy.deepcopy(load_spec())
    spec["thresholds"]["critical"] = spec["thresholds"]["moderate"]
    with pytest.raises(ValueError, match="thresholds"):
        ComplexityModel(spec)


# --- the seed's examples --------------------------------------------------------------------------


def test_ticket_status_is_simple(model):
    a = model.analyze("What is the status of ticket #123?")
    assert a.level is SIMPLE
    assert any("status" in r for r in a.reasons)


def test_root_cause_analysis_is_complex(model):
    a = model.analyze("Analyze the root cause of database outage and design recovery strategy")
    assert a.level is COMPLEX
    assert any("'root cause'" in r and "'strategy'" in r for r in a.reasons)


def test_disaster_recovery_plan_is_critical(model):
    assert model.analyze("Design disaster recovery plan").level is CRITICAL


def test_how_to_is_moderate(model):
    assert model.analyze("How to reset password?").level is MODERATE


# --- matching -------------------------------------------------------------------------------------


def test_words_split_on_punctuation_and_case():
    assert words("Post-Mortem: what's DOWN?") == ["post", "mortem", "what", "s", "down"]


def test_longest_phrase_wins_so_an_sla_breach_is_not_a_security_breach(model):
    sla = model.analyze("Our SLA breach rate doubled this month")
    security = model.analyze("Our security breach doubled this month")
    assert sla.level is COMPLEX
    assert security.level is CRITICAL


def test_gapped_pattern_matches_within_the_gap_only(model):
    near = model.analyze("design the new storage architecture")
    far = model.analyze("design the new, much faster and cheaper and more scalable storage architecture")
    assert any("design ... architecture" in r for r in near.reasons)
    assert near.level is CRITICAL
    assert not any("design ... architecture" in r for r in far.reasons)


def test_wildcard_matches_word_forms(model):
    for text in ("analyse the logs", "analysing the logs", "analysis of the logs"):
        assert model.analyze(text).level is COMPLEX, text
    # An exact entry beats the wildcard: "analytics" is a product word, not an analysis.
    assert model.analyze("analytics").level is MODERATE


def test_words_inside_a_gap_are_still_seen(model):
    a = model.analyze("design a disaster recovery architecture")
    assert "'design ... architecture'" in a.reasons[0] and "more" in a.reasons[0]


# --- factors --------------------------------------------------------------------------------------


def test_length_thresholds_50_150_300_each_add_points(model):
    filler = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor " * 10
    scores = [model.analyze(filler[:n].strip() + "x").score for n in (40, 60, 160, 310, 1200)]
    assert scores == sorted(scores) and len(set(scores)) == len(scores)
    assert scores[0] == 0
    assert model.analyze(filler * 10).level in (SIMPLE, MODERATE)  # length alone never reaches the LLM


def test_several_questions_add_points(model):
    one = model.analyze("Can you check the printer on floor two?")
    three = model.analyze("Can you check the printer? And the scanner? And the fax?")
    listed = model.analyze("Please check:\n1. the printer\n2. the scanner\n3. the fax")
    assert three.score > one.score
    assert any("3 questions" in r for r in three.reasons)
    assert any("3 questions" in r for r in listed.reasons)


def test_calculation_adds_points(model):
    plain = model.analyze("Tell me about the laptops we ordered")
    sums = model.analyze("Tell me about 12 laptops at 900 plus 4 docks at 150 = total?")
    assert sums.score > plain.score
    assert any(r.startswith("calculation") for r in sums.reasons)


def test_context_role_agent_and_history_add_points(model):
    text = "Can you look at the slow reports again"
    base = model.analyze(text).score
    assert model.analyze(text, user_role="CISO").score > base
    assert model.analyze(text, user_role="Security Officer").score > base  # normalised to security_officer
    assert model.analyze(text, agent_type="incident_specialist").score > base
    assert model.analyze(text, history_turns=8).score > model.analyze(text, history_turns=3).score > base
    assert model.analyze(text, user_role="astronaut").score == base


def test_a_request_offering_tools_adds_the_documented_points(model):
    text = "What is the weather in Paris?"
    plain, with_tools = model.analyze(text), model.analyze(text, offers_tools=True)
    assert with_tools.score == pytest.approx(plain.score + load_spec()["context"]["tools_offered"])
    assert "tools offered +0.50" in with_tools.reasons and not any("tools" in r for r in plain.reasons)


def test_short_urgent_outage_reaches_the_llm_levels(model):
    a = model.analyze("all prod down. payments failing everywhere")
    assert a.level in (COMPLEX, CRITICAL)
    assert any(r.startswith("urgency") for r in a.reasons)


def test_a_failure_without_business_scope_is_not_an_incident(model):
    a = model.analyze("my VPN is down")
    assert a.level in (SIMPLE, MODERATE)


def test_pressure_words_alone_do_not_make_a_password_reset_hard(model):
    assert model.analyze("URGENT reset my password asap").level is SIMPLE


def test_a_critical_keyword_with_a_short_text_is_critical(model):
    assert model.analyze("ransomware on the file server").level is CRITICAL


@pytest.mark.parametrize(
    "text",
    [
        "What is the status of ticket #123?",
        "Analyze the root cause of database outage and design recovery strategy",
        "all prod down. payments failing everywhere",
        "URGENT!!! customers can't log in on mobile since the release, sev1",
        "Can you check the printer? And the scanner?\n1. a\n2. b",
    ],
)
def test_reasons_explain_the_whole_score(model, text):
    a = model.analyze(text, user_role="cto", agent_type="sre", history_turns=7, offers_tools=True)
    assert _points(a.reasons) == pytest.approx(a.score, abs=0.011)
    assert a.reasons[-1].startswith(f"score {a.score:.2f} -> {a.level.value}")


def test_vocabulary_stays_bounded_under_many_new_words(model):
    matcher = TermMatcher(model.terms, max_gap=6, vocabulary_size=100)
    for i in range(1_000):
        matcher.scan([f"word{i}"])
    vocabulary = matcher._lookup.__self__
    assert 0 < len(vocabulary) <= 100
    assert [t.text for t in matcher.scan(["please", "analyse", "this"])] == ["analy*"]


# --- factors for the learned router ---------------------------------------------------------------

_REASON_FACTORS = (("keywords simple", "keywords_simple"), ("keywords moderate", "keywords_moderate"),
                   ("keywords complex", "keywords_complex"), ("keywords critical", "keywords_critical"),
                   ("urgency: failure", "incident"), ("failure", "failure"), ("length", "length"),
                   ("calculation", "calculation"), ("pressure", "pressure"), ("user role", "user_role"),
                   ("agent type", "agent_type"), ("history", "history"))


def _factors_read_back(reasons: list[str]) -> dict[str, float]:
    """The factors as the reasons state them (2 decimals): an independent reading to hold ``factors`` to."""
    out = {}
    for reason in reasons:
        if (m := re.match(r"^score (-?\d+\.\d+) -> (\w+)", reason)) is not None:
            out["heuristic_score"], out["level_" + m.group(2)] = float(m.group(1)), 1.0
        elif "not added" not in reason:
            name = "questions" if re.match(r"^\d+ questions ", reason) else next(
                (n for prefix, n in _REASON_FACTORS if reason.startswith(prefix)), None)
            out[name] = float(re.findall(r"[+-]\d+\.\d\d", reason)[-1])
    return out


def test_factors_are_the_points_the_reasons_state(model):
    import json
    from pathlib import Path

    rows = [json.loads(line) for line in (Path(__file__).parent / "data" / "helpdesk_labelled.jsonl").read_text().splitlines()]
    rows += [{"text": "Which is NOT prime?\nA. 2\nB. 3\nC. 4\nD. 5", "user_role": "intern", "history": 14},
             {"text": "all prod down. payments failing everywhere, customers furious, urgent!!! " * 4, "agent_type": "faq"}]
    assert len(rows) > 100
    for row in rows:
        a = model.analyze(row["text"], user_role=row.get("user_role"), history_turns=row.get("history") or 0,
                          agent_type=row.get("agent_type"))
        assert {k: round(v, 2) for k, v in a.factors.items()} == pytest.approx(_factors_read_back(a.reasons), abs=0.006)
        assert sum(v for k, v in a.factors.items() if k not in ("heuristic_score",) and not k.startswith("level_")) == \
            pytest.approx(a.score, abs=0.001)
        assert a.tokens == words(row["text"])


@pytest.mark.parametrize("text", [
    "Post-mortem: what's the RCA for ticket #4821 (prod_db) at 5%?", "  tabs\tand\nnew lines  ", "", "!!!",
    "Ünïcode café naïve İstanbul 42", "under_score and 3.14 and x=y+z", "ǅemal ﬁnance Ⅻ",
])
def test_the_ascii_shortcut_finds_the_words_the_regex_finds(model, text):
    assert list(model.analyze(text).tokens) == words(text)


@pytest.mark.parametrize("text", ["What? Why? How?", "Really??? And then?", "none here", "??", "a ? b ?? c ? d"])
def test_questions_count_runs_of_question_marks(model, text):
    runs = len(re.findall(r"\?+", text))
    analysis = model.analyze(text)
    assert ("questions" in analysis.factors) == (runs > 1)
    if runs > 1:
        assert any(reason.startswith(f"{runs} questions") for reason in analysis.reasons)
