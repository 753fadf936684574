"""The feature blocks a ``FeatureSet`` is made of, by name (the names and parameters the model file stores).

A block is either *word-local* (``word_features(word)``: the named features of one word, summed over
the query's words by the featurizer and cached per word by the scorer) or *named*
(``named_features(query, out)``: a few named features of the whole query). To add a block: a class
here with a new ``name``, registered in ``BLOCKS``; model files that do not name it are unchanged, and
an older reader refuses a file that does, naming the block.

Feature names are what gets hashed, so they are part of the format: a block never renames a feature.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from .features import Query, QueryView

_OPTION = re.compile(r"^\s*\(?([A-Ha-h])[.)]\s+(.*)$", re.MULTILINE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
#: Operators, ASCII and mathematical: also the router's keyword analysis counts them with this pattern (the ASCII
#: ones, in an ASCII text, through ``ASCII_KINDS``).
OPERATOR = re.compile(r"[=+*/^<>\u00d7\u00f7\u221a\u222b\u2211\u03c0\u2264\u2265\u00b1]")
_UPPER_WORD = re.compile(r"\b[A-Z]{3,}\b")
_NEGATION = re.compile(r"\b(?:NOT|EXCEPT|LEAST|FALSE|INCORRECT)\b")
_STATEMENTS = re.compile(r"(?:Statement|Scenario) \d \|")
#: Three capitals in a row are what an upper-case word and a negation both need. The two patterns above start with
#: ``\b``, which the regex engine tries at every position; finding ``AAA`` in the UTF-8 bytes with every capital
#: made ``A`` and every other byte a space costs a fifth of that (a multi-byte character's bytes are all >= 0x80).
#: For ASCII texts: the negation words, and bytes.translate's table turning every byte but [A-Za-z0-9_] into a space.
_NEGATIONS = frozenset((b"NOT", b"EXCEPT", b"LEAST", b"FALSE", b"INCORRECT"))
_NON_WORD_TO_SPACE = bytes(b if chr(b).isascii() and (chr(b).isalnum() or b == 0x5F) else 0x20 for b in range(256))
_CAPITALS = bytes(0x41 if 0x41 <= b <= 0x5A else 0x20 for b in range(256))
#: For ASCII texts, bytes.translate's table marking each byte's kind: a digit "0", an ASCII operator of ``OPERATOR``
#: "=", a capital "A", anything else a space; and ``_NUMBER`` on bytes (``\d`` is ``[0-9]`` in ASCII text; a
#: pattern that starts with one ``[0-9]`` lets the regex engine skip to the next digit, ``[0-9]+`` does not).
ASCII_KINDS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x3D if b in b"=+*/^<>" else 0x41 if 0x41 <= b <= 0x5A else 0x20
                    for b in range(256))
_ASCII_NUMBER = re.compile(rb"[0-9][0-9]*(?:[.,][0-9]+)?")


@dataclass(frozen=True)
class Block:
    name: ClassVar[str]
    word_local: ClassVar[bool] = False

    def params(self) -> dict:
        return asdict(self)

    def word_features(self, word: str) -> list[tuple[str, float]]:
        raise NotImplementedError

    def named_features(self, query: Query | QueryView, out: dict[str, float]) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Words(Block):
    """Word unigrams (``"w <word>"``) and, with ``ngrams`` 2, bigrams (hashed from the two words' hashes).
    The featurizer handles both itself (the scorer inlines the bigram hash)."""

    name: ClassVar[str] = "words"
    ngrams: int = 2

    def __post_init__(self) -> None:
        if self.ngrams not in (1, 2):
            raise ValueError("words.ngrams must be 1 or 2")

    def named_features(self, query: Query | QueryView, out: dict[str, float]) -> None:
        return None


@dataclass(frozen=True)
class Chars(Block):
    """Character n-grams of ``<word>`` (``"c <ngram>"``), each at ``weight`` of a word (measured: 1.0 overfits)."""

    name: ClassVar[str] = "chars"
    word_local: ClassVar[bool] = True
    min: int = 3
    max: int = 5
    weight: float = 0.15

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.max <= 8 or self.weight <= 0:
            raise ValueError("chars needs 1 <= min <= max <= 8 and weight > 0")

    def word_features(self, word: str) -> list[tuple[str, float]]:
        padded = "<" + word + ">"
        size, weight = len(padded), self.weight
        return [("c " + padded[i : i + n], weight) for n in range(self.min, self.max + 1) for i in range(size - n + 1)]


@dataclass(frozen=True)
class Structure(Block):
    """Question shape, independent of the words (``"s <name>"``)."""

    name: ClassVar[str] = "structure"

    def named_features(self, query: Query | QueryView, out: dict[str, float]) -> None:
        out.update(structure_features(query.text, _STRUCTURE_FEATURES))


@dataclass(frozen=True)
class Context(Block):
    """Who asks and where: ``"role <r>"``, ``"agent <a>"``, ``"history <bucket>"``."""

    name: ClassVar[str] = "context"

    def named_features(self, query: Query | QueryView, out: dict[str, float]) -> None:
        if query.user_role:
            out[_role_feature(query.user_role)] = 1.0
        if query.agent_type:
            out[_agent_feature(query.agent_type)] = 1.0
        turns = query.history_turns
        out[_NO_HISTORY if turns <= 0 else _HISTORY_FEATURES[history_bucket(turns)]] = 1.0


@dataclass(frozen=True)
class Factors(Block):
    """The keyword analysis's factors (``"factor <name>"``), points / 4 so values stay near 1."""

    name: ClassVar[str] = "factors"

    def named_features(self, query: Query | QueryView, out: dict[str, float]) -> None:
        names = _FACTOR_FEATURES
        for name, points in query.factors.items():
            if points:
                out[names[name]] = points / 4.0


@dataclass(frozen=True)
class Domain(Block):
    """A constant feature naming the traffic's domain (``"domain <value>"``)."""

    name: ClassVar[str] = "domain"
    value: str = ""

    def named_features(self, query: Query | QueryView, out: dict[str, float]) -> None:
        out["domain " + self.value] = 1.0


@dataclass(frozen=True)
class Tenant(Block):
    """One bias per tenant (``"tenant <id>"``): learned online from that tenant's outcomes only. ``value`` is the
    feature's value: FTRL moves a weight by about the same amount per step whatever the value, so a larger value
    lets a tenant's correction catch up faster with what its outcomes say."""

    name: ClassVar[str] = "tenant"
    value: float = 1.0

    def named_features(self, query: Query | QueryView, out: dict[str, float]) -> None:
        if query.tenant:
            out["tenant " + query.tenant] = self.value


BLOCKS: dict[str, type[Block]] = {b.name: b for b in (Words, Chars, Structure, Context, Factors, Domain, Tenant)}

_LABELS = (("c ", "chars"), ("s ", "structure"), ("role ", "user role"), ("agent ", "agent type"),
           ("history ", "history"), ("factor ", "factor"), ("domain ", "domain"), ("tenant ", "tenant"))


def from_json(name: str, params: Mapping | None) -> Block:
    cls = BLOCKS.get(name)
    if cls is None:
        raise ValueError(f"the model uses feature block {name!r}, which this version of modelyard_learn does not "
                         f"know (known: {', '.join(BLOCKS)}): upgrade to read it")
    params = dict(params or {})
    unknown = set(params) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"feature block {name!r}: unknown parameters {sorted(unknown)}")
    return cls(**params)


