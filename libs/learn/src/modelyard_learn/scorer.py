"""The serving fast path: a model's two heads scored in one pass over the words, pure Python.

A word's own features (its unigram and character n-grams) depend only on the word, so their summed
weights per head, and the word's part of a bigram's index, are computed once per distinct word and kept
in a bounded cache; a query then costs one cache lookup per word, one weight lookup per word bigram and
a handful for the named features, all in ``map``/``sum``/``sorted`` passes that run in C rather than
in the interpreter (a loop in Python costs several times more per word).

The two heads' weights of a feature are kept as one complex number, ``small_ok + 1j * large_ok``: one
``sum`` adds both heads at once, each part in the same order as two float sums would. The caches belong
to one set of weights: a new model is a new ``Scorer`` (cheap to build).

Besides the estimate, a score names what moved it: the ``k`` words, bigrams and named features
(keyword factors, context, the tenant's correction) whose weights moved P(small fails) most, with
their effect on its logit (positive: raised it). Every occurrence of a word is a candidate of its
own; ties are broken by effect, then name.
"""

from __future__ import annotations

import math
from math import exp
from itertools import islice
from operator import attrgetter, itemgetter
from typing import NamedTuple

from .blocks import label
from .features import _GOLDEN, _PAIR_SALT, Query, QueryView, stable_hash
from .model import HEADS, Estimate, RouterModel

#: A cached word's record: (|small_ok sum|, the word, both heads' summed weights, the word quoted for a reason, the
#: weights of the bigrams it starts, by next word).
_SIZE, _WEIGHT, _NEXT = itemgetter(0), itemgetter(2), itemgetter(4)
_getitem = dict.__getitem__  # called on a ``_NextWords``: its ``__missing__`` fills a miss
_REAL = attrgetter("real")
#: A mover candidate is (|effect|, effect, name, quoted, shown): the first four order it as before, ``shown`` is
#: what the reason prints (the name, quoted for words and bigrams).
_SHOWN_EFFECT = itemgetter(4, 1)
_new = tuple.__new__


class _NamedWeights(dict):
    """Named feature -> (small_ok weight, large_ok weight, readable label), None when the model has no weight for
    it; filled on first sight of a name (one lookup per feature, no "seen?" test), bounded (tenant ids and roles
    are open-ended)."""

    def __init__(self, weights: dict[int, complex], mask: int) -> None:
        super().__init__()
        self._weights, self._mask = weights, mask

    def __missing__(self, name: str) -> tuple[float, float, str] | None:
        if len(self) >= 10_000:
            self.clear()
        w = self._weights.get(stable_hash(name) & self._mask)
        found = self[name] = None if w is None else (w.real, w.imag, label(name))
        return found


class _Pairs:
    """What a word's ``_NextWords`` needs to fill a miss, and how many more bigram weights all of them may keep (the
    scorer empties its word cache, and with it every word's next words, when none are left)."""

    __slots__ = ("weights", "mask", "word_hash", "limit", "left")

    def __init__(self, weights: dict[int, complex], mask: int, word_hash, limit: int) -> None:
        self.weights, self.mask, self.word_hash, self.limit, self.left = weights, mask, word_hash, limit, limit


class _NextWords(dict):
    """Next word -> both heads' weights of the bigram (this word, next word), 0j when the model has none; filled on
    first sight of a pair. A bigram's index is an xor of the two words' hash parts, a new large int per pair: a
    lookup by the next word (a string whose hash is cached) costs half, in a ``map`` over the query's pairs."""

    __slots__ = ("_first", "_pairs")

    def __init__(self, first: int, pairs: _Pairs) -> None:
        super().__init__()
        self._first, self._pairs = first, pairs

    def __missing__(self, second: str) -> complex:
        pairs = self._pairs
        pairs.left -= 1
        w = self[second] = pairs.weights.get(self._first ^ ((pairs.word_hash(second) + _PAIR_SALT) & pairs.mask), 0j)
        return w


class Scored(NamedTuple):
    estimate: Estimate
    movers: list[tuple[str, float]]  # (feature, effect on the logit of P(small fails)), largest |effect| first
    tenant_shift: float  # effect of the tenant's learned correction on that logit (0: none)


