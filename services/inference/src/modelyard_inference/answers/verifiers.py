"""Verifiers: each a small function that looks at one answer and reports named findings.

A finding is ``hard`` when the answer is unusable whatever else it shows (empty, refused, cut off, wrong
arithmetic, no final answer, JSON that does not parse or fit the requested schema): the answer escalates
regardless of its score. A ``soft`` finding is evidence the scorer weighs (a hedge, an off-topic reply).

| verifier        | hard when                                                        | soft when                    |
|-----------------|------------------------------------------------------------------|------------------------------|
| empty           | blank answer                                                     |                              |
| refusal         | a refusal phrase in the first ``refusal_window`` characters      |                              |
| hedging         |                                                                  | uncertainty phrases          |
| truncation      | finish_reason "length"; text cut mid-number / mid-calculation /  |                              |
|                 | after an operator                                                |                              |
| content_filter  | finish_reason "content_filter"                                   |                              |
| off_topic       |                                                                  | no content word of the query |
| too_short       |                                                                  | <= 3 words for >= 20         |
| arithmetic      | a shown step that re-computes to another value                   | annotation vs shown number   |
| final_answer    | math question without a final number; "####" without a number;   |                              |
|                 | a count that is not a whole number or is negative; multiple      |                              |
|                 | choice without one of the options                                |                              |
| json            | response_format asks for JSON and the text does not parse, is not |                              |
|                 | an object, or does not match the json_schema                     |                              |
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from .analysis import Analysis
from .numbers import malformed_number_at_end

HARD, SOFT = "hard", "soft"
OFF_TOPIC_MIN_QUERY_WORDS = 3
TOO_SHORT_QUERY_WORDS = 20
TOO_SHORT_ANSWER_WORDS = 3
MAX_HEDGES_REPORTED = 3

_CONTENT_WORD = re.compile(r"[a-z][a-z0-9]{3,}")
_STEM = 5  # content words match on their first five letters: "resetting" ~ "reset"
_TRAILING_OPERATOR = re.compile(r"(?:[+\-*/=(\u00d7\u00f7,:]|\bx|\btimes|\bof)\s*$")
_LAST_ANNOTATION = re.compile(r"<<[^<>]*=\s*([\d.]+)>>\s*\$?([\d.,]+)\s*$")
_FENCE = re.compile(r"^\s*```(?:json)?\s*\n?(.*?)\n?```\s*$", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Finding:
    verifier: str
    severity: str  # "hard" or "soft"
    detail: str

    def __str__(self) -> str:
        return f"{self.verifier}: {self.detail}" + (" [hard]" if self.severity == HARD else "")


class PhraseSet:
    """Phrases matched as whole words: a C-speed substring test first, a word-boundary check only for hits."""

    def __init__(self, phrases: list[str]) -> None:
        self._phrases = tuple(sorted(set(phrases), key=len, reverse=True))
        self._bounded = {p: re.compile(rf"(?<!\w){re.escape(p)}(?!\w)") for p in self._phrases}

    def found(self, text: str) -> list[str]:
        """Distinct phrases in ``text`` in order of appearance; a phrase inside a longer hit is not counted."""
        hits: list[tuple[int, str]] = []
        for phrase in self._phrases:
            if phrase in text and not any(phrase in longer for _, longer in hits):
                if match := self._bounded[phrase].search(text):
                    hits.append((match.start(), phrase))
        return [phrase for _, phrase in sorted(hits)]


@dataclass(frozen=True, slots=True)
class Phrases:
    version: str
    uncertainty: PhraseSet
    refusal: PhraseSet
    self_doubt: PhraseSet
    refusal_window: int
    stopwords: frozenset[str]


@cache
def phrases() -> Phrases:
    data = json.loads(resources.files(__package__).joinpath("data/phrases.json").read_text(encoding="utf-8"))
    return Phrases(
        version=data["version"],
        uncertainty=PhraseSet(data["uncertainty"]),
        refusal=PhraseSet(data["refusals"]),
        self_doubt=PhraseSet(data["self_doubt"]),
        refusal_window=int(data["refusal_window"]),
        stopwords=frozenset(data["stopwords"]),
    )


def normalise(text: str) -> str:
    return text.lower().replace("\u2019", "'").replace("\u2018", "'")


@dataclass(slots=True)
class Call:
    """What a verifier may know about the model call besides the two texts."""

    finish_reason: str | None = None
    #: the request's OpenAI ``response_format``: {"type": "json_object"} or {"type": "json_schema", ...}
    response_format: dict[str, Any] | None = None


Verifier = Callable[[Analysis, Call], list[Finding]]


def empty(a: Analysis, call: Call) -> list[Finding]:
    return [Finding("empty", HARD, "empty answer")] if not a.response.strip() else []


def refusal(a: Analysis, call: Call) -> list[Finding]:
    data = phrases()
    found = data.refusal.found(normalise(a.response[: data.refusal_window]))
    return [Finding("refusal", HARD, repr(found[0]))] if found else []


def hedging(a: Analysis, call: Call) -> list[Finding]:
    found = uncertainty_phrases(a)
    return [Finding("hedging", SOFT, ", ".join(repr(h) for h in found))] if found else []


def uncertainty_phrases(a: Analysis) -> list[str]:
    return phrases().uncertainty.found(normalise(a.response))[:MAX_HEDGES_REPORTED]


def truncation(a: Analysis, call: Call) -> list[Finding]:
    if call.finish_reason == "length":
        return [Finding("truncation", HARD, "finish_reason length")]
    if (cut := visibly_cut(a)) is not None:
        return [Finding("truncation", HARD, cut)]
    return []


def visibly_cut(a: Analysis) -> str | None:
    """Why the text looks cut off mid-generation, or None."""
    text = a.response.rstrip()
    if not text:
        return None
    if a.arithmetic.open_annotation:
        return "ends inside a calculation '<<...'"
    if malformed_number_at_end(text):
        return f"ends inside a number {text[-12:].split()[-1]!r}"
    if text.endswith(">>"):
        return "ends after a calculation whose result is not written"
    if _TRAILING_OPERATOR.search(text[-12:]) and not text.endswith(("::", ":)")):
        return f"ends after {text[-12:].split()[-1]!r}"
    if (m := _LAST_ANNOTATION.search(text[-80:])) and m.group(1) != m.group(2).replace(",", ""):
        if m.group(1).startswith(m.group(2).replace(",", "")):
            return f"ends inside the result {m.group(2)!r} of a calculation that gives {m.group(1)}"
    return None


def content_filter(a: Analysis, call: Call) -> list[Finding]:
    if call.finish_reason == "content_filter":
        return [Finding("content_filter", HARD, "finish_reason content_filter")]
    return []


def _stems(text: str, stopwords: frozenset[str]) -> set[str]:
    return {w[:_STEM] for w in _CONTENT_WORD.findall(text) if w not in stopwords}


def off_topic(a: Analysis, call: Call) -> list[Finding]:
    if a.options or not a.response.strip():
        return []
    data = phrases()
    query_stems = _stems(normalise(a.query), data.stopwords)
    answer = normalise(a.response)
    if len(query_stems) >= OFF_TOPIC_MIN_QUERY_WORDS and not any(stem in answer for stem in query_stems):
        return [Finding("off_topic", SOFT, "no content word of the question in the answer")]
    return []


def too_short(a: Analysis, call: Call) -> list[Finding]:
    if a.options or not a.response.strip():
        return []
    query_words, answer_words = len(a.query.split()), len(a.response.split())
    if query_words >= TOO_SHORT_QUERY_WORDS and answer_words <= TOO_SHORT_ANSWER_WORDS:
        return [Finding("too_short", SOFT, f"{answer_words} words for a {query_words}-word question")]
    return []


def arithmetic(a: Analysis, call: Call) -> list[Finding]:
    findings, seen = [], set()
    for step in a.arithmetic.errors:
        key = (round(step.claimed, 6), round(step.computed, 6))
        if key not in seen:
            seen.add(key)
            findings.append(Finding("arithmetic", HARD, f"{step.expression} (is {_show(step.computed)})"))
    for shown in a.arithmetic.annotation_mismatches:
        findings.append(Finding("arithmetic", SOFT, f"result shown differs from the calculation {shown}"))
    return findings


def _show(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.4g}"


def final_answer(a: Analysis, call: Call) -> list[Finding]:
    if not a.response.strip():
        return []
    if a.options:
        if a.letter is None:
            return [Finding("final_answer", HARD, f"no option letter among {'/'.join(a.options)}")]
        if a.letter not in a.options:
            return [Finding("final_answer", HARD, f"option {a.letter} is not one of {'/'.join(a.options)}")]
        return []
    if not a.is_math:
        return []
    final = a.final
    if final.value is None:
        what = f"'####' followed by {final.text!r}" if final.marked else "no number in the answer"
        return [Finding("final_answer", HARD, f"no final number ({what})")]
    if a.count_noun is not None:
        if final.value != int(final.value):
            return [Finding("final_answer", HARD, f"{final.text} {a.count_noun}: a count that is not a whole number")]
        if final.value < 0:
            return [Finding("final_answer", HARD, f"{final.text} {a.count_noun}: a negative count")]
    return []


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    """Compiled validator of one schema (compiled once per distinct schema: requests repeat theirs)."""
    import jsonschema  # only answers to structured-output requests need it

    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


def schema_error(value: Any, schema: dict[str, Any]) -> str | None:
    """Why ``value`` does not validate against the JSON Schema ``schema`` (None: it does). Also the check of
    tool-call arguments against their tool's parameters (``modelyard_inference.checks``)."""
    error = next(iter(_validator(json.dumps(schema, sort_keys=True)).iter_errors(value)), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"at {where}: {error.message}"


def json_output(a: Analysis, call: Call) -> list[Finding]:
    fmt = call.response_format
    if not fmt or fmt.get("type") not in ("json_object", "json_schema") or not a.response.strip():
        return []
    text = a.response
    if fenced := _FENCE.match(text):
        text = fenced.group(1)
    try:
        value = json.loads(text)
    except ValueError as exc:
        return [Finding("json", HARD, f"does not parse: {exc}")]
    if fmt["type"] == "json_object":
        return [] if isinstance(value, dict) else [Finding("json", HARD, f"a JSON {type(value).__name__}, not an object")]
    schema = (fmt.get("json_schema") or {}).get("schema")
    if not isinstance(schema, dict):
        return []
    if (why := schema_error(value, schema)) is not None:
        return [Finding("json", HARD, f"does not match the schema {why}")]
    return []


VERIFIERS: dict[str, Verifier] = {
    "empty": empty,
    "refusal": refusal,
    "hedging": hedging,
    "truncation": truncation,
    "content_filter": content_filter,
    "off_topic": off_topic,
    "too_short": too_short,
    "arithmetic": arithmetic,
    "final_answer": final_answer,
    "json": json_output,
}


def run(a: Analysis, call: Call | None = None) -> list[Finding]:
    """Every verifier's findings, in the table's order; an empty answer is only reported as empty."""
    call = call or Call()
    if not a.response.strip():
        return empty(a, call)
    findings: list[Finding] = []
    for verifier in VERIFIERS.values():
        findings.extend(verifier(a, call))
    return findings
