"""`modelyard train-scorer`, `cascade-score`, `eval-cascade --offline` and `bench scorer` on files (no server):
training end to end on a labelled file the test writes (scikit-learn), and the offline tools running exactly
the worker's judging code."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from modelyard_core.bus import Bus
from modelyard_core.pricing import load_pricing
from modelyard_events import CASCADE_THRESHOLDS, RoutingPreference
from modelyard_inference.answers import Model, default_model, score
from modelyard_inference.answers.features import INDEX
from modelyard_inference.backend import Completion
from modelyard_inference.settings import InferenceSettings
from modelyard_inference.worker import Worker
from typer.testing import CliRunner

from modelyard.cascade.data import GSM8K_DEV, read
from modelyard.cascade.report import every_nth
from modelyard.cli import _register_tool_commands, app

_register_tool_commands()
runner = CliRunner()


def invoke(*args: str, stdin: str | None = None):
    return runner.invoke(app, list(args), input=stdin)


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def labelled_rows(n: int = 120, seed: int = 3) -> list[dict]:
    """Word problems whose wrong answers give themselves away by prose and a fractional final answer."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b, c = rng.randint(5, 60), rng.randint(2, 9), rng.randint(2, 9)
        # liters, not apples: a fractional count of apples would be a hard finding, left out of the fit
        query = f"Ann has {a} liters of juice. She gives {b} to Bob and {c} to Cy. How many liters does she keep?"
        total = a - b - c
        if i % 3 == 0:  # wrong: argues, then a fractional answer
            response = (f"Since she gives some away, she does not keep {a}. Therefore {a} - {b} = {a - b}, "
                        f"which means about half is left: {a - b} / 2 = {(a - b) / 2}.\n#### {(a - b) / 2}")
            correct = False
        else:
            response = f"She keeps {a} - {b} - {c} = <<{a}-{b}-{c}={total}>>{total} liters.\n#### {total}"
            correct = i % 10 != 1  # some right-looking answers are wrong: separable data would not converge
        rows.append({"query": query, "response": response, "correct": correct, "large_correct": True,
                     "large_response": f"She keeps {a} - {b} - {c} = {total} liters."})
    return rows


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in labelled_rows()), encoding="utf-8")
    return path


def test_train_scorer_writes_a_model_that_learns_the_signal_and_keeps_priors(tmp_path, data_file) -> None:
    out = tmp_path / "model.json"
    result = invoke("train-scorer", "--data", str(data_file), "--out", str(out), "--max-cost", "0")
    assert result.exit_code == 0, result.output
    assert last_json(result.output)["auroc_wrong"] > 0.8  # a tenth of the right-looking answers are labelled wrong
    model = Model.load(out)
    by_name = {f["name"]: f for f in model.data["features"]}
    assert by_name["a_final_not_integer"]["source"] == "learned" and by_name["a_final_not_integer"]["weight"] > 0
    assert by_name["hedged"]["source"] == "prior" and by_name["hedged"]["weight"] == 2.5
    assert model.data["training"]["rows"] == 120 and model.data["training"]["data"][0]["which"] == "all"
    assert model.data["training"]["command"].startswith("modelyard train-scorer --data")
    wrong, right = labelled_rows(3, seed=99)[0], labelled_rows(3, seed=99)[1]
    assert score(wrong["query"], wrong["response"], model=model).escalate()
    assert not score(right["query"], right["response"], model=model).escalate()
    assert model.weights[INDEX["is_math"]] != 0


def test_train_scorer_reads_the_csv_format_with_chosen_columns_and_several_files(tmp_path, data_file) -> None:
    rows = labelled_rows(60, seed=5)
    lines = ["q,ok,big_ok,answer,big\n"] + [
        f'"{r["query"]}",{r["correct"]},True,"{r["response"]}","{r["large_response"]}"\n' for r in rows]
    csv_file = tmp_path / "more.csv"
    csv_file.write_text("".join(lines), encoding="utf-8")
    out = tmp_path / "model.json"
    args = ["train-scorer", "--data", str(data_file), str(csv_file), "--out", str(out), "--prompt-column", "q",
            "--small-model", "ok", "--response-column", "answer", "--large-model", "big_ok", "--max-cost", "0.9"]
    result = invoke(*args)
    assert result.exit_code == 2 and "no column 'big_ok_response'" in result.output  # the default name is not there
    result = invoke(*args, "--large-response-column", "big")
    assert result.exit_code == 0, result.output
    training = Model.load(out).data["training"]
    assert training["rows"] == 180 and [d["rows"] for d in training["data"]] == [120, 60]
    assert "--large-response-column big" in training["command"]


def test_train_scorer_prices_escalations_when_the_large_answers_are_there(tmp_path, data_file) -> None:
    out = tmp_path / "model.json"
    result = invoke("train-scorer", "--data", str(data_file), "--out", str(out), "--max-cost", "0.9")
    assert result.exit_code == 0, result.output
    calibration = Model.load(out).data["calibration"]
    assert calibration["max_cost"] == 0.9 and calibration["cv_at_neutral_threshold"]["cost"] <= 0.9


def test_train_scorer_refuses_data_it_cannot_learn_from(tmp_path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"query": "q", "response": "r", "correct": True}) + "\n", encoding="utf-8")
    result = invoke("train-scorer", "--data", str(path), "--out", str(tmp_path / "m.json"))
    assert result.exit_code == 2 and "at least 10 rows" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "response": "r"}\n', encoding="utf-8")
    result = invoke("train-scorer", "--data", str(bad), "--out", str(tmp_path / "m.json"))
    assert result.exit_code == 2 and "line 1: 'correct' is missing" in result.output


