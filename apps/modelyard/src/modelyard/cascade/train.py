"""Train the answer scorer: a logistic regression of "answer wrong" on the serving code's features (numpy +
scikit-learn, the app's ``train`` extra, imported inside ``fit`` only: serving reads the JSON file it writes in
pure Python, ``modelyard_inference.answers.scorer``).

- Rows with a hard verifier finding are left out of the fit: they escalate whatever the model says, and
  the model's job is the answers no verifier can reject.
- A feature that does not vary among the fitted rows cannot be learned: it keeps its ``PRIORS`` weight
  (0 when it has none). The GSM8K data has no hedges and no log-probabilities, so those stay priors; a
  JSONL file with ``logprobs`` makes them learned.
- The intercept outside math questions is learned only when the data has non-math rows; otherwise it is
  the prior ``GENERAL_INTERCEPT`` (P(wrong) 0.15 for an answer nothing speaks against, the seed's 0.85)
  and the math questions' own log-odds go to ``is_math``'s weight.
- Calibration: the neutral threshold 0.6 is put on the operating point chosen on out-of-fold predictions
  (``operating_point``: spend a cost budget) by adding ``logit(0.4) - logit(p*)`` to ``is_math``'s weight.
"""

from __future__ import annotations

import datetime as _dt
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelyard_inference.answers import features as F
from modelyard_inference.answers.analysis import Analysis
from modelyard_inference.answers.scorer import DEFAULT_THRESHOLD, FORMAT, FORMAT_VERSION, HARD_FACTOR, Model
from modelyard_inference.answers.verifiers import HARD, Call, phrases, run

from . import DEFAULT_C, DEFAULT_MAX_COST
from .evaluate import Outcome, auroc, cascade

GENERAL_INTERCEPT = math.log(0.15 / 0.85)
#: hand-set weights (log-odds) for signals without training data; chosen so that the seed's helpdesk
#: behaviour holds at the neutral threshold (a hedge or very unsure tokens escalate, good tokens keep)
PRIORS = {
    "hedged": 2.5,
    "extra_hedges": 0.5,
    "off_topic": 1.4,
    "too_short": 1.4,
    "has_logprobs": -1.0,
    "lp_neg_mean": 4.0,
    "lp_near_guess": 0.3,
    # self-consistency: a third of the samples disagreeing adds +1 log-odds (no labelled k-sample data yet)
    "sc_disagreement": 3.0,
}
#: what a reason compares a general feature with: a fluent confident answer still has some token surprise
#: (geometric-mean token probability ~0.9, the seed scorer's upper knee), which is not a reason against it
PRIOR_REFERENCE = {"lp_neg_mean": 0.1}
MIN_SUPPORT = 8  # a feature seen (non-zero) in fewer fitted rows keeps its prior: a weight from 3 rows is noise
MIN_GENERAL_ROWS = 50  # fewer non-math rows than this: the non-math intercept stays the prior, they are not fitted


@dataclass(frozen=True, slots=True)
class Featurized:
    x: list[float]
    hard: bool
    wrong: bool
    hard_verifiers: tuple[str, ...]


