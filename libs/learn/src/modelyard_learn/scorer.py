"""The serving fast path: a model's two heads scored in one pass over the words, pure Python.

A word's own features (its unigram and character n-grams) depend only on the word, so their summed
weights per head, and the word's part of a bigram's index, are computed once per distinct word and kept
in bounded caches; a query then costs a few ``map``/``sum`` passes over its words (they run in C, not
the interpreter), one lookup per word bigram, and a handful of lookups for the named features. The
caches belong to one set of weights: a new model is a new ``Scorer`` (cheap to build).

Besides the estimate, a score names what moved it: the ``k`` words, bigrams and named features
(keyword factors, context, the tenant's correction) whose weights moved P(small fails) most, with
their effect on its logit (positive: raised it). Every occurrence of a word is a candidate of its
own; ties are broken by effect, then name.
"""

from __future__ import annotations

import math
from itertools import islice
from operator import xor
from typing import NamedTuple

from .blocks import label
from .features import _GOLDEN, _PAIR_SALT, Query, stable_hash
from .linear import sigmoid
from .model import HEADS, Estimate, RouterModel


_UNSEEN = object()


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
        # Per distinct word, one dict per field so that a query's sums are ``sum(map(d.__getitem__, words))``:
        # the summed small_ok / large_ok weights of its own features, its part of a bigram's index as the
        # first and as the second word (``pair_hash`` is ``(first * G) ^ (second + S)``; masking each part
        # masks the xor), and the size of its small_ok sum (how it ranks as a mover).
        self._small: dict[str, float] = {}
        self._large: dict[str, float] = {}
        self._first: dict[str, int] = {}
        self._second: dict[str, int] = {}
        self._size: dict[str, float] = {}
        self._names: dict[str, tuple[float, float, str] | None] = {}  # named feature -> its weights and label
        self._cache_size = cache_size
        self._movers = movers
        self._bias = self.weights.get(self.featurizer.bias_index, self._zero)

    def _learn_words(self, words: list[str]) -> None:
        """Fill the word caches for the words of one query that they miss."""
        distinct = list(dict.fromkeys(words))
        new = [w for w in distinct if w not in self._small]
        if len(self._small) + len(new) > self._cache_size:  # hostile text full of new words cannot grow it forever
            for cache in (self._small, self._large, self._first, self._second, self._size):
                cache.clear()
            new = distinct  # a query's own words stay: the caches may exceed the size by one query's words
        get, zero, mask = self.weights.get, self._zero, self.mask
        featurizer = self.featurizer
        for word in new:
            s = g = 0.0
            for i, v in featurizer.word_indices(word):
                w = get(i, zero)
                s += w[0] * v
                g += w[1] * v
            h = featurizer.word_hash(word)
            self._small[word] = s
            self._large[word] = g
            self._first[word] = (h * _GOLDEN) & mask
            self._second[word] = (h + _PAIR_SALT) & mask
            self._size[word] = s if s > 0 else -s

    def _named(self, name: str) -> tuple[float, float, str] | None:
        if len(self._names) >= 10_000:  # tenant ids and roles are open-ended: stay bounded
            self._names.clear()
        w = self.weights.get(stable_hash(name) & self.mask)
        found = self._names[name] = None if w is None else (w[0], w[1], label(name))
        return found

    def score(self, query: Query, words: list[str] | None = None) -> Scored:
        """``words``: the query's tokens if the caller already has them (the keyword analysis does)."""
        max_words = self.featurizer.fs.max_words
        if words is None:
            words = self.featurizer.tokens(query.text)
        elif len(words) > max_words:
            words = words[:max_words]
        small = self._small
        try:
            s = sum(map(small.__getitem__, words))
        except KeyError:
            self._learn_words(words)
            s = sum(map(small.__getitem__, words))
        g = sum(map(self._large.__getitem__, words))
        k = self._movers
        # Movers, as (|effect|, effect, name, quoted) with effects on the logit of P(small fails) (minus the
        # small_ok weight), words and bigrams scaled by the length; the k largest are kept at the end.
        top: list[tuple[float, float, str, bool]] = []
        if words:
            scale = 1.0 / math.sqrt(len(words))
            floor = 0.0  # a word or bigram below the k-th largest word cannot be a mover
            if k:
                size = self._size.__getitem__
                ranked = sorted(words, key=size, reverse=True)  # the scale is common to all words: same order
                cut = min(k, len(ranked))
                last = size(ranked[cut - 1])
                while cut < len(ranked) and size(ranked[cut]) == last:  # ties at the k-th place: the final sort breaks them
                    cut += 1
                for word in ranked[:cut]:
                    e = small[word]
                    if e:
                        top.append(((e if e > 0 else -e) * scale, -e * scale, word, True))
                if len(top) >= k:
                    floor = top[-1][0]
            if self._bigrams and len(words) > 1:
                # Each bigram's index from its words' parts; most bigrams have no weight.
                pairs = list(map(self.weights.get, map(xor, map(self._first.__getitem__, words),
                                                       map(self._second.__getitem__, islice(words, 1, None)))))
                i = -1
                for w in pairs:
                    i += 1
                    if w is not None:
                        e = w[0]
                        s += e
                        g += w[1]
                        if e and k:
                            m = (e if e > 0 else -e) * scale
                            if m >= floor:
                                top.append((m, -e * scale, words[i] + " " + words[i + 1], True))
            s *= scale
            g *= scale
        tenant_shift = 0.0
        tenant_name = "tenant " + query.tenant if query.tenant else None
        names = self._names
        for name, v in self.featurizer.named(query).items():
            found = names.get(name, _UNSEEN)
            if found is _UNSEEN:
                found = self._named(name)
            if found is not None:
                e = found[0] * v
                s += e
                g += found[1] * v
                if e:
                    if name == tenant_name:
                        tenant_shift = -e
                    if k:
                        top.append((e if e > 0 else -e, -e, found[2], False))
        top.sort(reverse=True)
        movers = [(f"'{name}'" if quoted else name, effect) for _, effect, name, quoted in top[:k]]
        b = self._bias
        return Scored(Estimate(sigmoid(s + b[0]), sigmoid(g + b[1])), movers, tenant_shift)
