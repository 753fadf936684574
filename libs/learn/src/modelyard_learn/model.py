"""The learned router model: two logistic heads over one feature space, and how they combine.

- ``small_ok``: P(the small model answers right). The served ``score`` is ``fail = 1 - small_ok``,
  the estimated probability that the small model fails. Production labels: every query the small
  model answered (an escalation by the cascade = wrong; an accepted answer = right, a weaker label
  because the cascade accepts some wrong answers).
- ``large_ok``: P(the large model answers right). Production labels: escalated queries (the large
  model answered too) and shadow evaluation (a sampled share of accepted small answers also sent to
  the large model); a shadow label carries weight 1 / (shadow share), so the head sees small-right
  queries in their true proportion and is not just P(large right | small wrong).

``gain = large_ok - small_ok`` is the accuracy a query gains by going to the large model; routing on
it rather than on ``fail`` stops sending up queries that both models get wrong, and keeps those the
large model gets wrong and the small one right (measured for issue 16, docs/benchmarks.md: on unseen
MMLU subjects the difference of two unconditional heads ranks better than a product of conditional
heads).

A model is a ``FeatureSet`` plus the heads; ``modelfile.py`` saves and loads it, ``scorer.py``
scores it fast.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from .features import Featurizer, FeatureSet, Query
from .linear import FtrlLogistic

HEADS = ("small_ok", "large_ok")


@dataclass(frozen=True)
class Example:
    """One labelled query. ``llm_ok`` None: the large model's answer was not seen."""

    query: Query
    slm_ok: bool
    llm_ok: bool | None = None
    weight: float = 1.0
    group: str = ""  # an MMLU subject, a tenant: what a split keeps together
    level: str | None = None  # a helpdesk row's labelled level (simple, moderate, complex, critical)


class Estimate(NamedTuple):
    """A named tuple, not a dataclass: one is built per decision, and a frozen dataclass costs ~1 µs."""

    small_ok: float
    large_ok: float

    @property
    def fail(self) -> float:
        """The served score: P(the small model fails)."""
        return 1.0 - self.small_ok

    @property
    def gain(self) -> float:
        """Expected accuracy gained by sending this query to the large model."""
        return self.large_ok - self.small_ok


class RouterModel:
    def __init__(self, feature_set: FeatureSet, heads: Mapping[str, FtrlLogistic] | None = None, hyper: Mapping | None = None) -> None:
        self.feature_set = feature_set
        self.featurizer = Featurizer(feature_set)
        hyper = dict(hyper or {})
        self.heads: dict[str, FtrlLogistic] = dict(heads) if heads else {name: FtrlLogistic(**hyper) for name in HEADS}
        if set(self.heads) != set(HEADS):
            raise ValueError(f"a router model has the heads {HEADS}, not {sorted(self.heads)}")

    # --- scoring (slow path: the whole feature dict; ``Scorer`` is the fast one) --------------------

    def estimate(self, query: Query) -> Estimate:
        x = self.featurizer.features(query)
        return self.estimate_features(x)

    def estimate_features(self, x: Mapping[int, float]) -> Estimate:
        h = self.heads
        return Estimate(h["small_ok"].predict(x), h["large_ok"].predict(x))

    # --- learning ----------------------------------------------------------------------------------

    def learn_features(
        self,
        x: Mapping[int, float],
        slm_ok: bool | None,
        llm_ok: bool | None,
        weight: float = 1.0,
        small_weight: float = 1.0,
        large_weight: float = 1.0,
    ) -> None:
        """One outcome. None: that model's answer was not seen. ``small_weight``: e.g. below 1 for an answer the
        cascade accepted (a weaker label); ``large_weight``: e.g. 1 / sampling rate of a shadow label."""
        if slm_ok is not None:
            self.heads["small_ok"].update(x, slm_ok, weight * small_weight)
        if llm_ok is not None:
            self.heads["large_ok"].update(x, llm_ok, weight * large_weight)

    def learn(self, example: Example, accepted_weight: float = 1.0) -> None:
        small_weight = accepted_weight if example.slm_ok else 1.0
        self.learn_features(self.featurizer.features(example.query), example.slm_ok, example.llm_ok, example.weight, small_weight)

    def fit(self, examples: Iterable[Example], epochs: int = 3, seed: int = 0, balance_by_group: float = 0.0) -> RouterModel:
        """Batch training: ``epochs`` shuffled passes of the same online updates.

        ``balance_by_group`` = b weights each example by 1 / (its group's size) ** b (renormalised),
        so one big group (an MMLU subject with 1,500 rows) does not decide what the model learns.
        """
        examples = list(examples)
        weights = [e.weight for e in examples]
        if balance_by_group:
            sizes: dict[str, int] = {}
            for e in examples:
                sizes[e.group] = sizes.get(e.group, 0) + 1
            raw = [w / sizes[e.group] ** balance_by_group for w, e in zip(weights, examples)]
            scale = len(raw) / sum(raw)
            weights = [w * scale for w in raw]
        featurized = [self.featurizer.features(e.query) for e in examples]
        order = list(range(len(examples)))
        rng = random.Random(seed)
        for _ in range(epochs):
            rng.shuffle(order)
            for i in order:
                e = examples[i]
                self.learn_features(featurized[i], e.slm_ok, e.llm_ok, weights[i])
        return self

    def top_contributions(self, query: Query, head: str = "small_ok", k: int = 3) -> list[tuple[str, float]]:
        """The features that moved ``head``'s margin most, by name (negative on small_ok = raised P(fail))."""
        x = self.featurizer.features(query)
        names = self.featurizer.describe(query)
        weights = self.heads[head].weights
        contrib: dict[str, float] = {}
        for i, v in x.items():
            w = weights.get(i)
            if w and i != self.featurizer.bias_index:
                name = names.get(i, f"feature {i}")
                contrib[name] = contrib.get(name, 0.0) + w * v
        return sorted(contrib.items(), key=lambda kv: -abs(kv[1]))[:k]