def featurize(examples: Sequence[Any]) -> list[Featurized]:
    out = []
    for e in examples:
        a = Analysis(e.query, e.response)
        findings = run(a, Call(e.finish_reason, e.response_format))
        hard = tuple(sorted({f.verifier for f in findings if f.severity == HARD}))
        out.append(Featurized(F.extract(a, findings, e.logprobs), bool(hard), not e.correct, hard))
    return out


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def fit(rows: Sequence[Featurized], c: float = DEFAULT_C) -> dict[str, Any]:
    """Weights and intercept (raw feature scale) from the rows without a hard finding."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    is_math = F.INDEX["is_math"]
    fitted = [r for r in rows if not r.hard]
    non_math = sum(1 for r in fitted if not r.x[is_math])
    if 0 < non_math < MIN_GENERAL_ROWS:
        fitted = [r for r in fitted if r.x[is_math]]
    if len(fitted) < 10 or len({r.wrong for r in fitted}) < 2:
        raise ValueError(f"need at least 10 rows with both labels to train, have {len(fitted)}")
    X = np.array([r.x for r in fitted], dtype=float)
    y = np.array([r.wrong for r in fitted], dtype=int)
    math_rows = X[:, is_math] == 1
    learn = [
        j for j in range(X.shape[1])
        if j != is_math and X[:, j].std() > 0 and (X[:, j] != X[0, j]).sum() >= MIN_SUPPORT
    ]
    mixed = 0 < math_rows.sum() < len(X)
    cols = learn + ([is_math] if mixed else [])
    weights = [PRIORS.get(f.name, 0.0) for f in F.FEATURES]
    source = ["prior" if f.name in PRIORS else "none" for f in F.FEATURES]
    # features not fitted (priors, or too rare to learn) keep their weight; their average part of the
    # log-odds over the fitted rows is taken out of the fitted intercept
    fixed = [j for j in range(X.shape[1]) if j not in cols and j != is_math]
    offset = float(np.mean(X[:, fixed] @ np.array([weights[j] for j in fixed]))) if fixed else 0.0
    mean, std = X[:, cols].mean(axis=0), X[:, cols].std(axis=0)
    model = LogisticRegression(C=c, max_iter=5000).fit((X[:, cols] - mean) / std, y)
    coef = model.coef_[0] / std
    intercept = float(model.intercept_[0] - (coef * mean).sum()) - offset
    for j, w in zip(cols, coef, strict=True):
        weights[j], source[j] = float(w), "learned"
    if mixed:
        general = intercept
    elif math_rows.all():
        general = GENERAL_INTERCEPT
        weights[is_math], source[is_math] = intercept - GENERAL_INTERCEPT, "learned"
    else:
        general = intercept
    reference = [PRIOR_REFERENCE.get(f.name, 0.0) for f in F.FEATURES]
    if math_rows.any():
        for j, v in enumerate(X[math_rows].mean(0)):
            if F.FEATURES[j].group == F.MATH:
                reference[j] = float(v)
    return {"weights": weights, "source": source, "intercept": general, "reference": reference,
            "fitted_rows": len(fitted), "left_out_non_math_rows": non_math if 0 < non_math < MIN_GENERAL_ROWS else 0}


def predict(params: dict[str, Any], rows: Sequence[Featurized], shift: float = 0.0) -> list[float]:
    """P(wrong) of each row (without the hard-finding override), ``shift`` added to math log-odds."""
    out = []
    for r in rows:
        logit = params["intercept"] + sum(w * v for w, v in zip(params["weights"], r.x, strict=True))
        logit += shift * r.x[F.INDEX["is_math"]]
        out.append(1.0 / (1.0 + math.exp(-min(max(logit, -30.0), 30.0))))
    return out


def confidence(p_wrong: Sequence[float], rows: Sequence[Featurized]) -> list[float]:
    return [(1 - p) * (HARD_FACTOR if r.hard else 1.0) for p, r in zip(p_wrong, rows, strict=True)]


def out_of_fold(rows: Sequence[Featurized], folds: Sequence[int], c: float = DEFAULT_C) -> list[float]:
    """P(wrong) of each row from a model fitted on the other folds."""
    p = [0.0] * len(rows)
    for k in sorted(set(folds)):
        train = [r for r, f in zip(rows, folds, strict=True) if f != k]
        params = fit(train, c)
        test = [i for i, f in enumerate(folds) if f == k]
        for i, value in zip(test, predict(params, [rows[i] for i in test]), strict=True):
            p[i] = value
    return p


def outcome_at(examples: Sequence[Any], rows: Sequence[Featurized], p_wrong: Sequence[float], cut: float) -> Outcome:
    """Escalate the hard rows and those with P(wrong) above ``cut``."""
    return cascade(examples, [r.hard or p > cut for r, p in zip(rows, p_wrong, strict=True)])


def operating_point(
    examples: Sequence[Any], rows: Sequence[Featurized], p_wrong: Sequence[float], max_cost: float
) -> tuple[float, Outcome]:
    """The lowest P(wrong) cut (the most escalation) whose cost stays within ``max_cost``: spend the budget.

    Cost falls smoothly as the cut rises, so this cut moves little from one sample of questions to another;
    "the cut with the best quality within the budget" chased bumps of a noisy quality curve and did worse
    in nested cross-validation (REPORT.md).
    """
    best: tuple[float, Outcome] | None = None
    for cut in sorted(set(round(p, 4) for p in p_wrong), reverse=True):
        result = outcome_at(examples, rows, p_wrong, cut)
        if result.cost > max_cost:
            break
        best = (cut, result)
    if best is None:
        raise ValueError(f"no cut keeps the cost within {max_cost}")
    return best


def shift_for(cut: float) -> float:
    """Log-odds added to math answers so that P(wrong) = cut lands on confidence = DEFAULT_THRESHOLD."""
    return _logit(1 - DEFAULT_THRESHOLD) - _logit(min(max(cut, 1e-6), 1 - 1e-6))


def model_file(
    params: dict[str, Any], shift: float, *, training: dict[str, Any], calibration: dict[str, Any],
    metrics: dict[str, Any],
) -> dict[str, Any]:
    weights = list(params["weights"])
    weights[F.INDEX["is_math"]] += shift
    data = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kind": "logistic regression of P(answer wrong); confidence = 1 - P",
        "phrases_version": phrases().version,
        "intercept": round(params["intercept"], 6),
        "features": [
            {"name": f.name, "group": f.group, "weight": round(w, 6), "source": s, "reference": round(r, 6)}
            for f, w, s, r in zip(F.FEATURES, weights, params["source"], params["reference"], strict=True)
        ],
        "calibration": {**calibration, "shift_in_is_math_weight": round(shift, 6)},
        "training": training,
        "metrics": metrics,
    }
    Model(data)  # the file it writes must load
    return data


def cv_summary(examples: Sequence[Any], rows: Sequence[Featurized], p_wrong: Sequence[float]) -> dict[str, Any]:
    conf = confidence(p_wrong, rows)
    return {"auroc_wrong": round(auroc([-c for c in conf], [r.wrong for r in rows]), 4)}


FOLDS = 5


def stratified_folds(examples: Sequence[Any], seed: int = 17) -> list[int]:
    """Fold of each row, right and wrong answers spread evenly (for data without a split file)."""
    rng = random.Random(seed)
    folds = [0] * len(examples)
    for label in (True, False):
        idx = [i for i, e in enumerate(examples) if e.correct is label]
        rng.shuffle(idx)
        for k, i in enumerate(idx):
            folds[i] = k % FOLDS
    return folds


def train_model(
    examples: Sequence[Any], *, folds: Sequence[int] | None = None, c: float = DEFAULT_C,
    max_cost: float | None = DEFAULT_MAX_COST, provenance: list[dict[str, Any]], command: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model file of the whole procedure, and its summary: cross-validated P(wrong) for the metrics and
    the calibration cut, then one fit on every row.

    With large-model answers (CSV with ``--large-model``, JSONL ``large_response``/``large_correct``) and a
    ``max_cost``, the neutral threshold goes to the most escalation whose cross-validated cost stays within
    it; otherwise the neutral threshold is P(wrong) 0.4 as fitted.
    """
    folds = list(folds) if folds else stratified_folds(examples)
    rows = featurize(examples)
    oof = out_of_fold(rows, folds, c)
    has_large = all(e.large_correct is not None and e.large_response is not None for e in examples)
    metrics: dict[str, Any] = cv_summary(examples, rows, oof)
    if has_large and max_cost:
        cut, result = operating_point(examples, rows, oof, max_cost)
        calibration = {"method": "cv operating point: the most escalation within a cost budget", "max_cost": max_cost,
                       "p_wrong_cut": cut, "cv_at_neutral_threshold": result.as_dict()}
    else:
        cut = 1 - DEFAULT_THRESHOLD
        calibration = {"method": "none (no large-model answers to price, or no budget)", "p_wrong_cut": cut}
    params = fit(rows, c)
    training = {
        "data": provenance, "rows": len(rows), "wrong": sum(r.wrong for r in rows),
        "fitted_rows": params["fitted_rows"], "hard_rows": sum(r.hard for r in rows),
        "c": c, "folds": len(set(folds)), "command": command,
    }
    data = model_file(params, shift_for(cut), training=training, calibration=calibration, metrics=metrics)
    return data, {**metrics, "calibration": calibration, "rows": len(rows)}
