"""Each verifier on its own: named findings with a hard or soft severity (pure logic)."""

import pytest

from modelyard_inference.answers.analysis import Analysis
from modelyard_inference.answers.verifiers import HARD, SOFT, Call, run

MATH_Q = "Janet has 16 eggs. She eats 3 and bakes with 4. How many eggs does she sell?"


def findings(query: str, response: str, **call) -> list[tuple[str, str]]:
    return [(f.verifier, f.severity) for f in run(Analysis(query, response), Call(**call))]


def test_a_clean_worked_answer_has_no_findings() -> None:
    assert findings(MATH_Q, "She sells 16 - 3 - 4 = <<16-3-4=9>>9 eggs.\n#### 9") == []


@pytest.mark.parametrize(
    "response",
    [
        "She has 16 - 3 = <<16-3=13>>13 eggs, then 13 - 4 = <<13-",  # inside a calculation
        "The value is 80,000 + 50,000 = $130,00",  # inside a number
        "She sells 3 + 3 + ",  # after an operator
        "She then sells 13 - 4 = <<13-4=9>>",
    ],
)
def test_visibly_cut_answers_are_hard_truncation(response: str) -> None:
    assert ("truncation", HARD) in findings(MATH_Q, response)


def test_finish_reasons() -> None:
    done = "She sells 9 eggs.\n#### 9"
    assert ("truncation", HARD) in findings(MATH_Q, done, finish_reason="length")
    assert ("content_filter", HARD) in findings(MATH_Q, done, finish_reason="content_filter")
    assert findings(MATH_Q, done, finish_reason="stop") == []


def test_wrong_arithmetic_is_hard_and_named_with_the_right_value() -> None:
    [finding] = run(Analysis(MATH_Q, "She sells 16 - 3 - 4 = 8 eggs.\n#### 8"))
    assert finding.verifier == "arithmetic" and finding.severity == HARD
    assert "16 - 3 - 4 = 8" in finding.detail and "is 9" in finding.detail


@pytest.mark.parametrize(
    ("response", "detail"),
    [
        ("She sells 16 - 3 - 4 = 9 eggs, so 9 / 2 = 4.5 boxes.\n#### 4.5", "not a whole number"),
        ("She sells 3 - 4 = -1 eggs.\n#### -1", "negative count"),
        ("She sells some eggs.\n####", "no final number"),
        ("She sells the rest of the eggs at the market.", "no number in the answer"),
    ],
)
def test_final_answer_must_fit_the_question(response: str, detail: str) -> None:
    found = [f for f in run(Analysis(MATH_Q, response)) if f.verifier == "final_answer"]
    assert found and found[0].severity == HARD and detail in found[0].detail


def test_a_measure_may_be_fractional() -> None:
    query = "John walks 3 miles at 2 miles per hour. How many hours does he walk?"
    assert findings(query, "He walks 3 / 2 = 1.5 hours.\n#### 1.5") == []


MCQ = "Which layer routes packets between networks?\nA. Physical\nB. Data link\nC. Network\nD. Transport\nAnswer:"


@pytest.mark.parametrize(("response", "ok"), [("C", True), ("The answer is (C).", True), ("E", False), ("Routing.", False)])
def test_multiple_choice_answer_must_be_an_option(response: str, ok: bool) -> None:
    assert (("final_answer", HARD) not in findings(MCQ, response)) is ok


SCHEMA = {"type": "json_schema", "json_schema": {"name": "t", "schema": {
    "type": "object", "properties": {"ticket": {"type": "integer"}, "status": {"enum": ["open", "closed"]}},
    "required": ["ticket", "status"], "additionalProperties": False}}}


@pytest.mark.parametrize(
    ("response", "fmt", "detail"),
    [
        ('{"ticket": 12, "status": "open"', {"type": "json_object"}, "does not parse"),
        ("[1, 2]", {"type": "json_object"}, "not an object"),
        ('{"ticket": "12", "status": "open"}', SCHEMA, "at ticket"),
        ('{"ticket": 12}', SCHEMA, "'status' is a required property"),
        ('{"ticket": 12, "status": "lost"}', SCHEMA, "at status"),
    ],
)
def test_json_that_does_not_parse_or_fit_the_schema_is_hard(response: str, fmt: dict, detail: str) -> None:
    found = run(Analysis("Ticket 12 status as JSON", response), Call(response_format=fmt))
    [finding] = [f for f in found if f.verifier == "json"]
    assert finding.verifier == "json" and finding.severity == HARD and detail in finding.detail


def test_json_that_fits_passes_even_in_a_code_fence() -> None:
    for text in ('{"ticket": 12, "status": "open"}', '```json\n{"ticket": 12, "status": "open"}\n```'):
        assert findings("Ticket 12 status as JSON", text, response_format=SCHEMA) == []
    assert findings("Ticket 12 status", "not json at all") == []  # no response_format: not checked


HELP_Q = "How do I configure the VPN client on the Windows laptops of the sales team?"


def test_helpdesk_signals() -> None:
    assert findings(HELP_Q, "") == [("empty", HARD)]
    assert ("refusal", HARD) in findings(HELP_Q, "I'm sorry, but I can't help with that.")
    assert ("hedging", SOFT) in findings(HELP_Q, "I'm not sure, but install the VPN client.")
    assert ("off_topic", SOFT) in findings(HELP_Q, "Bananas are rich in potassium.")
    long_q = HELP_Q + " We tried reinstalling, rebooting and resetting the profile twice already, with no luck."
    assert ("too_short", SOFT) in findings(long_q, "Reinstall it.")
    assert findings(HELP_Q, "Install the Windows VPN client package and import the sales team profile.") == []
