"""Score one model answer: the verifiers, then a logistic model of P(answer wrong) over ``features``.

    logit P(wrong) = intercept + sum(weight_i * x_i)            (math features are 0 outside math questions)
    confidence     = 1 - P(wrong)
    a hard finding -> confidence x HARD_FACTOR, and the answer escalates whatever the threshold
    escalate       = hard finding or confidence < threshold     (threshold: a tenant policy, 0.6 neutral)

The model file (JSON, ``FORMAT``/``FORMAT_VERSION``) holds one weight per feature, each either ``learned``
(from labelled answers) or a ``prior`` (a hand-set weight for a signal the training data never showed:
hedges, log-probabilities, an off-topic reply: they keep the helpdesk behaviour of the seed scorer). The
intercept is the prior log-odds of a wrong answer outside math; ``is_math``'s weight moves it for math
questions, and already includes the calibration shift that puts the neutral threshold 0.6 on the
operating point chosen in cross-validation (``calibration`` in the file says which).

Reasons: the findings (hard first, each naming its verifier), then the features that raised P(wrong) most
against the typical training answer (``reference`` values in the file), each with its log-odds contribution.

The inference worker (``MODELYARD_CASCADE__SCORER``, default: the shipped ``data/default_scorer.json``) and
``modelyard cascade-score --scorer`` load the file with ``load_model``; ``modelyard train-scorer`` writes it.
Pure Python; the model file is read once per path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from . import features as F
from .analysis import Analysis
from .verifiers import HARD, Call, Finding, run

FORMAT = "modelyard-answer-scorer"
FORMAT_VERSION = 1
DEFAULT_THRESHOLD = 0.6
HARD_FACTOR = 0.2
MAX_FEATURE_REASONS = 3
MIN_REASON_LOGIT = 0.15  # a contribution below this (log-odds) is noise, not a reason


@dataclass(frozen=True, slots=True)
class Score:
    confidence: float
    p_wrong: float
    hard: bool
    reasons: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def escalate(self, threshold: float = DEFAULT_THRESHOLD) -> bool:
        """Below the threshold, or failing a hard verifier, the answer is not kept."""
        return self.hard or self.confidence < threshold


class Model:
    def __init__(self, data: dict[str, Any]) -> None:
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file (format={data.get('format')!r})")
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format_version {data.get('format_version')!r} is not {FORMAT_VERSION}")
        try:
            by_name = {f["name"]: f for f in data["features"]}
            unknown = set(by_name) - set(F.INDEX)
            if unknown:
                raise ValueError(f"model file has features this code does not know: {sorted(unknown)}")
            # a feature the file does not name weighs 0: an older file keeps working after a feature is added
            self.weights = [float(by_name.get(f.name, {}).get("weight", 0.0)) for f in F.FEATURES]
            self.reference = [float(by_name.get(f.name, {}).get("reference", 0.0)) for f in F.FEATURES]
            self.intercept = float(data["intercept"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed model file: {type(exc).__name__}: {exc}") from None
        if not all(math.isfinite(v) for v in (*self.weights, *self.reference, self.intercept)):
            raise ValueError("malformed model file: a weight is not a finite number")
        self.data = data

    @classmethod
    def load(cls, path: str | Path) -> Model:
        return _load(str(path))

    def p_wrong(self, x: Sequence[float]) -> tuple[float, list[tuple[float, int]]]:
        logit = self.intercept
        moved = []
        for i, (w, value, ref) in enumerate(zip(self.weights, x, self.reference, strict=True)):
            if w:
                logit += w * value
                # a math feature moves the score against the typical math answer, and only on math questions
                if F.FEATURES[i].group == F.GENERAL or x[F.INDEX["is_math"]]:
                    moved.append((w * (value - ref), i))
        logit = min(max(logit, -30.0), 30.0)
        return 1.0 / (1.0 + math.exp(-logit)), moved


@lru_cache(maxsize=8)
def _load(path: str) -> Model:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the scorer model {path}: {exc}") from None
    return Model(data)


DEFAULT_MODEL_PATH = "data/default_scorer.json"


@cache
def default_model() -> Model:
    """The shipped model (trained on the GSM8K development file; see its ``training`` entry)."""
    return _load(str(resources.files(__package__).joinpath(DEFAULT_MODEL_PATH)))


def load_model(path: str | Path | None) -> Model:
    """The model file at ``path``, or the shipped default when ``path`` is None."""
    return default_model() if path is None else Model.load(path)


def _label(i: int, value: float) -> str:
    feature = F.FEATURES[i]
    if feature.name in F.FLAGS:
        return feature.label if value else f"not: {feature.label}"
    return f"{feature.label}: {value:.0f}" if value == int(value) else f"{feature.label}: {value:.2f}"


def score(
    query: str,
    response: str,
    *,
    logprobs: Sequence[float] | None = None,
    finish_reason: str | None = None,
    response_format: dict[str, Any] | None = None,
    model: Model | None = None,
) -> Score:
    """Confidence that ``response`` is a good answer to ``query``, with the verifiers' findings."""
    return score_analysis(Analysis(query, response), logprobs=logprobs, finish_reason=finish_reason,
                          response_format=response_format, model=model)


def score_analysis(
    a: Analysis,
    *,
    logprobs: Sequence[float] | None = None,
    finish_reason: str | None = None,
    response_format: dict[str, Any] | None = None,
    model: Model | None = None,
    disagreement: float = 0.0,
    extra: Sequence[Finding] = (),
) -> Score:
    """``score`` of an analysed answer; ``disagreement`` and ``extra`` findings come from self-consistency."""
    model = model or default_model()
    findings = [*run(a, Call(finish_reason, response_format)), *extra]
    hard = [f for f in findings if f.severity == HARD]
    if any(f.verifier == "empty" for f in findings):
        return Score(0.0, 1.0, True, [str(f) for f in findings], findings)
    x = F.extract(a, findings, logprobs, disagreement)
    p, moved = model.p_wrong(x)
    confidence = 1.0 - p
    if hard:
        confidence *= HARD_FACTOR
    reasons = [str(f) for f in hard] + [str(f) for f in findings if f.severity != HARD]
    top = sorted((m for m in moved if m[0] >= MIN_REASON_LOGIT), reverse=True)[:MAX_FEATURE_REASONS]
    reasons += [f"scorer: {_label(i, x[i])} (+{c:.2f})" for c, i in top]
    return Score(round(confidence, 4), round(p, 4), bool(hard), reasons, findings)
