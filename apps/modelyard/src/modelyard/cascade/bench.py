"""``modelyard bench scorer`` (latency per answer) and ``modelyard bench cascade`` (the scorer's offline figures).

``bench cascade`` works on the fixed split of the GSM8K development file (``gsm8k_dev.split.json``: 528
development rows in 5 folds, 132 held-out rows). For each calibration budget (the cross-validated cost the
neutral threshold 0.6 is put at):

* **nested CV** on the development rows: each fold is scored by a model fitted on the other four, with a
  calibration cut chosen on inner out-of-fold predictions of those four, so no row is scored by anything that
  saw it;
* **held out**: a model trained on the development rows by the shipped procedure scores the 132 rows once;
* **chance of the goal**: the 660 out-of-sample predictions (CV and held-out) are resampled into test sets of
  659 questions (the size of the unseen half of GSM8K) and the share meeting quality >= 0.95 *and* cost <=
  0.55 is counted (also with the router's direct routes of a balanced tenant, as in the pipeline).

Cost and quality follow the data README (escalated questions pay both calls and get the large answer). The
shipped model itself is trained on all 660 rows (``modelyard train-scorer``); its held-out estimate is the
split run's. The hand-written parts (verifiers, phrase lists, features) were designed reading development
rows, so their development figures are optimistic; the held-out rows guard against that.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelyard_events import CASCADE_THRESHOLDS, RoutingPreference
from modelyard_inference.answers import load_model, score
from modelyard_inference.answers.scorer import HARD_FACTOR

from . import train as T
from .data import Example, load_examples, read
from .evaluate import Outcome, auroc, bootstrap, cascade, precision_recall, references
from .offline import policy_tenant, routed_to_large
from .seed_scorer import seed_confidence

GOAL_QUALITY, GOAL_COST = 0.95, 0.55
UNSEEN_QUESTIONS = 659  # GSM8K's 1,319 test questions less the 660 of the development file
THRESHOLDS = (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8)


def bench_latency(data: Path, scorer: Path | None, repeat: int) -> dict[str, Any]:
    """Wall-clock and CPU time per answer; on a shared machine the wall-clock tail is mostly waiting for a core."""
    examples = read(data)
    model = load_model(scorer)
    score(examples[0].query, examples[0].response, model=model)  # phrase tables and the model file load once
    wall, cpu = [], []
    for _ in range(repeat):
        for e in examples:
            start, start_cpu = time.perf_counter(), time.thread_time()
            score(e.query, e.response, logprobs=e.logprobs, finish_reason=e.finish_reason, model=model)
            cpu.append(time.thread_time() - start_cpu)
            wall.append(time.perf_counter() - start)

    def q(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return round(ordered[min(int(p * len(ordered)), len(ordered) - 1)] * 1e6, 1)

    return {"benchmark": "answer scoring latency", "data": data.name, "answers": len(wall),
            "mean_answer_chars": round(sum(len(e.response) for e in examples) / len(examples)),
            "p50_us": q(wall, 0.50), "p99_us": q(wall, 0.99), "cpu_p50_us": q(cpu, 0.50), "cpu_p99_us": q(cpu, 0.99),
            "cpu_mean_us": round(sum(cpu) / len(cpu) * 1e6, 1), "python": sys.version.split()[0]}


def _shifted(p: float, shift: float, hard: bool) -> float:
    logit = math.log(max(p, 1e-9) / max(1 - p, 1e-9)) + shift
    return (1 - 1 / (1 + math.exp(-max(min(logit, 30.0), -30.0)))) * (HARD_FACTOR if hard else 1.0)


def nested_cv(examples: Sequence[Example], rows: Sequence[T.Featurized], folds: Sequence[int], budget: float) -> list[float]:
    """Confidence of every development row from a model and a calibration that never saw its fold."""
    confidence = [0.0] * len(rows)
    for k in sorted(set(folds)):
        train = [i for i, f in enumerate(folds) if f != k]
        test = [i for i, f in enumerate(folds) if f == k]
        rows_train, examples_train = [rows[i] for i in train], [examples[i] for i in train]
        inner = T.out_of_fold(rows_train, [folds[i] for i in train])
        cut, _ = T.operating_point(examples_train, rows_train, inner, budget)
        params = T.fit(rows_train)
        for i, p in zip(test, T.predict(params, [rows[i] for i in test]), strict=True):
            confidence[i] = _shifted(p, T.shift_for(cut), rows[i].hard)
    return confidence


def split_model_confidence(dev: Sequence[Example], dev_rows: Sequence[T.Featurized], folds: Sequence[int],
                           held_rows: Sequence[T.Featurized], budget: float) -> list[float]:
    """The shipped procedure on the development rows only, scoring the held-out rows."""
    cut, _ = T.operating_point(dev, dev_rows, T.out_of_fold(dev_rows, folds), budget)
    params = T.fit(dev_rows)
    return [_shifted(p, T.shift_for(cut), r.hard) for p, r in zip(T.predict(params, held_rows), held_rows, strict=True)]


def _at(examples: Sequence[Example], conf: Sequence[float], rows: Sequence[T.Featurized], t: float) -> Outcome:
    return cascade(examples, [r.hard or c < t for c, r in zip(conf, rows, strict=True)])


def _goal(o: Outcome) -> bool:
    return o.quality >= GOAL_QUALITY and o.cost <= GOAL_COST


def _verifiers(rows: Sequence[T.Featurized]) -> dict[str, Any]:
    wrong = [r.wrong for r in rows]
    names = sorted({v for r in rows for v in r.hard_verifiers})
    table = {n: precision_recall([n in r.hard_verifiers for r in rows], wrong) for n in names}
    return {**table, "any hard finding": precision_recall([r.hard for r in rows], wrong)}


def _seed(examples: Sequence[Example]) -> dict[str, Any]:
    conf = [seed_confidence(e.query, e.response) for e in examples]
    return {"at_0.6": cascade(examples, [c < 0.6 for c in conf]).as_dict(),
            "auroc_wrong": round(auroc([-c for c in conf], [not e.correct for e in examples]), 4)}


def bench_quality(data: Path, split: Path, *, draws: int, budgets: Sequence[float]) -> dict[str, Any]:
    started = time.perf_counter()
    dev, folds, provenance = load_examples([data], split=split, part="dev")
    held, _, _ = load_examples([data], split=split, part="held_out")
    dev_rows, held_rows = T.featurize(dev), T.featurize(held)
    pooled = [*dev, *held]
    policy = {p.value: t for p, t in CASCADE_THRESHOLDS.items()}
    routed = routed_to_large(pooled, policy_tenant(RoutingPreference.BALANCED))
    per_budget = {}
    for budget in budgets:
        cv = nested_cv(dev, dev_rows, folds, budget)
        ho = split_model_confidence(dev, dev_rows, folds, held_rows, budget)
        both = [*cv, *ho]
        both_rows = [*dev_rows, *held_rows]
        escalate = [r.hard or c < 0.6 for c, r in zip(both, both_rows, strict=True)]
        per_budget[f"{budget:g}"] = {
            "cv_auroc_wrong": round(auroc([-c for c in cv], [r.wrong for r in dev_rows]), 4),
            "held_out_auroc_wrong": round(auroc([-c for c in ho], [r.wrong for r in held_rows]), 4),
            "cv": {f"{t:g}": _at(dev, cv, dev_rows, t).as_dict() for t in THRESHOLDS},
            "held_out": {f"{t:g}": _at(held, ho, held_rows, t).as_dict() for t in THRESHOLDS},
            "held_out_bootstrap": {name: bootstrap(held, [r.hard or c < t for c, r in zip(ho, held_rows, strict=True)],
                                                   draws=draws) for name, t in policy.items()},
            "goal_met_share_unseen_659": {
                "pooled_cv_and_held_out": bootstrap(pooled, escalate, draws=draws, size=UNSEEN_QUESTIONS, goal=_goal),
                "cv_rows_only": bootstrap(dev, escalate[: len(dev)], draws=draws, size=UNSEEN_QUESTIONS, goal=_goal),
                "held_out_rows_only": bootstrap(held, escalate[len(dev):], draws=draws, size=UNSEEN_QUESTIONS, goal=_goal),
                "pooled_with_the_router": bootstrap(pooled, escalate, routed, draws=draws, size=UNSEEN_QUESTIONS, goal=_goal),
            },
            "pooled_at_0.6": cascade(pooled, escalate).as_dict(),
            "pooled_at_0.6_with_the_router": cascade(pooled, escalate, routed).as_dict(),
        }
    return {
        "benchmark": "answer scorer quality (issue 17)",
        "data": provenance[0] | {"split": split.name, "dev": len(dev), "held_out": len(held)},
        "goal": {"quality_at_least": GOAL_QUALITY, "cost_at_most": GOAL_COST},
        "policy_thresholds": policy,
        "budgets": per_budget,
        "verifiers": {"dev": _verifiers(dev_rows), "held_out": _verifiers(held_rows)},
        "seed_scorer": {"dev": _seed(dev), "held_out": _seed(held)},
        "references": {"dev": references(dev), "held_out": references(held)},
        "seconds": round(time.perf_counter() - started, 1),
    }
