"""How sure is a model answer? A confidence in [0, 1] with the reasons that moved it.

The same code judges answers in the SLM worker (below the threshold the query escalates) and offline in
``modelyard cascade-score`` (``score_lines``), so a threshold chosen on logs behaves the same in production.

Score = base x every penalty that applies, clamped to [0, 1]:

base — token log-probabilities, when the backend returned them:
    g = exp(mean(logprobs)), the geometric-mean token probability;
    base = (g - 0.30) / (0.90 - 0.30), clamped: 0 at g <= 0.30, 1 at g >= 0.90 (word-choice uncertainty in a
    fluent answer keeps g a little below 1, hence the upper knee);
    a token with probability below 0.02 (a near-guess) multiplies by 0.9.
    Without log-probabilities base = 0.85: no evidence either way.
penalties (multipliers):
    empty answer .................................. 0 (nothing else matters)
    refusal ("I can't help with that", ...) ......... x 0.2   (only near the start of the answer)
    uncertainty phrase ("I'm not sure", ...) ........ x 0.55 for the first, x 0.8 for each further one (3 at most)
    finish_reason "length" (truncated) .............. x 0.5;  "content_filter" x 0.3
    off topic: a query with >= 3 content words, none of which (its first 5 letters) is in the answer ... x 0.6
    too short: a query of >= 20 words answered in <= 3 words (not multiple choice) .. x 0.6

Phrases and stop words live in ``data/uncertainty_phrases.json`` (versioned). Pure, no I/O after the first
call; tens of microseconds for a paragraph-long answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import orjson

DEFAULT_THRESHOLD = 0.6

LOGPROB_FLOOR = 0.30  # geometric-mean token probability that scores 0
LOGPROB_CEILING = 0.90  # ... and that scores 1
NEAR_GUESS_PROB = 0.02
NEAR_GUESS_FACTOR = 0.9
NO_LOGPROBS_BASE = 0.85
REFUSAL_FACTOR = 0.2
FIRST_HEDGE_FACTOR = 0.55
FURTHER_HEDGE_FACTOR = 0.8
MAX_HEDGES_COUNTED = 3
FINISH_FACTORS = {"length": 0.5, "content_filter": 0.3}
OFF_TOPIC_FACTOR = 0.6
OFF_TOPIC_MIN_QUERY_WORDS = 3
TOO_SHORT_FACTOR = 0.6
TOO_SHORT_QUERY_WORDS = 20
TOO_SHORT_ANSWER_WORDS = 3

_CONTENT_WORD = re.compile(r"[a-z][a-z0-9]{3,}")
_CHOICE_LINE = re.compile(r"^\s*\(?[A-Ja-j][.):]\s", re.MULTILINE)
_STEM = 5  # content words match on their first five letters: "resetting" ~ "reset", "passwords" ~ "password"


@dataclass(frozen=True, slots=True)
class Confidence:
    confidence: float
    #: one entry per factor that moved the score (empty: nothing against the answer)
    reasons: list[str] = field(default_factory=list)


class _PhraseSet:
    """Phrases matched as whole words: a C-speed substring test first, a word-boundary check only for hits."""

    def __init__(self, phrases: list[str]) -> None:
        self._phrases = tuple(sorted(set(phrases), key=len, reverse=True))
        self._bounded = {p: re.compile(rf"(?<!\w){re.escape(p)}(?!\w)") for p in self._phrases}

    def found(self, text: str) -> list[str]:
        """Distinct phrases in ``text``, in order of appearance; a phrase inside a longer hit is not counted."""
        hits: list[tuple[int, str]] = []
        for phrase in self._phrases:
            if phrase in text and not any(phrase in longer for _, longer in hits):
                if match := self._bounded[phrase].search(text):
                    hits.append((match.start(), phrase))
        return [phrase for _, phrase in sorted(hits)]


@dataclass(frozen=True, slots=True)
class _Phrases:
    version: str
    uncertainty: _PhraseSet
    refusal: _PhraseSet
    refusal_window: int
    stopwords: frozenset[str]


@cache
def phrases() -> _Phrases:
    data = orjson.loads(resources.files("modelyard_inference").joinpath("data/uncertainty_phrases.json").read_bytes())
    return _Phrases(
        version=data["version"],
        uncertainty=_PhraseSet(data["uncertainty"]),
        refusal=_PhraseSet(data["refusals"]),
        refusal_window=int(data["refusal_window"]),
        stopwords=frozenset(data["stopwords"]),
    )


def _normalise(text: str) -> str:
    return text.lower().replace("\u2019", "'").replace("\u2018", "'")


def _stems(text: str, stopwords: frozenset[str]) -> set[str]:
    return {w[:_STEM] for w in _CONTENT_WORD.findall(text) if w not in stopwords}


def score(
    query: str, response: str, *, logprobs: list[float] | None = None, finish_reason: str | None = None
) -> Confidence:
    """Confidence of ``response`` as an answer to ``query`` (see the module doc for the weights)."""
    if not response or not response.strip():
        return Confidence(0.0, ["empty answer"])
    data = phrases()
    reasons: list[str] = []
    answer = _normalise(response)

    if logprobs:
        g = math.exp(math.fsum(logprobs) / len(logprobs))
        value = min(max((g - LOGPROB_FLOOR) / (LOGPROB_CEILING - LOGPROB_FLOOR), 0.0), 1.0)
        if g < LOGPROB_CEILING:
            reasons.append(f"low token probability (geometric mean {g:.2f})")
        lowest = math.exp(min(logprobs))
        if lowest < NEAR_GUESS_PROB:
            value *= NEAR_GUESS_FACTOR
            reasons.append(f"near-guess token (probability {lowest:.3f})")
    else:
        value = NO_LOGPROBS_BASE
        reasons.append("no log-probabilities")

    if refusals := data.refusal.found(answer[: data.refusal_window]):
        value *= REFUSAL_FACTOR
        reasons.append(f"refusal: {refusals[0]!r}")

    if hedges := data.uncertainty.found(answer)[:MAX_HEDGES_COUNTED]:
        value *= FIRST_HEDGE_FACTOR * FURTHER_HEDGE_FACTOR ** (len(hedges) - 1)
        reasons.append("uncertainty: " + ", ".join(repr(h) for h in hedges))

    if finish_reason in FINISH_FACTORS:
        value *= FINISH_FACTORS[finish_reason]
        reasons.append(f"finish_reason {finish_reason}" + (" (truncated)" if finish_reason == "length" else ""))

    if len(_CHOICE_LINE.findall(query)) < 2:  # a multiple-choice question may be answered with one letter
        question = _normalise(query)
        query_stems = _stems(question, data.stopwords)
        # the answer addresses the question when it contains the start of one of its content words
        if len(query_stems) >= OFF_TOPIC_MIN_QUERY_WORDS and not any(stem in answer for stem in query_stems):
            value *= OFF_TOPIC_FACTOR
            reasons.append("does not address the question (no shared content words)")
        query_words = len(question.split())
        if query_words >= TOO_SHORT_QUERY_WORDS and (answer_words := len(answer.split())) <= TOO_SHORT_ANSWER_WORDS:
            value *= TOO_SHORT_FACTOR
            reasons.append(f"too short for the question ({answer_words} words for {query_words})")

    return Confidence(round(min(max(value, 0.0), 1.0), 4), reasons)


def should_escalate(c: Confidence, threshold: float = DEFAULT_THRESHOLD) -> bool:
    """Below the threshold the SLM answer is not good enough: send the query up."""
    return c.confidence < threshold


def _logprob_values(raw: Any) -> list[float] | None:
    """Floats, or OpenAI's ``logprobs.content`` entries (``{"token", "logprob", ...}``), or null."""
    if raw is None:
        return None
    if isinstance(raw, dict) and "content" in raw:
        raw = raw["content"]
        if raw is None:
            return None
    if not isinstance(raw, list):
        raise ValueError("'logprobs' must be a list of numbers (or of {\"logprob\": number} objects)")
    values = []
    for item in raw:
        value = item.get("logprob") if isinstance(item, dict) else item
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value > 0 or math.isnan(value):
            raise ValueError(f"'logprobs' holds {value!r}: log-probabilities are numbers <= 0")
        values.append(float(value))
    return values


