"""The two training recipes measured for issue 16, and how each chooses its routing thresholds.

- ``mmlu`` (the default of ``modelyard train-router``): correctness labels of a small and a large
  model (RouteLLM's MMLU files). Heavily regularised, character n-grams at 0.15 of a word, groups
  balanced by 1/sqrt(size): the settings that ranked *unseen* subjects best in subject-wise
  cross-validation. Thresholds: the expected gains above which 50% / 30% / 15% of the training rows
  would go to the large model (quality / balanced / cost) — an operating point, not a measured figure.
- ``helpdesk``: a small set labelled by support level (``level``: simple/moderate → the small model
  suffices; complex/critical → it does not). Character n-grams at half a word, structure and context
  features, 8 epochs. Thresholds: chosen on leave-one-group-out predictions over the training rows
  (the highest expected gain at which 99% / 97% / 95% of complex/critical rows still reach an LLM).

``train`` fits a recipe, measures it on the held-out rows it is given (and on nothing else), and writes
the model file: feature set, weights, the training data's digest and groups, the metrics, the thresholds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import metrics, modelfile, routing
from .features import FeatureSet
from .model import Estimate, Example, RouterModel
from .train import group_folds, measure, measure_scores, split_by_group, timed_fit, training_record

LLM_CLASSES = ("llm", "llm_plus")


@dataclass(frozen=True)
class Recipe:
    name: str
    feature_set: FeatureSet
    hyper: dict
    epochs: int
    balance_by_group: float
    #: "strong_share": thresholds at these shares of rows sent up; "recall": at these shares of complex/critical up
    threshold_rule: str
    targets: dict[str, float] = field(default_factory=dict)

    def fit(self, examples: Sequence[Example], seed: int = 0) -> tuple[RouterModel, float]:
        model = RouterModel(self.feature_set, hyper=self.hyper)
        return timed_fit(model, examples, epochs=self.epochs, seed=seed, balance_by_group=self.balance_by_group)


RECIPES: dict[str, Recipe] = {
    "mmlu": Recipe(
        "mmlu",
        FeatureSet.build(chars=(3, 5), char_weight=0.15, structure=False, context=False, factors=True),
        dict(alpha=0.1, beta=1.0, l1=0.3, l2=5.0),
        epochs=3,
        balance_by_group=0.5,
        threshold_rule="strong_share",
        targets={"quality": 0.5, "balanced": 0.3, "cost": 0.15},
    ),
    "helpdesk": Recipe(
        "helpdesk",
        FeatureSet.build(chars=(3, 5), char_weight=0.5, structure=True, context=True, factors=True),
        dict(alpha=0.2, beta=1.0, l1=0.05, l2=1.0),
        epochs=8,
        balance_by_group=0.0,
        threshold_rule="recall",
        targets={"quality": 0.99, "balanced": 0.97, "cost": 0.95},
    ),
}
RULE = "up if expected gain >= threshold or the keyword analysis reports an incident; up = llm_plus if its level is critical, else llm"


def route_class(estimate: Estimate, threshold: float, example: Example) -> str:
    return routing.model_class(estimate, threshold, example.query.level or "", example.query.incident)[0]


def level_report(examples: Sequence[Example], classes: Sequence[str]) -> dict:
    return metrics.level_routing_report([e.level or "" for e in examples], classes)


def train(recipe: Recipe, examples: Sequence[Example], out: str | Path | None, *, held_out: Sequence[Example] = (),
          sources: Sequence[str] = (), group_by: str | None = None, seed: int = 0) -> tuple[RouterModel, dict]:
    """Fit ``recipe`` on ``examples``, choose its thresholds, measure ``held_out`` once, write ``out``."""
    if not examples:
        raise ValueError("no training rows")
    recall = _recall_thresholds(recipe, examples, seed) if recipe.threshold_rule == "recall" else None
    model, seconds = recipe.fit(examples, seed)
    thresholds, tuning_figures = recall or _share_thresholds(recipe, model, examples)
    found: dict = {"tuning": tuning_figures}
    if held_out:
        found["held_out"] = held_out_figures(model, held_out, thresholds)
    training = training_record(examples, epochs=recipe.epochs, balance_by_group=recipe.balance_by_group, seed=seed,
                               seconds=seconds, sources=sources, group_by=group_by, recipe=recipe.name)
    routing_doc = {"thresholds": thresholds, "threshold_rule": recipe.threshold_rule, "targets": recipe.targets, "rule": RULE}
    meta = dict(training=training, metrics=found, routing=routing_doc)
    doc = modelfile.save(model, out, **meta) if out is not None else modelfile.to_json(model, **meta)
    return model, doc


def held_out_figures(model: RouterModel, rows: Sequence[Example], thresholds: dict[str, float]) -> dict:
    """What a model does on rows it was not trained on: APGR and savings where both models are labelled,
    the level report per preference (and per group at the balanced threshold) where levels are."""
    out: dict = {"rows": len(rows), "groups": sorted({e.group for e in rows})}
    ranked = measure(model, rows)  # level-labelled rows rank too: complex/critical first is the small model failing
    if ranked:
        out["correctness"] = ranked
    levelled = [e for e in rows if e.level is not None]
    if levelled:
        estimates = [model.estimate(e.query) for e in levelled]
        out["levels"] = {p: level_report(levelled, [route_class(x, t, e) for x, e in zip(estimates, levelled)])
                         for p, t in thresholds.items()}
        balanced = routing.threshold_for({"thresholds": thresholds})
        out["levels_by_group_balanced"] = {
            g: level_report([e for e in levelled if e.group == g],
                            [route_class(x, balanced, e) for x, e in zip(estimates, levelled) if e.group == g])
            for g in sorted({e.group for e in levelled})}
        out["keyword_router"] = level_report(levelled, [keyword_class(e) for e in levelled])
    return out


def keyword_class(example: Example) -> str:
    """Today's router without a model, for reference: its level's class (no tenant policy)."""
    return {"complex": "llm", "critical": "llm_plus"}.get(example.query.level or "", "slm")


def _share_thresholds(recipe: Recipe, model: RouterModel, examples: Sequence[Example]) -> tuple[dict, dict]:
    gains = sorted((model.estimate(e.query).gain for e in examples), reverse=True)
    thresholds = {p: round(gains[min(len(gains) - 1, int(share * len(gains)))], 4) for p, share in recipe.targets.items()}
    return thresholds, {"in_sample_strong_share": recipe.targets}


def _recall_thresholds(recipe: Recipe, examples: Sequence[Example], seed: int) -> tuple[dict, dict]:
    """Thresholds from out-of-fold gains, one group left out at a time (each group's rows scored by a
    model that never saw that group): per preference, the highest gain threshold whose out-of-fold share
    of complex/critical rows reaching an LLM meets the target."""
    if any(e.level is None for e in examples):
        raise ValueError(f"the {recipe.name} recipe needs a 'level' on every row")
    groups = sorted({e.group for e in examples})
    if len(groups) < 2:
        raise ValueError(f"the {recipe.name} recipe chooses thresholds on left-out groups: it needs 2 groups or more")
    oof: dict[int, Estimate] = {}
    for group in groups:
        model, _ = recipe.fit(split_by_group(examples, {group})[0], seed)
        for i, e in enumerate(examples):
            if e.group == group:
                oof[i] = model.estimate(e.query)
    thresholds, figures = {}, {}
    candidates = sorted({x.gain for x in oof.values()}, reverse=True)
    for preference, target in recipe.targets.items():
        for t in candidates:
            report = level_report(examples, [route_class(oof[i], t, e) for i, e in enumerate(examples)])
            if (report["complex_critical_reach_llm"] or 0.0) >= target:
                thresholds[preference], figures[preference] = round(t, 4), report
                break
    return thresholds, {"leave_one_group_out": figures, "groups": groups}


def cross_validate(recipe: Recipe, examples: Sequence[Example], folds: int = 5, seed: int = 0) -> dict:
    """Group k-fold: each fold's groups scored by a model of the same recipe trained on the other groups.
    ``apgr_mean_of_folds`` is the figure (each fold pools unseen groups, like a held-out set); the pooled
    out-of-fold APGR mixes k models' calibrations and is reported beside it."""
    per_fold, gains, fails, rows = [], [], [], []
    for k, groups in enumerate(group_folds(examples, folds)):
        train_rows, test_rows = split_by_group(examples, groups)
        model, seconds = recipe.fit(train_rows, seed)
        labelled = [e for e in test_rows if e.llm_ok is not None]
        est = [model.estimate(e.query) for e in labelled]
        figures = measure(model, labelled) if labelled else {}
        per_fold.append({"fold": k, "groups": sorted(groups), "train_rows": len(train_rows), "seconds": round(seconds, 1), **figures})
        gains += [x.gain for x in est]
        fails += [x.fail for x in est]
        rows += labelled
    apgrs = [f["apgr"] for f in per_fold if "apgr" in f]
    return {
        "recipe": recipe.name,
        "folds": folds,
        "apgr_mean_of_folds": round(sum(apgrs) / len(apgrs), 4) if apgrs else None,
        "pooled_out_of_fold": measure_scores(gains, fails, rows) if rows else {},
        "per_fold": per_fold,
    }
