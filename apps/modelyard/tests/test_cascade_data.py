"""Readers of RouteLLM's CSV and JSON lines, and the quality/cost rule (small files written by the tests)."""

import json

import pytest

from modelyard.cascade.data import load_examples, read, read_csv, read_jsonl
from modelyard.cascade.evaluate import auroc, bootstrap, cascade, precision_recall

HEADER = "prompt,small,large,small_response,large_response\n"


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_columns_are_chosen_by_flags(tmp_path) -> None:
    f = write(tmp_path / "d.csv", HEADER + 'What is 2+2?,True,False,"It is 4.",It is 5.\nAnd 3+3?,false,1,six,6\n')
    rows = read_csv(f, small_model="small", large_model="large")
    assert [(r.query, r.correct, r.large_correct, r.response) for r in rows] == [
        ("What is 2+2?", True, False, "It is 4."), ("And 3+3?", False, True, "six")]
    assert rows[1].row == 1 and rows[1].large_response == "6"
    swapped = read_csv(f, small_model="x", large_model=None, correct_column="large", response_column="large_response")
    assert [r.correct for r in swapped] == [False, True] and swapped[0].large_correct is None


def test_csv_errors_name_the_column_and_row(tmp_path) -> None:
    f = write(tmp_path / "d.csv", HEADER + "q,maybe,True,a,b\n")
    with pytest.raises(ValueError, match=r"row 2, column 'small'"):
        read_csv(f, small_model="small", large_model="large")
    with pytest.raises(ValueError, match="no column 'nope'"):
        read_csv(f, small_model="nope", large_model=None)


def test_jsonl_reads_labels_logprobs_and_finish_reason(tmp_path) -> None:
    lines = [
        {"query": "q", "response": "r", "correct": True, "logprobs": [-0.1, -0.2], "finish_reason": "stop"},
        {"query": "q2", "response": "r2", "correct": "false", "logprobs": {"content": [{"token": "a", "logprob": -1.5}]}},
    ]
    f = write(tmp_path / "d.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    rows = read(f)
    assert rows[0].logprobs == (-0.1, -0.2) and rows[0].finish_reason == "stop" and rows[0].correct
    assert rows[1].logprobs == (-1.5,) and not rows[1].correct


@pytest.mark.parametrize(
    ("line", "message"),
    [("{bad", "line 1: not JSON"), ('{"query": "q", "response": "r"}', "'correct' is missing"),
     ('{"query": "q", "response": 3, "correct": true}', "'response' must be a string"),
     ('{"query": "q", "response": "r", "correct": true, "logprobs": [0.5]}', "<= 0")],
)
def test_jsonl_errors_name_the_line_and_field(tmp_path, line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_jsonl(write(tmp_path / "d.jsonl", line + "\n"))


def test_cascade_cost_and_quality_follow_the_readme_rule(tmp_path) -> None:
    # prompt 4 chars; small answers 4 chars (cost 2 units); large answers 8 chars (cost 3 x 15 = 45 units)
    f = write(tmp_path / "d.csv", HEADER + "abcd,True,True,1234,12345678\nabcd,False,True,1234,12345678\n")
    rows = read_csv(f, small_model="small", large_model="large")
    kept = cascade(rows, [False, False])
    assert kept.cost == pytest.approx(4 / 90) and kept.quality == 0.5 and kept.accuracy == 0.5
    escalated = cascade(rows, [False, True])
    assert escalated.cost == pytest.approx((2 + 2 + 45) / 90) and escalated.quality == 1.0
    routed = cascade(rows, [False, False], [False, True])
    assert routed.cost == pytest.approx((2 + 45) / 90) and routed.direct == 0.5 and routed.escalated == 0.0


def test_auroc_and_precision_recall() -> None:
    assert auroc([0.9, 0.8, 0.2, 0.1], [True, True, False, False]) == 1.0
    assert auroc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 0.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    assert precision_recall([True, True, False], [True, False, True]) == {"flagged": 2, "precision": 0.5, "recall": 0.5}


def test_an_escalated_question_that_kept_its_small_answer_pays_both_calls_and_scores_the_small_answer(tmp_path) -> None:
    # the small answer is right, the large one wrong; the second row only gives large-only accuracy a value
    f = write(tmp_path / "d.csv", HEADER + "abcd,True,False,1234,12345678\nabcd,True,True,1234,12345678\n")
    rows = read_csv(f, small_model="small", large_model="large")
    took_large = cascade(rows, [True, False])
    kept_small = cascade(rows, [True, False], None, [True, False])
    assert took_large.accuracy == 0.5 and kept_small.accuracy == 1.0
    assert took_large.cost == kept_small.cost == pytest.approx((2 + 45 + 2) / 90)


def test_bootstrap_intervals_contain_the_point_estimate_and_count_the_goal(tmp_path) -> None:
    lines = "".join(f"abcd,{i % 3 != 0},True,1234,12345678\n" for i in range(60))
    rows = read_csv(write(tmp_path / "d.csv", HEADER + lines), small_model="small", large_model="large")
    escalate = [i % 2 == 0 for i in range(60)]
    point = cascade(rows, escalate)
    result = bootstrap(rows, escalate, draws=300, goal=lambda o: o.quality >= point.quality)
    assert result["quality_90"][0] <= point.quality <= result["quality_90"][1]
    assert result["cost_90"][0] <= point.cost <= result["cost_90"][1]
    assert 0.2 < result["goal_met_share"] < 0.9 and result["size"] == 60


def test_a_split_selects_its_part_and_folds_and_refuses_another_file(tmp_path) -> None:
    f = write(tmp_path / "d.csv", HEADER + "".join(f"q{i},True,True,a,b\n" for i in range(5)))
    from modelyard.cascade.data import file_digest

    split = tmp_path / "s.json"
    split.write_text(json.dumps({"sha256": file_digest(f), "dev": [0, 2, 4], "held_out": [1, 3],
                                 "folds": {"0": 1, "2": 0, "4": 1}}))
    dev, folds, provenance = load_examples([f], split=split, part="dev", small_model="small", large_model="large")
    assert [e.query for e in dev] == ["q0", "q2", "q4"] and folds == [1, 0, 1] and provenance[0]["which"] == "s.json:dev"
    held, folds, _ = load_examples([f], split=split, part="held_out", small_model="small", large_model="large")
    assert [e.query for e in held] == ["q1", "q3"] and folds is None
    other = write(tmp_path / "e.csv", HEADER + "x,True,True,a,b\n")
    with pytest.raises(ValueError, match="not the file the split"):
        load_examples([other], split=split, small_model="small", large_model="large")
