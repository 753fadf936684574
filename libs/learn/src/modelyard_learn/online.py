"""Learning from outcomes: the online learner and the prequential replay behind
``modelyard eval-router --online``.

``OnlineLearner`` applies outcome events to a ``RouterModel`` exactly once: each event carries its
(partition, offset) on the outcomes topic and the learner keeps the highest applied offset per
partition (a watermark), saved in the same checkpoint as the weights, so a redelivered event or a
replay after a restart or a rebalance changes nothing. Memory is bounded by the hashed feature space
(at most ``2 ** dim_bits`` coordinates per head) plus one integer per partition.

``replay`` is the offline evaluation: a labelled set in a seeded random order, each query scored
*before* anything is learned from it (prequential), routed like production routes, and its labels
revealed only as production would reveal them:

- routed to the small model: ``slm_ok`` (an escalation = wrong; an accepted answer = right, with
  ``accepted_weight``); if it was escalated, the large model answered too, so ``llm_ok`` is seen;
  a ``shadow_share`` of accepted answers is also sent to the large model (``llm_ok`` seen);
- routed to the large model: nothing.

Routing during the replay: a query goes to the large model when its expected gain is in the top
``strong_share`` of the last ``window`` scores (a running quantile; the first ``warmup`` queries are
routed at random with that probability); ``explore`` of the queries bound for the large model go to
the small one instead, so the learner keeps seeing labels from the whole range of scores.

``apgr_first_half`` / ``apgr_last_half``: APGR of the prequential scores of the first and second half
of the stream, each against the true labels of every query of that half (whether revealed or not).
"""

from __future__ import annotations

import bisect
import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from . import metrics
from .features import FeatureSet, stable_hash
from .model import Example, RouterModel


@dataclass(frozen=True)
class Outcome:
    """What happened to one routed query, as the outcomes topic tells it."""

    partition: int
    offset: int
    features: Mapping[int, float]
    slm_ok: bool | None  # None: the small model did not answer
    llm_ok: bool | None  # None: the large model's answer was not seen or not judged
    large_weight: float = 1.0  # a shadow label: 1 / the shadow sampling share


class OnlineLearner:
    def __init__(self, model: RouterModel, accepted_weight: float = 1.0) -> None:
        self.model = model
        self.accepted_weight = accepted_weight
        self.watermarks: dict[int, int] = {}
        self.applied = 0
        self.skipped = 0

    def apply(self, outcome: Outcome) -> bool:
        """Learn from one outcome unless it was applied before; True if it was applied now."""
        if outcome.offset <= self.watermarks.get(outcome.partition, -1):
            self.skipped += 1
            return False
        self.model.learn_features(
            outcome.features, outcome.slm_ok, outcome.llm_ok, accepted_weight=self.accepted_weight, large_weight=outcome.large_weight
        )
        self.watermarks[outcome.partition] = outcome.offset
        self.applied += 1
        return True

    def checkpoint(self) -> dict:
        """Weights, optimiser state and watermarks in one document: written atomically, they stay consistent."""
        from .modelfile import to_json

        doc = to_json(self.model, with_optimizer=True)
        doc["online"] = {
            "watermarks": {str(p): o for p, o in self.watermarks.items()},
            "applied": self.applied,
            "accepted_weight": self.accepted_weight,
        }
        return doc

    @classmethod
    def restore(cls, doc: Mapping) -> OnlineLearner:
        from .modelfile import from_json

        online = doc.get("online", {})
        learner = cls(from_json(doc), float(online.get("accepted_weight", 1.0)))
        learner.watermarks = {int(p): int(o) for p, o in online.get("watermarks", {}).items()}
        learner.applied = int(online.get("applied", 0))
        return learner


@dataclass(frozen=True)
class ReplayConfig:
    strong_share: float = 0.3
    explore: float = 0.1
    shadow_share: float = 0.05
    shadow_weight_cap: float = 20.0  # a shadow label weighs min(cap, 1 / shadow_share)
    accepted_weight: float = 1.0
    window: int = 1000
    warmup: int = 100
    tenant_correction: bool = True  # learn a per-tenant (per-group) bias online
    partitions: int = 8


