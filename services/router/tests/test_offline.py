"""Offline tools: classify lines, APGR, the labelled helpdesk set."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest
from modelyard_core.pricing import load_pricing
from modelyard_router.decision import decide
from modelyard_router.offline import (
    apgr,
    classify_lines,
    eval_router,
    pgr_curve,
    request_from_json,
)

DATA = Path(__file__).parent / "data"
LEVELS = ("simple", "moderate", "complex", "critical")


@pytest.fixture(scope="module")
def pricing():
    return load_pricing()


def classify(objs, pricing) -> list[dict]:
    lines = [o if isinstance(o, str) else json.dumps(o) for o in objs]
    return [json.loads(line) for line in classify_lines(lines, pricing)]


# --- classify -------------------------------------------------------------------------------------


def test_classify_writes_one_line_per_input_with_the_decision_fields(pricing):
    out = classify(
        [
            {"text": "What is the status of ticket #123?"},
            {"text": "Design disaster recovery plan", "user_role": "cto"},
        ],
        pricing,
    )
    assert [o["complexity"] for o in out] == ["simple", "critical"]
    assert [o["model_class"] for o in out] == ["slm", "llm_plus"]
    assert [o["model"] for o in out] == ["gpt-4o-mini", "gpt-4-turbo"]
    for o in out:
        assert set(o) == {"complexity", "model_class", "model", "score", "reasons"}
        assert isinstance(o["score"], float) and o["reasons"]
    assert out[1]["score"] > out[0]["score"]


def test_classify_reports_bad_lines_and_keeps_going(pricing):
    out = classify(
        [
            "not json",
            {"no_text": 1},
            {"text": ""},
            {"text": "hello", "industry": "space"},
            {"text": "hello", "history": "three"},
            "[1, 2]",
            "",
            {"text": "What is the status of ticket #123?"},
        ],
        pricing,
    )
    assert len(out) == 7  # the blank line is not an input
    assert all("error" in o and o["error"].startswith("line ") for o in out[:6])
    assert out[0]["error"].startswith("line 1:") and out[5]["error"].startswith("line 6:")
    assert out[6]["complexity"] == "simple"


def test_classify_industry_builds_a_tenant_with_the_preset(pricing):
    text = "How do I configure the VPN client and install the certificate on my laptop?"
    plain, finance, tech = classify([{"text": text}, {"text": text, "industry": "finance"}, {"text": text, "industry": "tech"}], pricing)
    assert plain["score"] == finance["score"] == tech["score"]
    assert (plain["model_class"], finance["model_class"], tech["model_class"]) == ("slm", "llm", "slm")


def test_classify_tier_caps_the_class(pricing):
    (basic,) = classify([{"text": "Design disaster recovery plan", "tier": "basic"}], pricing)
    assert basic["model_class"] == "llm"


@pytest.mark.parametrize(
    "history",
    [8, ["a", "b", "c", "d", "e", "f", "g", "h"], [{"role": "user", "content": "x"}] * 4 + [{"role": "agent", "content": "y"}] * 4],
)
def test_classify_accepts_history_as_count_strings_or_messages(pricing, history):
    text = "Can you look at the slow reports again"
    without, with_history = classify([{"text": text}, {"text": text, "history": history}], pricing)
    assert with_history["score"] > without["score"]
    assert any("history 8 turns" in r for r in with_history["reasons"])


def test_classify_keeps_only_the_last_100_turns(pricing):
    (o,) = classify([{"text": "hello", "history": 500}], pricing)
    assert any("history 100 turns" in r for r in o["reasons"])


def test_classify_uses_the_service_decision(pricing):
    obj = {"text": "Investigate the search page", "industry": "tech", "user_role": "engineer", "history": 3}
    (o,) = classify([obj], pricing)
    request, tenant = request_from_json(obj)
    d = decide(request, tenant, pricing)
    assert o == {"complexity": d.complexity.value, "model_class": d.model_class.value, "model": d.model, "score": d.score, "reasons": d.reasons}


# --- the labelled helpdesk set --------------------------------------------------------------------


def test_labelled_helpdesk_set_accuracy(pricing):
    rows = [json.loads(line) for line in (DATA / "helpdesk_labelled.jsonl").read_text().splitlines() if line.strip()]
    assert len(rows) >= 100
    assert set(Counter(r["level"] for r in rows)) == set(LEVELS)
    total, right = Counter(), Counter()
    held_total = held_right = 0
    misses = []
    for i, row in enumerate(rows):
        request, tenant = request_from_json(row)
        got = decide(request, tenant, pricing).complexity.value
        total[row["level"]] += 1
        right[row["level"]] += got == row["level"]
        if i % 2:  # odd lines were not used for tuning
            held_total += 1
            held_right += got == row["level"]
        if got != row["level"]:
            misses.append(f"{row['level']} -> {got}: {row['text'][:60]}")
    per_level = {level: right[level] / total[level] for level in LEVELS}
    overall = sum(right.values()) / len(rows)
    held_out = held_right / held_total
    report = (
        f"overall {overall:.3f} ({sum(right.values())}/{len(rows)}), held-out half {held_out:.3f}; "
        + ", ".join(f"{lv} {per_level[lv]:.3f} ({right[lv]}/{total[lv]})" for lv in LEVELS)
    )
    print("\nlabelled helpdesk set:", report, *misses, sep="\n  ")
    assert overall >= 0.80, report
    assert all(acc >= 0.70 for acc in per_level.values()), report
    assert held_out >= 0.75, report


# --- APGR -----------------------------------------------------------------------------------------


def test_pgr_curve_and_apgr_on_a_hand_worked_example():
    # Row 0: only the large model is right (gain 1). Row 1: both right (gain 0). Gap = 1.
    small, large = [False, True], [True, True]
    assert pgr_curve([1.0, 0.0], small, large) == [0.0, 1.0, 1.0]
    assert apgr([0.0, 1.0, 1.0]) == pytest.approx(0.75)
    assert apgr(pgr_curve([0.0, 1.0], small, large)) == pytest.approx(0.25)
    # Equal scores: the expected gain of a random order, so a constant score is exactly 0.5.
    assert apgr(pgr_curve([3.0, 3.0], small, large)) == pytest.approx(0.5)


def test_apgr_of_a_constant_score_is_one_half_on_any_data():
    small = [True, False, False, True, False, True]
    large = [True, True, False, True, True, False]
    assert apgr(pgr_curve([0.0] * 6, small, large)) == pytest.approx(0.5)
    perfect = [int(g) - int(s) for s, g in zip(small, large)]
    assert apgr(pgr_curve(perfect, small, large)) > 0.5 > apgr(pgr_curve([-p for p in perfect], small, large))


def test_pgr_curve_refuses_data_where_the_large_model_is_not_better():
    with pytest.raises(ValueError):
        pgr_curve([1.0, 0.0], [True, True], [True, False])


def _write_mmlu(folder: Path, rows: list[tuple[str, bool, bool]]) -> None:
    with (folder / "mmlu_made_up.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"])
        for prompt, s, g in rows:
            w.writerow([prompt, str(s), str(g)])


def test_eval_router_reads_the_format_and_reports_the_figures(tmp_path):
    # Made-up rows: the hard-looking prompts are the ones only the large model gets right.
    rows = [
        ("What is 2 plus 2?\nA. 3\nB. 4\nAnswer:", True, True),
        ("Name the capital of France.\nA. Paris\nB. Rome\nAnswer:", True, True),
        ("Analyze the root cause and the strategy behind the failure of the design.\nA. x\nB. y\nAnswer:", False, True),
        ("Evaluate the trade-offs and derive the proof.\nA. x\nB. y\nAnswer:", False, True),
        ("Which colour is the sky?\nA. blue\nB. red\nAnswer:", False, False),
        ("Which planet is the largest?\nA. Jupiter\nB. Mars\nAnswer:", True, False),
    ]
    _write_mmlu(tmp_path, rows)
    report = eval_router(tmp_path, seed=1, random_runs=5)
    assert report["rows"] == 6
    assert report["small_accuracy"] == pytest.approx(3 / 6, abs=1e-4)
    assert report["large_accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    assert report["apgr_score"] > report["apgr_random_mean"] - 0.5  # a number, computed
    assert report["apgr_score"] > 0.5  # the hard-looking rows rank first on this made-up data
    assert set(report["score_curve"]["pgr_at_strong_share"]) == {f"0.{i}" for i in range(1, 10)}
    assert report["default_policy"]["strong_share"] == pytest.approx(2 / 6, abs=1e-4)


def test_eval_router_needs_csv_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        eval_router(tmp_path)
