"""Learning from outcomes: the online learner and the prequential replay behind
``modelyard eval-router --online``.

``OnlineLearner`` applies outcome events to a ``RouterModel`` exactly once: each event carries its
(topic partition, offset) and the learner keeps the highest applied offset per partition (a
watermark), saved in the same checkpoint as the weights, so a redelivered event or a replay after a
restart or a rebalance changes nothing. Memory is bounded: a cap on optimiser coordinates per head,
one integer per partition, a bounded window of recent event ids and of tenant counts.

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
    """What happened to one routed query: labels for the two heads, and where the event was read."""

    source: str  # the topic partition it was read from ("queries.outcomes/3"): offsets count per source
    offset: int
    features: Mapping[int, float]
    slm_ok: bool | None  # None: the small model's answer was not judged
    llm_ok: bool | None  # None: the large model's answer was not seen or not judged
    small_weight: float = 1.0  # an accepted answer is a weaker label than an escalated one
    large_weight: float = 1.0  # a shadow label: 1 / the shadow sampling share
    tenant: str | None = None
    event_id: str | None = None  # a duplicate of an event already applied (at another offset) is skipped


class OnlineLearner:
    """A model learning from outcomes exactly once, with bounded memory.

    Exactly once: per source, the highest applied offset (its watermark) and the ids of the last
    ``recent_ids`` events are kept with the weights in one checkpoint; an event at or below its
    source's watermark, or with an id seen recently (the same event published twice), is skipped.
    Bounded memory: ``prune`` keeps at most ``max_coordinates`` optimiser coordinates per head, dropping
    the coordinates that carry no weight and were seen least first; at most ``max_tenants`` tenants are
    counted.
    """

    def __init__(self, model: RouterModel, *, recent_ids: int = 20_000, max_tenants: int = 10_000) -> None:
        self.model = model
        self.watermarks: dict[str, int] = {}
        self.recent: deque[str] = deque(maxlen=recent_ids)
        self._recent_set: set[str] = set()
        self.tenant_outcomes: dict[str, int] = {}
        self.max_tenants = max_tenants
        self.applied = 0
        self.skipped = 0

    def seen(self, outcome: Outcome) -> bool:
        return outcome.offset <= self.watermarks.get(outcome.source, -1) or (
            outcome.event_id is not None and outcome.event_id in self._recent_set)

    def advance(self, source: str, offset: int) -> None:
        """Record that everything of ``source`` up to ``offset`` is done (events that carried no label too)."""
        if offset > self.watermarks.get(source, -1):
            self.watermarks[source] = offset

    def apply(self, outcome: Outcome) -> bool:
        """Learn from one outcome unless it was applied before; True if it was applied now."""
        if self.seen(outcome):
            self.skipped += 1
            return False
        self.model.learn_features(outcome.features, outcome.slm_ok, outcome.llm_ok, small_weight=outcome.small_weight,
                                  large_weight=outcome.large_weight)
        self.advance(outcome.source, outcome.offset)
        if outcome.event_id is not None:
            if len(self.recent) == self.recent.maxlen:
                self._recent_set.discard(self.recent[0])
            self.recent.append(outcome.event_id)
            self._recent_set.add(outcome.event_id)
        if outcome.tenant:
            counts = self.tenant_outcomes
            counts[outcome.tenant] = counts.get(outcome.tenant, 0) + 1
            if len(counts) > self.max_tenants:  # forget the tenants with the fewest outcomes
                for tenant in sorted(counts, key=counts.__getitem__)[: len(counts) - self.max_tenants]:
                    del counts[tenant]
        self.applied += 1
        return True

    def prune(self, max_coordinates: int) -> int:
        """Keep at most ``max_coordinates`` coordinates per head; returns how many were dropped."""
        dropped = 0
        for head in self.model.heads.values():
            excess = len(head.n) - max_coordinates
            if excess <= 0:
                continue
            keep = max_coordinates * 9 // 10  # prune to 90%, so pruning is rare
            unused = sorted((i for i in head.n if i not in head.weights), key=head.n.__getitem__)
            used = sorted(head.weights, key=lambda i: abs(head.weights[i]))
            for i in (unused + used)[: len(head.n) - keep]:
                head.n.pop(i, None)
                head.z.pop(i, None)
                head.weights.pop(i, None)
                dropped += 1
        return dropped

    def state(self) -> dict:
        return {"watermarks": dict(self.watermarks), "recent_ids": list(self.recent),
                "tenant_outcomes": dict(self.tenant_outcomes), "applied": self.applied}

    def checkpoint(self, **meta) -> dict:
        """Weights, optimiser state, watermarks and recent ids in one document: stored at once, they stay consistent."""
        from .modelfile import to_json

        doc = to_json(self.model, with_optimizer=True, **meta)
        doc["online"] = self.state()
        return doc

    def snapshot(self, **meta) -> dict:
        """What routers serve: the weights (no optimiser state) and how many outcomes each tenant taught."""
        from .modelfile import to_json

        doc = to_json(self.model, **meta)
        doc["online"] = {"tenant_outcomes": dict(self.tenant_outcomes), "applied": self.applied}
        return doc

    @classmethod
    def restore(cls, doc: Mapping, **options) -> OnlineLearner:
        from .modelfile import from_json

        online = doc.get("online", {})
        learner = cls(from_json(doc), **options)
        learner.watermarks = {str(p): int(o) for p, o in online.get("watermarks", {}).items()}
        for event_id in online.get("recent_ids", ()):
            learner.recent.append(event_id)
        learner._recent_set = set(learner.recent)
        learner.tenant_outcomes = {str(t): int(n) for t, n in online.get("tenant_outcomes", {}).items()}
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
    order = replay_order(len(examples), rng)  # the same rng then draws the routing's randomness
    fs = feature_set.with_tenant() if config.tenant_correction else feature_set
    model = model or RouterModel(fs, hyper=hyper)
    learner = OnlineLearner(model)
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
        small_weight = config.accepted_weight if slm_ok else 1.0
        learner.apply(Outcome(str(partition), offsets[partition], x, slm_ok, llm_ok, small_weight, large_weight))
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


def replay_order(n: int, rng: random.Random) -> list[int]:
    """The order ``replay`` visits ``n`` examples in: with a fresh ``random.Random(seed)``, the order of that seed's
    replay (to score something else on the same halves)."""
    order = list(range(n))
    rng.shuffle(order)
    return order


def hash_partition(key: str, partitions: int) -> int:
    return stable_hash(key) % partitions
