"""Features of a query for the learned router: named blocks of hashed, sparse ``{index: value}`` features.

A ``FeatureSet`` is the list of blocks a model uses, with each block's parameters; it is stored in the
model file, so scoring repeats training exactly, and a file naming a block this version does not know
is refused with a message naming it (adding a block is not a format change). The blocks
(``blocks.py``):

- ``words``: lower-cased word unigrams and, with ``ngrams: 2``, bigrams;
- ``chars``: character n-grams inside ``<word>``, at ``weight`` of a word;
- ``structure``: question shape (answer options, numbers, formulas, negation, questions, length);
- ``context``: user role, agent type, conversation-history bucket;
- ``factors``: the router's keyword analysis, factor by factor (``Query.factors``);
- ``domain``: one constant feature naming the traffic's domain;
- ``tenant``: one bias per tenant, the online learner's per-tenant correction.

Text features are either *word-local* (a function of one word: its unigram, its character n-grams) or
word pairs (bigrams); both are summed over the words and scaled by ``1 / sqrt(number of words)``, so long
prompts do not dominate. Word-local features are what lets ``Scorer`` cache a word's summed weight.
The other blocks give a few *named* features per query.

Every index is a stable hash (``zlib.crc32`` of the feature's name, never Python's salted ``hash()``)
into ``2 ** dim_bits`` buckets: a model trained on one machine scores the same on another; a collision
costs a little accuracy, never an error.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from . import blocks as _blocks

#: The keyword analysis's tokenisation: runs of ASCII letters and digits in the lower-cased text.
WORD = re.compile(r"[a-z0-9]+")

_GOLDEN = 0x9E3779B1
_PAIR_SALT = 0x7F4A7C15
_MASK32 = 0xFFFFFFFF


def stable_hash(text: str) -> int:
    """32-bit CRC of the UTF-8 text: the same on every machine and Python version."""
    return zlib.crc32(text.encode("utf-8"))


def pair_hash(first: int, second: int) -> int:
    """A bigram's hash from its two words' hashes: integer arithmetic, no string is built."""
    return ((first * _GOLDEN) ^ (second + _PAIR_SALT)) & _MASK32


@dataclass
class Query:
    """One query as the router sees it. ``factors``, ``level`` and ``incident`` are what the router's
    keyword analysis says of it (its points per factor, its level, whether it is an incident): the
    factors are features, the level and the incident are used by the routing rule (``routing.py``)."""

    text: str
    user_role: str | None = None
    agent_type: str | None = None
    history_turns: int = 0
    factors: Mapping[str, float] = field(default_factory=dict)
    tenant: str | None = None
    level: str | None = None
    incident: bool = False


class QueryView(NamedTuple):
    """What scoring reads of a query, as a named tuple: the router builds one per decision with ``tuple.__new__``
    (a ``Query``'s dataclass ``__init__`` costs several times more). The named blocks read either."""

    text: str
    user_role: str | None
    agent_type: str | None
    history_turns: int
    factors: Mapping[str, float]
    tenant: str | None


class Keywords(NamedTuple):
    """The keyword analysis of one query, as the router's ``complexity`` module gives it."""

    factors: Mapping[str, float]
    level: str | None = None
    incident: bool = False


#: (text, user_role, history_turns, agent_type) -> the keyword analysis; the application wires the router's.
Analyze = Callable[[str, "str | None", int, "str | None"], Keywords]


@dataclass(frozen=True)
class FeatureSet:
    """The blocks a model uses (in order) and the hashed space they share."""

    blocks: tuple[_blocks.Block, ...]
    dim_bits: int = 20
    max_words: int = 400  # words beyond this many are not featurised (bounds the cost of long prompts)

    def __post_init__(self) -> None:
        names = [b.name for b in self.blocks]
        if len(set(names)) != len(names):
            raise ValueError(f"a feature block appears twice in {names}")
        if not 8 <= self.dim_bits <= 24:
            raise ValueError("dim_bits must be between 8 and 24")

    @classmethod
    def build(
        cls,
        *,
        ngrams: int = 2,
        chars: tuple[int, int] | None = (3, 5),
        char_weight: float = 0.15,
        structure: bool = True,
        context: bool = True,
        factors: bool = True,
        domain: str | None = None,
        tenant: bool = False,
        dim_bits: int = 20,
        max_words: int = 400,
    ) -> FeatureSet:
        """The usual blocks by keyword (what the recipes and tests use)."""
        chosen: list[_blocks.Block] = [_blocks.Words(ngrams=ngrams)]
        if chars is not None:
            chosen.append(_blocks.Chars(min=chars[0], max=chars[1], weight=char_weight))
        if structure:
            chosen.append(_blocks.Structure())
        if context:
            chosen.append(_blocks.Context())
        if factors:
            chosen.append(_blocks.Factors())
        if domain:
            chosen.append(_blocks.Domain(value=domain))
        if tenant:
            chosen.append(_blocks.Tenant())
        return cls(tuple(chosen), dim_bits=dim_bits, max_words=max_words)

    def block(self, name: str) -> _blocks.Block | None:
        return next((b for b in self.blocks if b.name == name), None)

    def with_tenant(self, value: float = 1.0) -> FeatureSet:
        """The same features plus the per-tenant bias (the online learner's copy)."""
        if self.block("tenant") is not None:
            return self
        return FeatureSet((*self.blocks, _blocks.Tenant(value=value)), self.dim_bits, self.max_words)

    def to_json(self) -> dict:
        return {"dim_bits": self.dim_bits, "max_words": self.max_words,
                "blocks": {b.name: b.params() for b in self.blocks}}

    @classmethod
    def from_json(cls, obj: Mapping) -> FeatureSet:
        unknown = set(obj) - {"dim_bits", "max_words", "blocks"}
        if unknown:
            raise ValueError(f"unknown feature-set fields {sorted(unknown)}")
        specs = obj.get("blocks")
        if not isinstance(specs, Mapping) or not specs:
            raise ValueError("the feature set names no blocks")
        return cls(tuple(_blocks.from_json(name, params) for name, params in specs.items()),
                   dim_bits=int(obj.get("dim_bits", 20)), max_words=int(obj.get("max_words", 400)))


class Featurizer:
    """Turns a ``Query`` into sparse features. Pure: the same query gives the same features anywhere."""

    def __init__(self, feature_set: FeatureSet) -> None:
        self.fs = feature_set
        self.mask = (1 << feature_set.dim_bits) - 1
        words = feature_set.block("words")
        self._unigrams = words is not None
        self.bigrams = words is not None and words.ngrams >= 2
        self._word_blocks = [b for b in feature_set.blocks if b.word_local]
        self._named_blocks = [b for b in feature_set.blocks if not b.word_local and b.name != "words"]  # words: the featurizer's own
        self.bias_index = stable_hash("bias") & self.mask
        self._name_index: dict[str, int] = {}  # named feature -> index, so a decision hashes no name twice

    # --- pieces the scorer reuses ------------------------------------------------------------------

    def tokens(self, text: str) -> list[str]:
        return WORD.findall(text.lower())[: self.fs.max_words]

    @staticmethod
    def word_hash(word: str) -> int:
        return stable_hash("w " + word)

    def word_indices(self, word: str) -> list[tuple[int, float]]:
        """(index, value) of a word's own features (unigram, character n-grams, ...), per occurrence."""
        mask = self.mask
        out = [(self.word_hash(word) & mask, 1.0)] if self._unigrams else []
        for block in self._word_blocks:
            out += [(stable_hash(name) & mask, value) for name, value in block.word_features(word)]
        return out

    def named(self, query: Query | QueryView) -> dict[str, float]:
        out: dict[str, float] = {}
        for block in self._named_blocks:
            block.named_features(query, out)
        return out

    def dense_features(self, query: Query) -> dict[int, float]:
        """The named features (structure, context, factors, ...) by index."""
        out: dict[int, float] = {}
        indices = self._name_index
        for name, value in self.named(query).items():
            index = indices.get(name)
            if index is None:
                if len(indices) >= 10_000:  # tenant ids and roles are open-ended: stay bounded
                    indices.clear()
                index = indices[name] = stable_hash(name) & self.mask
            out[index] = out.get(index, 0.0) + value
        return out

    # --- the whole vector (training, explanation) --------------------------------------------------

    def features(self, query: Query) -> dict[int, float]:
        words = self.tokens(query.text)
        out: dict[int, float] = {}
        if words:
            scale = 1.0 / math.sqrt(len(words))
            for word in words:
                for index, value in self.word_indices(word):
                    out[index] = out.get(index, 0.0) + scale * value
            if self.bigrams:
                mask = self.mask
                hashes = [self.word_hash(w) for w in words]
                for a, b in zip(hashes, hashes[1:]):
                    index = pair_hash(a, b) & mask
                    out[index] = out.get(index, 0.0) + scale
        for index, value in self.dense_features(query).items():
            out[index] = out.get(index, 0.0) + value
        out[self.bias_index] = out.get(self.bias_index, 0.0) + 1.0
        return out

    def describe(self, query: Query) -> dict[int, str]:
        """Index -> a readable name for every feature of this query (for explanations; slow is fine)."""
        names: dict[int, str] = {}
        mask = self.mask
        words = self.tokens(query.text)
        for word in words:
            if self._unigrams:
                names.setdefault(self.word_hash(word) & mask, f"word '{word}'")
            for block in self._word_blocks:
                for name, _ in block.word_features(word):
                    names.setdefault(stable_hash(name) & mask, _blocks.label(name))
        if self.bigrams:
            for a, b in zip(words, words[1:]):
                names.setdefault(pair_hash(self.word_hash(a), self.word_hash(b)) & mask, f"words '{a} {b}'")
        for name in self.named(query):
            names[stable_hash(name) & mask] = _blocks.label(name)
        names[self.bias_index] = "bias"
        return names