def label(feature_name: str) -> str:
    """A readable name of a hashed feature's name, for reasons ("c <ab" -> "chars '<ab'")."""
    for prefix, readable in _LABELS:
        if feature_name.startswith(prefix):
            rest = feature_name[len(prefix):]
            return f"{readable} '{rest}'" if prefix == "c " else f"{readable} {rest}"
    return feature_name


#: The structure features' names, in the order ``structure_features`` takes its ``names`` argument.
STRUCTURE_NAMES = ("log_chars", "options", "log_option_chars", "numeric_options", "log_stem_chars", "log_numbers",
                   "log_operators", "negation", "log_upper_words", "statements", "log_questions", "log_lines")
_STRUCTURE_FEATURES = tuple("s " + name for name in STRUCTURE_NAMES)  # as the Structure block names them


def structure_features(text: str, names: tuple[str, ...] = STRUCTURE_NAMES) -> dict[str, float]:
    """Question shape, independent of the words: answer options, numbers, formulas, negation, length.
    ``names``: the keys to use, in ``STRUCTURE_NAMES``'s order (the Structure block passes its feature names, so
    no name is built per query)."""
    (log_chars, has_options, log_option_chars, numeric_options, log_stem_chars, log_numbers, log_operators,
     has_negation, log_upper_words, has_statements, log_questions, log_lines) = names
    out: dict[str, float] = {log_chars: math.log1p(len(text)) / 8.0}
    newline = "\n" in text
    if newline:
        options = _OPTION.findall(text)
        if len(options) >= 2:
            lengths = [len(o[1]) for o in options]
            out[has_options] = 1.0
            out[log_option_chars] = math.log1p(sum(lengths) / len(lengths)) / 5.0
            numeric = sum(1 for o in options if _NUMBER.fullmatch(o[1].strip().rstrip(".").replace(" ", "")) is not None)
            out[numeric_options] = numeric / len(options)
            stem = text[: text.find(options[0][1])] if options[0][1] else text
            out[log_stem_chars] = math.log1p(len(stem)) / 8.0
    if text.isascii():
        # One bytes.translate marks digits, operators and capitals; a search of its result answers "any digit?",
        # "how many operators?" and "three capitals in a row?" (each a regex scan or ten substring tests otherwise).
        raw = text.encode("ascii")
        kinds = raw.translate(ASCII_KINDS)
        numbers = len(_ASCII_NUMBER.findall(raw)) if kinds.find(b"0") >= 0 else 0
        operators = kinds.count(b"=")
        capitals = kinds.find(b"AAA") >= 0
    else:
        raw = None
        numbers = len(_NUMBER.findall(text))
        operators = len(OPERATOR.findall(text))
        capitals = not text.islower() and text.encode("utf-8", "surrogatepass").translate(_CAPITALS).find(b"AAA") >= 0
    if numbers:
        out[log_numbers] = math.log1p(numbers) / 3.0
    if operators:
        out[log_operators] = math.log1p(operators) / 3.0
    if capitals:  # an upper-case word and a negation both need three capitals in a row
        if raw is not None:  # \b-delimited words are the runs of [A-Za-z0-9_]: split the text into them instead
            upper_runs = list(filter(bytes.isupper, raw.translate(_NON_WORD_TO_SPACE).split()))  # the negations are
            negation = not _NEGATIONS.isdisjoint(upper_runs)  # upper case: only these runs are hashed
            uppers = len([run for run in upper_runs if len(run) >= 3 and run.isalpha()])
        else:
            negation = _NEGATION.search(text) is not None
            uppers = len(_UPPER_WORD.findall(text))
        if negation:
            out[has_negation] = 1.0
        if uppers:
            out[log_upper_words] = math.log1p(uppers) / 3.0
    if " | " in text and _STATEMENTS.search(text):  # needs a capital S: never matches a lower-case text
        out[has_statements] = 1.0
    questions = text.count("?")
    if questions:
        out[log_questions] = math.log1p(questions)
    if newline:
        out[log_lines] = math.log1p(text.count("\n")) / 3.0
    return out