def score_lines(lines: Iterable[str], threshold: float = DEFAULT_THRESHOLD) -> Iterator[str]:
    """``modelyard cascade-score``: one JSON result per JSON input line, with exactly ``score``.

    Input ``{"query", "response", "logprobs"?, "finish_reason"?, "id"?}``; output
    ``{"confidence", "escalate", "reasons"}`` (plus ``"id"`` when the input has one), or
    ``{"line": n, "error": "..."}`` for a line that cannot be scored. Blank lines are skipped.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be within [0, 1], not {threshold}")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
            if not isinstance(record, dict):
                raise ValueError("expected a JSON object")
            query, response = record.get("query"), record.get("response")
            if not isinstance(query, str):
                raise ValueError("'query' must be a string")
            if not isinstance(response, str):
                raise ValueError("'response' must be a string")
            finish_reason = record.get("finish_reason")
            if finish_reason is not None and not isinstance(finish_reason, str):
                raise ValueError("'finish_reason' must be a string")
            result = score(
                query, response, logprobs=_logprob_values(record.get("logprobs")), finish_reason=finish_reason
            )
        except (orjson.JSONDecodeError, ValueError) as exc:
            yield orjson.dumps({"line": number, "error": str(exc)}).decode()
            continue
        out: dict[str, Any] = {
            "confidence": result.confidence,
            "escalate": should_escalate(result, threshold),
            "reasons": result.reasons,
        }
        if "id" in record:
            out = {"id": record["id"], **out}
        yield orjson.dumps(out).decode()
