"""`modelyard train-router`, `eval-router` (a model on its untrained groups, group k-fold, --online, the keyword
reference) and `classify --router-model`: their interfaces, JSON last lines and errors."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from modelyard_learn import modelfile
from typer.testing import CliRunner

from modelyard import learning
from modelyard.cli import _register_tool_commands, app
from modelyard.commands_learn import LARGE_COLUMN, SMALL_COLUMN

_register_tool_commands()
runner = CliRunner()


def run(*args: str, stdin: str | None = None):
    result = runner.invoke(app, list(args), input=stdin)
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    return result, json.loads(last) if last.startswith("{") else None


def mmlu_like(folder: Path, subjects=("algebra", "history", "law", "physics"), n=120) -> Path:
    """A folder in the shared data's format: one CSV per subject; 'prove' questions defeat the small model."""
    folder.mkdir()
    rng = random.Random(0)
    for s, subject in enumerate(subjects):
        lines = [f"prompt,{SMALL_COLUMN},{LARGE_COLUMN}"]
        for i in range(n):
            hard = rng.random() < 0.25 + 0.1 * s
            lines.append(f"{'prove the lemma' if hard else 'name the year'} {subject} {i},{not hard},{hard or rng.random() < 0.9}")
        (folder / f"mmlu_{subject}.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_train_router_then_eval_router_on_the_groups_the_model_never_saw(tmp_path):
    data, model = mmlu_like(tmp_path / "d"), tmp_path / "m.json"
    result, trained = run("train-router", "--data", str(data), "--out", str(model), "--held-out-groups", "law")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert trained["training"]["groups"] == ["algebra", "history", "physics"] and trained["training"]["rows"] == 360
    assert trained["metrics"]["held_out"]["groups"] == ["law"] and trained["metrics"]["held_out"]["correctness"]["apgr"] > 0.7
    assert set(trained["routing"]["thresholds"]) == {"quality", "balanced", "cost"}
    assert "train-router" in result.stderr  # the table

    result, out = run("eval-router", "--data", str(data), "--router-model", str(model))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert out["groups_evaluated"] == ["law"] and out["rows_skipped_trained_groups"] == 360 and out["rows_evaluated"] == 120
    assert out["learned"]["correctness"]["apgr"] == trained["metrics"]["held_out"]["correctness"]["apgr"]
    assert set(out["learned"]["correctness"]["savings_at_quality"]) == {"0.80", "0.90", "0.95"}
    assert {"keyword_score", "prompt_length", "random"} <= set(out["references"])
    assert 0.3 < out["references"]["random"]["apgr_mean"] < 0.7 and out["references"]["random"]["apgr_stdev"] > 0
    assert "savings @80%" in result.stderr

    only_trained = tmp_path / "d" / "mmlu_algebra.csv"
    result, err = run("eval-router", "--data", str(only_trained), "--router-model", str(model))
    assert result.exit_code == 2 and "was trained on" in err["error"]


def test_eval_router_without_a_model_is_group_k_fold_with_the_keyword_reference(tmp_path):
    data = mmlu_like(tmp_path / "d")
    result, out = run("eval-router", "--data", str(data), "--folds", "2")
    assert result.exit_code == 0, result.stdout + result.stderr
    folds = out["learned"]["per_fold"]
    assert len(folds) == 2 and sorted(g for f in folds for g in f["groups"]) == ["algebra", "history", "law", "physics"]
    assert out["learned"]["apgr_mean_of_folds"] > 0.6 and out["references"]["keyword_score"]["rows"] == 480


def test_eval_router_reference_only_is_the_keyword_router_apgr(tmp_path):
    result, out = run("eval-router", "--data", str(mmlu_like(tmp_path / "d")), "--reference-only", "--seed", "1")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert out["rows"] == 480 and {"apgr_score", "apgr_random_mean", "apgr_length_only", "default_policy"} <= set(out)


def test_eval_router_online_prints_both_halves_and_is_seeded(tmp_path):
    data = mmlu_like(tmp_path / "d")
    result, out = run("eval-router", "--online", "--data", str(data), "--seed", "3")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert out["rows"] == 480 and out["seed"] == 3 and {"apgr_first_half", "apgr_last_half"} <= set(out)
    assert out == run("eval-router", "--online", "--data", str(data), "--seed", "3")[1]
    assert out != run("eval-router", "--online", "--data", str(data), "--seed", "4")[1]


def test_eval_router_online_from_a_model_file_learns_what_its_unseen_groups_need(tmp_path):
    """A subject the file never saw, whose hard questions use words it never saw: the file alone ranks that
    subject by chance; its learning copy, fed the outcomes production would reveal, learns the new words."""
    data, model = mmlu_like(tmp_path / "d", subjects=("algebra", "history", "physics")), tmp_path / "m.json"
    result, _ = run("train-router", "--data", str(data), "--out", str(model))
    assert result.exit_code == 0, result.stdout + result.stderr
    rng = random.Random(1)
    lines = [f"prompt,{SMALL_COLUMN},{LARGE_COLUMN}"]
    for i in range(600):
        hard = rng.random() < 0.3
        lines.append(f"{'quash the writ' if hard else 'cite the writ'} law {i},{not hard},True")
    (data / "mmlu_law.csv").write_text("\n".join(lines) + "\n")

    result, out = run("eval-router", "--online", "--router-model", str(model), "--data", str(data), "--seed", "2")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert out["groups_evaluated"] == ["law"] and out["rows"] == 600 and out["rows_skipped_trained_groups"] == 360
    assert out["learner"]["applied"] > 0 and "first_half, file alone" in result.stderr
    static = out["static_model"]
    assert static["apgr_last_half"] < 0.65  # the file cannot tell "quash" from "cite"
    assert out["apgr_last_half"] > static["apgr_last_half"] + 0.2


def test_bad_data_is_a_json_error_naming_the_line(tmp_path):
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"text": "hi", "level": "simple"}\n{"text": "hi"}\n')
    for args in (["eval-router", "--online", "--data", str(bad)], ["train-router", "--data", str(bad), "--out", str(tmp_path / "m")]):
        result, out = run(*args)
        assert result.exit_code == 2 and "x.jsonl:2" in out["error"]


