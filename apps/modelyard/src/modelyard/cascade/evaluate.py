"""Quality and cost of a cascade on labelled answers, by the rule of the GSM8K data's README.

Per question: answered by the small model costs (len(prompt) + len(small answer)) / 4 units; by the large
model (len(prompt) + len(large answer)) / 4 x 15; escalated pays both; routed straight to the large model
(the router's part) pays only the large call. Quality = accuracy / large-only accuracy;
cost = total / large-only total, both on the same questions.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from modelyard_learn import metrics

from .data import Example

LARGE_PRICE = 15.0  # per character unit, against the small model's 1 (the seed's price ratio)
CHARS_PER_UNIT = 4.0


@dataclass(frozen=True, slots=True)
class Outcome:
    quality: float
    cost: float
    accuracy: float
    escalated: float  # share of questions that paid both calls
    direct: float  # share routed straight to the large model
    questions: int

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def small_cost(e: Example) -> float:
    return (len(e.query) + len(e.response)) / CHARS_PER_UNIT


def large_cost(e: Example) -> float:
    if e.large_response is None:
        raise ValueError(f"{e.source} row {e.row}: no large-model answer, so no cascade cost")
    return (len(e.query) + len(e.large_response)) / CHARS_PER_UNIT * LARGE_PRICE


def _terms(examples: Sequence[Example], escalate: Sequence[bool], direct: Sequence[bool] | None,
           kept_small: Sequence[bool] | None) -> list[tuple[float, float, float, float]]:
    """Per question: (right, spent, large model right, large-only cost)."""
    n = len(examples)
    direct = direct or [False] * n
    kept_small = kept_small or [False] * n
    if not n == len(escalate) == len(direct) == len(kept_small):
        raise ValueError("examples, escalate, direct and kept_small differ in length")
    terms = []
    for e, up, straight, small_kept in zip(examples, escalate, direct, kept_small, strict=True):
        large = large_cost(e)
        if straight:
            right, spent = bool(e.large_correct), large
        elif up:
            right, spent = (e.correct if small_kept else bool(e.large_correct)), small_cost(e) + large
        else:
            right, spent = e.correct, small_cost(e)
        terms.append((float(right), spent, float(bool(e.large_correct)), large))
    return terms


def _outcome(terms: Sequence[tuple[float, float, float, float]], escalated: int, direct: int) -> Outcome:
    right = sum(t[0] for t in terms)
    large_right = sum(t[2] for t in terms)
    n = len(terms)
    return Outcome(
        quality=right / large_right if large_right else float("nan"),
        cost=sum(t[1] for t in terms) / sum(t[3] for t in terms),
        accuracy=right / n,
        escalated=escalated / n,
        direct=direct / n,
        questions=n,
    )


def cascade(examples: Sequence[Example], escalate: Sequence[bool], direct: Sequence[bool] | None = None,
            kept_small: Sequence[bool] | None = None) -> Outcome:
    """Outcome of keeping the small answer unless ``escalate`` (or routing straight up when ``direct``).

    ``kept_small``: escalated questions that paid both calls but kept the small answer (the pipeline keeps
    the more confident answer when the large one is unsure too); none unless given.
    """
    direct = direct or [False] * len(examples)
    escalated = sum(up and not d for up, d in zip(escalate, direct, strict=True))
    return _outcome(_terms(examples, escalate, direct, kept_small), escalated, sum(direct))


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """``modelyard_learn.metrics.auroc``, NaN where a sample has one class only (a report still prints)."""
    if all(positive) or not any(positive):
        return float("nan")
    return metrics.auroc(scores, positive)


def precision_recall(flagged: Sequence[bool], wrong: Sequence[bool]) -> dict[str, float]:
    hits = sum(f and w for f, w in zip(flagged, wrong, strict=True))
    n_flagged, n_wrong = sum(flagged), sum(wrong)
    return {
        "flagged": n_flagged,
        "precision": round(hits / n_flagged, 3) if n_flagged else float("nan"),
        "recall": round(hits / n_wrong, 3) if n_wrong else float("nan"),
    }


def references(examples: Sequence[Example]) -> dict[str, dict[str, float]]:
    """Never escalate, always escalate, the oracle (escalate exactly the wrong answers), large only."""
    n = len(examples)
    return {
        "never_escalate": cascade(examples, [False] * n).as_dict(),
        "always_escalate": cascade(examples, [True] * n).as_dict(),
        "oracle": cascade(examples, [not e.correct for e in examples]).as_dict(),
        "large_only": cascade(examples, [False] * n, [True] * n).as_dict(),
    }


def bootstrap(
    examples: Sequence[Example], escalate: Sequence[bool], direct: Sequence[bool] | None = None, *,
    draws: int = 2000, size: int | None = None, seed: int = 7,
    goal: Callable[[Outcome], bool] | None = None,
) -> dict[str, object]:
    """90% intervals of quality and cost over questions drawn with replacement (``size`` per draw, default
    as many as given), and with ``goal`` the share of draws that meet it."""
    rng = random.Random(seed)
    terms = _terms(examples, escalate, direct, None)
    n = len(terms)
    size = size or n
    qualities, costs, met = [], [], 0
    for _ in range(draws):
        o = _outcome([terms[rng.randrange(n)] for _ in range(size)], 0, 0)
        qualities.append(o.quality)
        costs.append(o.cost)
        met += bool(goal and goal(o))
    qualities.sort()
    costs.sort()
    low, high = int(0.05 * draws), min(int(0.95 * draws), draws - 1)
    out: dict[str, object] = {"quality_90": [round(qualities[low], 3), round(qualities[high], 3)],
                              "cost_90": [round(costs[low], 3), round(costs[high], 3)], "draws": draws, "size": size}
    if goal is not None:
        out["goal_met_share"] = round(met / draws, 3)
    return out
