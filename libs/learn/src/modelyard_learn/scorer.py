"""The serving fast path: a model's two heads scored in one pass over the words, pure Python.

A word's own features (its unigram and character n-grams) depend only on the word, so their summed
weights per head are computed once per distinct word and kept in a bounded cache; a query then costs
one cache lookup per word, one lookup per word bigram and a handful for the named features. The
cache belongs to one set of weights: a new model is a new ``Scorer`` (cheap to build).

Besides the estimate, a score names what moved it: the ``k`` words, bigrams and named features
(keyword factors, context, the tenant's correction) whose weights moved P(small fails) most, with
their effect on its logit (positive: raised it).
"""

from __future__ import annotations

import math
from heapq import nlargest
from typing import NamedTuple

from .blocks import label
from .features import _GOLDEN, _PAIR_SALT, Query, stable_hash
from .linear import sigmoid
from .model import HEADS, Estimate, RouterModel


class Scored(NamedTuple):
    estimate: Estimate
    movers: list[tuple[str, float]]  # (feature, effect on the logit of P(small fails)), largest |effect| first
    tenant_shift: float  # effect of the tenant's learned correction on that logit (0: none)


class Scorer:
    def __init__(self, model: RouterModel, cache_size: int = 100_000, movers: int = 3) -> None:
        self.model = model
        self.featurizer = model.featurizer
        self.mask = self.featurizer.mask
        # One dict index -> (small_ok, large_ok) weights: one lookup per feature for both heads.
        merged: dict[int, list[float]] = {}
        for k, name in enumerate(HEADS):
            for i, w in model.heads[name].weights.items():
                merged.setdefault(i, [0.0, 0.0])[k] = w
        self.weights: dict[int, tuple[float, float]] = {i: (v[0], v[1]) for i, v in merged.items()}
        self._zero = (0.0, 0.0)
        self._bigrams = self.featurizer.bigrams
        self._words: dict[str, tuple[float, float, int]] = {}
        self._names: dict[str, int] = {}
        self._cache_size = cache_size
        self._movers = movers
        self._bias = self.weights.get(self.featurizer.bias_index, self._zero)

    def _word(self, word: str) -> tuple[float, float, int]:
        get, zero = self.weights.get, self._zero
        s = g = 0.0
        for i, v in self.featurizer.word_indices(word):
            w = get(i, zero)
            s += w[0] * v
            g += w[1] * v
        entry = (s, g, self.featurizer.word_hash(word))
        if len(self._words) >= self._cache_size:  # hostile text full of new words cannot grow it forever
            self._words.clear()
        self._words[word] = entry
        return entry

    def _index(self, name: str) -> int:
        index = self._names.get(name)
        if index is None:
            if len(self._names) >= 10_000:  # tenant ids and roles are open-ended: stay bounded
                self._names.clear()
            index = self._names[name] = stable_hash(name) & self.mask
        return index

    def score(self, query: Query, words: list[str] | None = None) -> Scored:
        """``words``: the query's tokens if the caller already has them (the keyword analysis does)."""
        max_words = self.featurizer.fs.max_words
        if words is None:
            words = self.featurizer.tokens(query.text)
        elif len(words) > max_words:
            words = words[:max_words]
        cache, get, mask = self._words, self.weights.get, self.mask
        s = g = 0.0
        effects: dict[str, float] = {}  # feature -> its small_ok margin, before the length scale
        prev = -1
        prev_word = ""
        bigrams = self._bigrams
        for word in words:
            entry = cache.get(word) or self._word(word)
            s += entry[0]
            g += entry[1]
            if entry[0]:
                effects[word] = effects.get(word, 0.0) + entry[0]
            if bigrams:
                if prev >= 0:
                    w = get(((prev * _GOLDEN) ^ (entry[2] + _PAIR_SALT)) & mask)  # pair_hash, inlined
                    if w is not None:  # most bigrams have no weight
                        s += w[0]
                        g += w[1]
                        pair = prev_word + " " + word
                        effects[pair] = effects.get(pair, 0.0) + w[0]
                prev = entry[2]
                prev_word = word
        scale = 1.0 / math.sqrt(len(words)) if words else 0.0
        s *= scale
        g *= scale
        movers = [(f"'{w}'", -e * scale) for w, e in effects.items()]
        tenant_shift = 0.0
        for name, v in self.featurizer.named(query).items():
            w = get(self._index(name))
            if w is not None:
                s += w[0] * v
                g += w[1] * v
                if w[0]:
                    movers.append((label(name), -w[0] * v))
                    if name.startswith("tenant "):
                        tenant_shift = -w[0] * v
        b = self._bias
        top = nlargest(self._movers, movers, key=_magnitude) if self._movers else []
        return Scored(Estimate(sigmoid(s + b[0]), sigmoid(g + b[1])), top, tenant_shift)


def _magnitude(item: tuple[str, float]) -> float:
    return abs(item[1])
