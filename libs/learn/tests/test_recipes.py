"""Recipes: thresholds by target recall (left-out groups) or strong share, the groups in the file, group folds."""

import random
from dataclasses import replace

import pytest

from modelyard_learn import modelfile, routing
from modelyard_learn.features import FeatureSet, Query
from modelyard_learn.model import Estimate, Example
from modelyard_learn.recipes import RECIPES, Recipe, cross_validate, held_out_figures, train
from modelyard_learn.train import group_folds

FAST = dict(feature_set=FeatureSet.build(chars=None, structure=False, context=False, factors=False),
            hyper=dict(alpha=0.3, l1=0.01), epochs=3)


def levelled(n=240, seed=0, styles=("a", "b", "c", "d")):
    """Helpdesk-like rows: 'outage'/'breach' words mark complex/critical, in several writing styles (groups)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        level = rng.choice(["simple", "moderate", "complex", "critical"])
        hard = level in ("complex", "critical")
        word = rng.choice(["outage", "breach", "migrate"] if hard else ["password", "invoice", "hours"])
        style = styles[i % len(styles)]
        q = Query(f"{style} please help {word} {rng.choice(['now', 'today', ''])}", level="critical" if word == "breach" else "simple")
        out.append(Example(q, slm_ok=not hard, llm_ok=True, group=style, level=level))
    return out


def correct(n=600, seed=1):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        subject = f"s{i % 6}"
        hard = rng.random() < 0.3 + 0.08 * (i % 6)
        out.append(Example(Query(f"{'prove' if hard else 'name'} {subject} {i % 13}"), not hard, hard or rng.random() < 0.9, group=subject))
    return out


def test_recall_thresholds_come_from_left_out_groups_and_held_out_rows_are_only_measured(tmp_path):
    recipe = replace(RECIPES["helpdesk"], **FAST)
    rows, held = levelled(), levelled(80, seed=9, styles=("e",))
    model, doc = train(recipe, rows, tmp_path / "m.json", held_out=held, sources=["toy"])
    t = doc["routing"]["thresholds"]
    assert t["quality"] <= t["balanced"] <= t["cost"]
    for preference, target in recipe.targets.items():
        assert doc["metrics"]["tuning"]["leave_one_group_out"][preference]["complex_critical_reach_llm"] >= target
    assert doc["training"]["groups"] == ["a", "b", "c", "d"] and doc["metrics"]["held_out"]["groups"] == ["e"]
    assert doc["training"]["data_digest"] == modelfile.data_digest(rows)
    # The held-out figure is the shipped rule on the held-out rows, recomputed here independently.
    balanced = doc["metrics"]["held_out"]["levels"]["balanced"]
    hard = [e for e in held if e.level in ("complex", "critical")]
    up = [routing.model_class(model.estimate(e.query), t["balanced"], e.query.level, e.query.incident)[0] != "slm" for e in hard]
    assert balanced["complex_critical_reach_llm"] == round(sum(up) / len(up), 4)
    assert modelfile.trained_groups(modelfile.load(tmp_path / "m.json")[1]) == {"a", "b", "c", "d"}


def test_the_rule_goes_up_on_gain_or_incident_and_to_llm_plus_on_the_critical_level():
    high, low = Estimate(small_ok=0.2, large_ok=0.9), Estimate(small_ok=0.8, large_ok=0.85)
    assert routing.model_class(high, 0.3, "complex")[0] == "llm"
    assert routing.model_class(high, 0.3, "critical")[0] == "llm_plus"
    assert routing.model_class(low, 0.3, "critical")[0] == "slm"
    assert routing.model_class(low, 0.3, "moderate", incident=True)[0] == "llm"
    assert routing.threshold_for({"thresholds": {"balanced": 0.2}}, "cost") == 0.2
    with pytest.raises(ValueError, match="no routing thresholds"):
        routing.threshold_for({}, "cost")


def test_recall_recipe_needs_levels_and_two_groups():
    recipe = replace(RECIPES["helpdesk"], **FAST)
    with pytest.raises(ValueError, match="needs a 'level'"):
        train(recipe, correct(), None)
    with pytest.raises(ValueError, match="2 groups"):
        train(recipe, levelled(styles=("a",)), None)


def test_share_thresholds_send_that_share_of_training_rows_up():
    recipe = replace(RECIPES["mmlu"], **FAST)
    rows = correct()
    model, doc = train(recipe, rows, None)
    gains = [model.estimate(e.query).gain for e in rows]
    for preference, share in recipe.targets.items():
        sent = sum(g >= doc["routing"]["thresholds"][preference] for g in gains) / len(gains)
        assert abs(sent - share) < 0.05
    figures = held_out_figures(model, correct(200, seed=5), doc["routing"]["thresholds"])
    assert figures["correctness"]["apgr"] > 0.7 and set(figures["correctness"]["savings_at_quality"]) == {"0.80", "0.90", "0.95"}


def test_group_folds_are_disjoint_balanced_and_deterministic():
    rows = correct(601)
    folds = group_folds(rows, 3)
    assert set().union(*folds) == {e.group for e in rows} and sum(map(len, folds)) == 6
    assert folds == group_folds(list(reversed(rows)), 3)
    sizes = [sum(e.group in f for e in rows) for f in folds]
    assert max(sizes) - min(sizes) <= 101
    with pytest.raises(ValueError, match="7 folds"):
        group_folds(rows, 7)


def test_cross_validation_scores_every_group_with_a_model_that_never_saw_it():
    recipe = Recipe("toy", threshold_rule="strong_share", balance_by_group=0.0, targets={"balanced": 0.3}, **FAST)
    result = cross_validate(recipe, correct(), folds=3)
    assert [f["fold"] for f in result["per_fold"]] == [0, 1, 2]
    assert all(f["train_rows"] < 600 for f in result["per_fold"])
    assert 0.5 < result["apgr_mean_of_folds"] <= 1.2 and result["pooled_out_of_fold"]["rows"] == 600