class _RunningQuantile:
    """The q-quantile of the last ``window`` values (sorted list + FIFO: O(window) per step, fine offline)."""

    def __init__(self, window: int) -> None:
        self.fifo: deque[float] = deque()
        self.sorted: list[float] = []
        self.window = window

    def add(self, value: float) -> None:
        self.fifo.append(value)
        bisect.insort(self.sorted, value)
        if len(self.fifo) > self.window:
            old = self.fifo.popleft()
            del self.sorted[bisect.bisect_left(self.sorted, old)]

    def quantile(self, q: float) -> float:
        return self.sorted[min(len(self.sorted) - 1, int(q * len(self.sorted)))]


def replay(
    examples: Sequence[Example],
    feature_set: FeatureSet,
    seed: int = 0,
    config: ReplayConfig = ReplayConfig(),
    hyper: Mapping | None = None,
    model: RouterModel | None = None,
) -> dict:
    rng = random.Random(seed)
    order = list(range(len(examples)))
    rng.shuffle(order)
    fs = feature_set.with_tenant() if config.tenant_correction else feature_set
    model = model or RouterModel(fs, hyper=hyper)
    learner = OnlineLearner(model, config.accepted_weight)
    featurizer = model.featurizer
    quantile = _RunningQuantile(config.window)
    offsets = [0] * config.partitions

    gains: list[float] = []
    fails: list[float] = []
    strong: list[bool] = []
    revealed = {"slm_ok": 0, "llm_ok_escalated": 0, "llm_ok_shadow": 0}
    for step, i in enumerate(order):
        e = examples[i]
        query = replace(e.query, tenant=e.group or None) if config.tenant_correction else e.query
        x = featurizer.features(query)
        est = model.estimate_features(x)  # scored before anything is learned from this query
        gains.append(est.gain)
        fails.append(est.fail)
        if step < config.warmup:
            up = rng.random() < config.strong_share
        else:
            up = est.gain >= quantile.quantile(1.0 - config.strong_share)
        quantile.add(est.gain)
        if up and rng.random() < config.explore:
            up = False
        strong.append(up)
        if up:
            continue  # the large model answered: production learns nothing about the small one
        slm_ok, llm_ok, large_weight = e.slm_ok, None, 1.0
        revealed["slm_ok"] += 1
        if not slm_ok:
            llm_ok = e.llm_ok  # escalated: the large model's answer is seen
            revealed["llm_ok_escalated"] += llm_ok is not None
        elif rng.random() < config.shadow_share:
            llm_ok = e.llm_ok
            large_weight = min(config.shadow_weight_cap, 1.0 / config.shadow_share)
            revealed["llm_ok_shadow"] += llm_ok is not None
        partition = hash_partition(e.group, config.partitions)
        learner.apply(Outcome(partition, offsets[partition], x, slm_ok, llm_ok, large_weight))
        offsets[partition] += 1

    n = len(order)
    half = n // 2
    small = [examples[i].slm_ok for i in order]
    large = [bool(examples[i].llm_ok) for i in order]

    def half_report(a: int, b: int) -> dict:
        s, l_, g, f, up = small[a:b], large[a:b], gains[a:b], fails[a:b], strong[a:b]
        acc = sum(l_[k] if up[k] else s[k] for k in range(b - a)) / (b - a)
        return {
            "apgr": round(metrics.apgr(g, s, l_), 4),
            "apgr_fail_score": round(metrics.apgr(f, s, l_), 4),
            "strong_share": round(sum(up) / (b - a), 4),
            "routed_accuracy": round(acc, 4),
        }

    first, last = half_report(0, half), half_report(half, n)
    return {
        "rows": n,
        "seed": seed,
        "apgr_first_half": first["apgr"],
        "apgr_last_half": last["apgr"],
        "first_half": first,
        "last_half": last,
        "labels_revealed": revealed,
        "learner": {"applied": learner.applied, "skipped": learner.skipped},
        "config": config.__dict__,
        "feature_set": fs.to_json(),
    }


def hash_partition(key: str, partitions: int) -> int:
    return stable_hash(key) % partitions
