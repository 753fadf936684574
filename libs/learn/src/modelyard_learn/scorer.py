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

    def _named(self, name: str) -> tuple[int, str]:
        found = self._names.get(name)
        if found is None:
            if len(self._names) >= 10_000:  # tenant ids and roles are open-ended: stay bounded
                self._names.clear()
            found = self._names[name] = (stable_hash(name) & self.mask, label(name))
        return found

    def score(self, query: Query, words: list[str] | None = None) -> Scored:
        """``words``: the query's tokens if the caller already has them (the keyword analysis does)."""
        max_words = self.featurizer.fs.max_words
        if words is None:
            words = self.featurizer.tokens(query.text)
        elif len(words) > max_words:
            words = words[:max_words]
        cache, get, mask = self._words, self.weights.get, self.mask
        scale = 1.0 / math.sqrt(len(words)) if words else 0.0
        s = g = 0.0
        # The k features that moved P(small fails) most, kept as we go: (|effect|, effect, name, quoted). A feature
        # is compared with the smallest of them (``floor``) and only one that beats it is inserted; effects are on
        # the logit of P(small fails) (minus the small_ok weight), words and bigrams scaled by the length.
        k = self._movers
        top: list[tuple[float, float, str, bool]] = []
        floor = 0.0 if k else float("inf")
        prev = -1
        prev_word = ""
        bigrams = self._bigrams
        for word in words:
            entry = cache.get(word) or self._word(word)
            e = entry[0]
            s += e
            g += entry[1]
            m = (e if e > 0 else -e) * scale
            if m > floor:
                top.append((m, -e * scale, word, True))
                if len(top) > k:
                    top.sort(reverse=True)
                    del top[k:]
                    floor = top[-1][0]
            if bigrams:
                if prev >= 0:
                    w = get(((prev * _GOLDEN) ^ (entry[2] + _PAIR_SALT)) & mask)  # pair_hash, inlined
                    if w is not None:  # most bigrams have no weight
                        e = w[0]
                        s += e
                        g += w[1]
                        m = (e if e > 0 else -e) * scale
                        if m > floor:
                            top.append((m, -e * scale, prev_word + " " + word, True))
                            if len(top) > k:
                                top.sort(reverse=True)
                                del top[k:]
                                floor = top[-1][0]
                prev = entry[2]
                prev_word = word
        s *= scale
        g *= scale
        tenant_shift = 0.0
        tenant_name = "tenant " + query.tenant if query.tenant else None
        names = self._names
        for name, v in self.featurizer.named(query).items():
            found = names.get(name) or self._named(name)
            w = get(found[0])
            if w is not None:
                e = w[0] * v
                s += e
                g += w[1] * v
                if e:
                    if name == tenant_name:
                        tenant_shift = -e
                    m = e if e > 0 else -e
                    if m > floor:
                        top.append((m, -e, found[1], False))
                        if len(top) > k:
                            top.sort(reverse=True)
                            del top[k:]
                            floor = top[-1][0]
        top.sort(reverse=True)
        movers = [(f"'{name}'" if quoted else name, effect) for _, effect, name, quoted in top]
        b = self._bias
        return Scored(Estimate(sigmoid(s + b[0]), sigmoid(g + b[1])), movers, tenant_shift)