def test_jsonl_with_levels_and_context_trains_the_helpdesk_recipe(tmp_path):
    rows = [json.loads(line) for line in learning.helpdesk_file("team_seed.jsonl").read_text().splitlines()]
    for i, row in enumerate(rows):
        row["style"] = f"s{i % 3}"
    data = tmp_path / "h.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    result, out = run("train-router", "--recipe", "helpdesk", "--data", str(data), "--out", str(tmp_path / "h.json"))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert out["training"]["groups"] == ["s0", "s1", "s2"] and out["training"]["recipe"] == "helpdesk"
    assert out["metrics"]["tuning"]["leave_one_group_out"]["balanced"]["complex_critical_reach_llm"] >= 0.97


def test_classify_with_a_router_model_scores_and_explains_without_one_it_is_unchanged():
    lines = "\n".join(json.dumps(o) for o in (
        {"text": "What is the status of ticket 4411?"},
        {"text": "Someone got into our payment database and card data may be exposed, what do we owe regulators?"}))
    plain, _ = run("classify", stdin=lines)
    learned, _ = run("classify", "--router-model", "helpdesk", stdin=lines)
    assert plain.exit_code == learned.exit_code == 0
    before = [json.loads(line) for line in plain.stdout.splitlines()]
    after = [json.loads(line) for line in learned.stdout.splitlines()]
    assert "router_model" not in before[0] and after[0]["router_model"].startswith("helpdesk@")
    assert [d["model_class"] for d in after] == ["slm", "llm_plus"]
    assert 0 <= after[1]["score"] <= 1 and after[1]["score"] > after[0]["score"]
    assert any(r.startswith("learned router helpdesk@") for r in after[1]["reasons"])
    assert any(r.startswith("moved P(small fails) most") for r in after[1]["reasons"])
    bad, _ = run("classify", "--router-model", "/nonexistent.json", stdin=lines)
    assert bad.exit_code == 2 and "cannot read the router model" in re.sub(r"[\s│]+", " ", bad.stderr)


@pytest.mark.parametrize("name", ["helpdesk", "mmlu"])
def test_the_shipped_models_name_their_data_groups_and_thresholds(name):
    from modelyard_router.learned import builtin_path

    model, doc = modelfile.load(builtin_path(name))
    t = doc["routing"]["thresholds"]
    assert t["quality"] < t["balanced"] < t["cost"]
    assert len(doc["training"]["data_digest"]) == 64 and doc["training"]["recipe"] == name
    held = doc["metrics"]["held_out"]
    assert not set(held["groups"]) & set(doc["training"]["groups"])
    if name == "mmlu":
        assert sorted(held["groups"]) == sorted(learning.mmlu_held_out_subjects())
    else:
        assert sorted(Path(s).name for s in doc["training"]["sources"]) == sorted(learning.HELPDESK_TUNING)
        assert sorted(Path(s).name for s in doc["training"]["held_out_sources"]) == sorted(learning.HELPDESK_HELD_OUT)


def test_the_shipped_helpdesk_model_is_what_its_recipe_trains_from_the_files_in_the_repository():
    """Reproducible: the final fit of the helpdesk recipe on the shipped tuning files gives the shipped weights
    (the thresholds' leave-one-group-out search is not re-run here: `make router-models` does it)."""
    from modelyard_learn.recipes import RECIPES
    from modelyard_router.learned import builtin_path

    _, doc = modelfile.load(builtin_path("helpdesk"))
    rows = learning.read([learning.helpdesk_file(f) for f in learning.HELPDESK_TUNING],
                         small_column=SMALL_COLUMN, large_column=LARGE_COLUMN, group_by=learning.HELPDESK_GROUP_BY)
    assert doc["training"]["group_by"] == learning.HELPDESK_GROUP_BY
    assert modelfile.data_digest(rows) == doc["training"]["data_digest"]
    model, _ = RECIPES["helpdesk"].fit(rows, seed=doc["training"]["seed"])
    assert modelfile.to_json(model)["heads"] == doc["heads"]


def test_eval_router_folds_leave_excluded_groups_untouched(tmp_path):
    data = mmlu_like(tmp_path / "d", subjects=("algebra", "history", "law", "physics", "chemistry"))
    result, out = run("eval-router", "--data", str(data), "--folds", "2", "--exclude-groups", "law")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert out["excluded_groups"] == ["law"] and out["rows"] == 480
    assert "law" not in {g for f in out["learned"]["per_fold"] for g in f["groups"]}
    result, out = run("eval-router", "--data", str(data), "--exclude-groups", "nope")
    assert result.exit_code == 2 and "nope" in out["error"]