def test_cascade_score_reads_json_lines_reports_bad_lines_and_keeps_going(tmp_path) -> None:
    lines = [json.dumps({"id": "a", "query": "How do I reset my password?", "response": "Open settings and choose reset."}),
             "{not json", json.dumps({"query": "q", "response": "r", "logprobs": [0.5]}),
             json.dumps({"query": "How do I reset my password?", "response": "", "finish_reason": "stop"}),
             "", json.dumps({"query": "q", "samples": []})]
    result = invoke("cascade-score", stdin="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    out = [json.loads(x) for x in result.output.splitlines()]
    assert out[0]["id"] == "a" and out[0]["escalate"] is False and out[0]["confidence"] >= 0.6
    assert set(out[0]) == {"id", "confidence", "escalate", "reasons", "p_wrong", "hard"}
    assert out[1]["line"] == 2 and "not JSON" in out[1]["error"] and "<= 0" in out[2]["error"]
    assert out[3]["escalate"] is True and out[3]["hard"] is True and out[3]["reasons"] == ["empty: empty answer [hard]"]
    assert out[4]["line"] == 6 and "'samples' must be a non-empty list" in out[4]["error"]


def test_cascade_score_judges_samples_and_uses_the_threshold_and_scorer_given(tmp_path) -> None:
    query = "Ann has 20 liters of juice. She gives 3 to Bob and 4 to Cy. How many liters does she keep?"
    right = "She keeps 20 - 3 - 4 = 13 liters.\n#### 13"
    split = {"query": query, "samples": [{"response": right}, {"response": right},
                                         {"response": "She keeps 20 - 3 = 17 liters.\n#### 17"}]}
    out = last_json(invoke("cascade-score", "--threshold", "0.1", stdin=json.dumps(split) + "\n").output)
    assert out["chosen"] in (0, 1) and out["agreement"] == pytest.approx(2 / 3, abs=1e-3) and out["escalate"] is False
    assert any(r.startswith("self_consistency: 2 of 3 agree") for r in out["reasons"])
    always = json.loads(json.dumps(default_model().data))
    always["intercept"] = 8.0
    for f in always["features"]:
        f["weight"] = 0.0
    path = tmp_path / "m.json"
    path.write_text(json.dumps(always))
    pessimist = last_json(invoke("cascade-score", "--scorer", str(path), stdin=json.dumps({"query": query, "response": right})).output)
    assert pessimist["p_wrong"] > 0.99 and pessimist["escalate"] is True and pessimist["hard"] is False
    assert invoke("cascade-score", "--threshold", "1.5", stdin="").exit_code == 2


def test_cascade_score_gives_the_worker_s_verdicts_on_recorded_answers() -> None:
    """Offline and online agree: the CLI's output and the inference worker's judgement of the same answers."""
    examples = every_nth(read(GSM8K_DEV), 40)
    lines = "".join(json.dumps({"id": e.row, "query": e.query, "response": e.response}) + "\n" for e in examples)
    offline = [json.loads(x) for x in invoke("cascade-score", stdin=lines).output.splitlines()]
    settings = InferenceSettings(_env_file=None)
    worker = Worker(settings, Bus(settings, "inference"), backend=None, pricing=load_pricing())  # judging only
    from modelyard_events import ComplexityLevel, ModelClass, QueryRequest, QueryRouted, RoutingDecision, utcnow

    assert len(offline) == len(examples) >= 39
    for e, line in zip(examples, offline, strict=True):
        routed = QueryRouted(tenant_id="t", query_id=str(e.row), request=QueryRequest(text=e.query),
                             decision=RoutingDecision(complexity=ComplexityLevel.SIMPLE, score=0, model_class=ModelClass.SLM,
                                                      model="gpt-4o-mini"), submitted_at=utcnow())
        online = worker.judge(routed, Completion(e.response, None, 0, 0, None, 0.0)).score
        assert (line["id"], line["confidence"], line["p_wrong"], line["hard"], line["reasons"]) == (
            e.row, online.confidence, online.p_wrong, online.hard, online.reasons)
        assert line["escalate"] == online.escalate(0.6)
    assert any(x["escalate"] for x in offline) and not all(x["escalate"] for x in offline)


def test_eval_cascade_offline_prints_a_table_per_policy_and_json_last() -> None:
    result = invoke("eval-cascade", "--offline", "--data", str(GSM8K_DEV), "--sample", "66")
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["mode"] == "offline" and summary["questions"] == 66 and summary["of"] == 660
    assert set(summary["policies"]) == {"cost", "balanced", "quality"}
    for name, row in summary["policies"].items():
        assert row["threshold"] == CASCADE_THRESHOLDS[RoutingPreference(name)]
        assert any(line.startswith(f"tenant: {name}") for line in lines)
    cost, quality = summary["policies"]["cost"], summary["policies"]["quality"]
    assert cost["cost"] <= summary["policies"]["balanced"]["cost"] <= quality["cost"]
    assert summary["references"]["never_escalate"]["quality"] < quality["quality"]
    assert summary["references"]["large_only"]["quality"] == 1.0


def test_eval_cascade_refuses_a_file_without_large_answers(tmp_path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"query": "q", "response": "r", "correct": True}) + "\n")
    result = invoke("eval-cascade", "--offline", "--data", str(path))
    assert result.exit_code == 2 and "large model's answers" in result.output


def test_bench_scorer_reports_latency_percentiles_as_json(tmp_path, data_file) -> None:
    result = invoke("bench", "scorer", "--data", str(data_file), "--repeat", "1")
    report = last_json(result.output)
    assert report["answers"] == 120 and 0 < report["cpu_p50_us"] <= report["cpu_p99_us"]
    assert 0 < report["p50_us"] <= report["p99_us"]