def history_bucket(turns: int) -> str:
    if turns <= 0:
        return "0"
    if turns < 3:
        return "1-2"
    if turns < 6:
        return "3-5"
    if turns < 12:
        return "6-11"
    return "12+"


# Feature names that repeat from query to query are built once, so a query builds (and hashes) no name.
_HISTORY_FEATURES = {bucket: "history " + bucket for bucket in ("0", "1-2", "3-5", "6-11", "12+")}
_NO_HISTORY = _HISTORY_FEATURES["0"]


class _FactorFeatures(dict):
    """Factor name -> its feature name ("factor <name>"), bounded: the keyword analysis's factor names are a few."""

    def __missing__(self, name: str) -> str:
        if len(self) >= 1024:
            self.clear()
        feature = self[name] = "factor " + name
        return feature


_FACTOR_FEATURES = _FactorFeatures()


@lru_cache(maxsize=1024)
def _role_feature(role: str) -> str:
    return "role " + normalise_key(role)


@lru_cache(maxsize=1024)
def _agent_feature(agent_type: str) -> str:
    return "agent " + normalise_key(agent_type)


@lru_cache(maxsize=1024)  # roles and agent types repeat: normalise each once
def normalise_key(value: str) -> str:
    """A role or agent type as both the keyword analysis and the features key it: "Site-Admin " -> "site_admin"."""
    return value.strip().lower().replace("-", "_").replace(" ", "_")