class Scorer:
    def __init__(self, model: RouterModel, cache_size: int = 100_000, movers: int = 3) -> None:
        self.model = model
        self.featurizer = model.featurizer
        self.mask = self.featurizer.mask
        # One dict index -> small_ok + 1j * large_ok: one lookup per feature for both heads.
        merged: dict[int, list[float]] = {}
        for k, name in enumerate(HEADS):
            for i, w in model.heads[name].weights.items():
                merged.setdefault(i, [0.0, 0.0])[k] = w
        self.weights: dict[int, complex] = {i: complex(v[0], v[1]) for i, v in merged.items()}
        self._bigrams = self.featurizer.bigrams
        # Per distinct word, its record (``_SIZE`` ... above). ``pair_hash`` is ``(first * G) ^ (second + S)``:
        # masking each part masks the xor, so a bigram's index is the xor of its words' parts.
        self._words: dict[str, tuple[float, str, complex, str, _NextWords]] = {}
        self._pairs = _Pairs(self.weights, self.mask, self.featurizer.word_hash, 2 * cache_size)
        self._names = _NamedWeights(self.weights, self.mask)
        self._tenant_block = self.featurizer.fs.block("tenant") is not None
        self._cache_size = cache_size
        self._movers = movers
        self._max_words = self.featurizer.fs.max_words
        self._bias = self.weights.get(self.featurizer.bias_index, 0j)

    def _learn_words(self, words: list[str]) -> None:
        """Fill the word cache for the words of one query that it misses."""
        cache = self._words
        distinct = list(dict.fromkeys(words))
        new = [w for w in distinct if w not in cache]
        if len(cache) + len(new) > self._cache_size:  # hostile text full of new words cannot grow it forever
            cache.clear()
            self._pairs.left = self._pairs.limit  # the next words went with their words
            new = distinct  # a query's own words stay: the cache may exceed its size by one query's words
        get, mask, featurizer = self.weights.get, self.mask, self.featurizer
        for word in new:
            s = g = 0.0
            for i, v in featurizer.word_indices(word):
                w = get(i, 0j)
                s += w.real * v
                g += w.imag * v
            first = (featurizer.word_hash(word) * _GOLDEN) & mask  # its part of a bigram's index, as the first word
            cache[word] = (s if s > 0 else -s, word, complex(s, g), "'" + word + "'", _NextWords(first, self._pairs))

    def score(self, query: Query | QueryView, words: list[str] | None = None) -> Scored:
        """``words``: the query's tokens if the caller already has them (the keyword analysis does)."""
        if words is None:
            words = self.featurizer.tokens(query.text)
        elif len(words) > self._max_words:
            words = words[: self._max_words]
        if self._pairs.left <= 0:  # the words' next words are full: start again (both stay bounded)
            self._words.clear()
            self._pairs.left = self._pairs.limit
        try:
            records = list(map(self._words.__getitem__, words))
        except KeyError:
            self._learn_words(words)
            records = list(map(self._words.__getitem__, words))
        k = self._movers
        # Mover candidates (``_SHOWN_EFFECT`` above), effects on the logit of P(small fails) (minus the small_ok
        # weight), words and bigrams scaled by the length; the k largest are kept at the end.
        top: list[tuple[float, float, str, bool, str]] = []
        s = g = 0.0
        floor = 0.0  # a feature below the k-th largest word cannot be a mover
        if records:
            total = sum(map(_WEIGHT, records))
            scale = 1.0 / math.sqrt(len(records))
            if k:
                ranked = sorted(records, key=_SIZE, reverse=True)  # the scale is common to all words: same order
                cut = min(k, len(ranked))
                last = ranked[cut - 1][0]
                while cut < len(ranked) and ranked[cut][0] == last:  # ties at the k-th place: the final sort breaks them
                    cut += 1
                for size, word, w, shown, _ in ranked[:cut]:
                    e = w.real
                    if e:
                        top.append((size * scale, -e * scale, word, True, shown))
                if len(top) >= k:
                    floor = top[-1][0]
            if self._bigrams and len(records) > 1:
                # Each bigram's weights from its first word's next words; most bigrams have none (0j).
                pairs = list(map(_getitem, map(_NEXT, records), islice(words, 1, None)))
                weighted = list(filter(None, pairs))  # drops the 0j (no weight, or zero for both heads)
                if weighted:
                    total += sum(weighted)
                    # Only when one of them could be a mover, find which (by position, for its words).
                    if k and max(map(abs, map(_REAL, weighted))) * scale >= floor:
                        for i, w in enumerate(pairs):
                            if w.real:
                                e = w.real
                                m = (e if e > 0 else -e) * scale
                                if m >= floor:
                                    name = words[i] + " " + words[i + 1]
                                    top.append((m, -e * scale, name, True, "'" + name + "'"))
            s = total.real * scale
            g = total.imag * scale
        if not k:
            floor = math.inf  # no movers wanted: no named feature is a candidate
        names = self._names
        named = self.featurizer.named(query)
        for name, v in named.items():  # the hottest loop of a decision with named blocks: as few steps as it can
            found = names[name]
            if found is not None:
                real, imag, shown = found
                e = real * v
                s += e
                g += imag * v
                if e:
                    m = e if e > 0 else -e
                    if m >= floor:
                        top.append((m, -e, shown, False, shown))
        tenant_shift = 0.0
        if self._tenant_block and query.tenant:  # the tenant's learned correction, for the reasons
            name = "tenant " + query.tenant
            found = names[name] if name in named else None
            if found is not None:
                e = found[0] * named[name]
                if e:
                    tenant_shift = -e
        top.sort(reverse=True)
        movers = list(map(_SHOWN_EFFECT, top[:k]))
        b = self._bias
        # ``sigmoid`` inlined, and the named tuples built by ``tuple.__new__`` (their own ``__new__`` is Python code).
        margin = s + b.real
        small_ok = 1.0 / (1.0 + exp(-margin)) if margin >= 0 else (e := exp(margin)) / (1.0 + e)
        margin = g + b.imag
        large_ok = 1.0 / (1.0 + exp(-margin)) if margin >= 0 else (e := exp(margin)) / (1.0 + e)
        return _new(Scored, (_new(Estimate, (small_ok, large_ok)), movers, tenant_shift))
