"""Multi-factor, explainable complexity analysis of one query.

Every factor adds points to one score (higher is harder) and, when it moved the score, a reason.
The level is the band of thresholds the score falls in. The whole model — terms, points and
thresholds — is the versioned data file ``data/keywords.json``; this module only knows how to
apply it, in one pass over the query's words with precompiled lookup tables (tens of
microseconds per query in CPython; ``offline.bench_classifier`` measures it).

Content factors (keywords, a failure, an incident = a failure with a business-wide scope) describe
the same thing from different angles: the strongest of them counts, the others are reported as not
added. Every other factor (length, several questions, calculation, pressure words, user role,
agent type, conversation history, tools offered to the model) adds its points.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from functools import cache
from types import MappingProxyType
from typing import NamedTuple
from importlib import resources
from pathlib import Path

from modelyard_events import ComplexityLevel
from modelyard_learn.blocks import ASCII_KINDS, OPERATOR, normalise_key

from .terms import LEVEL_GROUPS, Term, TermMatcher

#: Words are runs of ASCII letters and digits in the lower-cased text: "post-mortem" is "post mortem",
#: "what's" is "what s". The terms are English; an ASCII class is twice as fast as a Unicode one.
_WORD = re.compile(r"[a-z0-9]+")
_NON_WORD_TO_SPACE = bytes(b if 0x30 <= b <= 0x39 or 0x61 <= b <= 0x7A else 0x20 for b in range(256))  # for bytes.translate
_QUESTION = re.compile(r"\?+")
_LIST_ITEM = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*\u2022])\s+", re.MULTILINE)

_WILDCARD_MIN = 4  # a wildcard prefix must have at least this many letters


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class Analysis(NamedTuple):
    """A named tuple, not a frozen dataclass: one is built per decision, and a frozen dataclass costs ~1 µs more."""

    level: ComplexityLevel
    score: float
    reasons: list[str]
    incident: bool = False  # a failure with a business-wide scope: policy must not move it down
    #: The points of every factor that moved the score, by name (``keywords_<level>``, ``failure``,
    #: ``incident``, ``length``, ``questions``, ``calculation``, ``pressure``, ``user_role``,
    #: ``agent_type``, ``history``), plus ``heuristic_score`` and ``level_<level>`` = 1: the learned
    #: router's factor features, taken from here rather than parsed back from ``reasons``.
    factors: Mapping[str, float] = MappingProxyType({})
    tokens: Sequence[str] = ()  # the lower-cased words the analysis matched on


def _steps(value: float, steps: list[tuple[float, float]]) -> float:
    """Points of the highest step whose threshold ``value`` reaches (steps ascending)."""
    points = 0.0
    for threshold, step_points in steps:
        if value >= threshold:
            points = step_points
        else:
            break
    return points


class ComplexityModel:
    """The data file, compiled. ``analyze`` is pure: it allocates only its small result (new words are
    remembered in the matcher's bounded vocabulary)."""

    def __init__(self, spec: dict) -> None:
        self.version: str = spec["version"]
        self.thresholds = {ComplexityLevel(k): float(v) for k, v in spec["thresholds"].items()}
        ordered = [self.thresholds[ComplexityLevel(g)] for g in LEVEL_GROUPS[1:]]
        if ordered != sorted(ordered) or len(set(ordered)) != len(ordered):
            raise ValueError(f"complexity model {self.version}: thresholds must increase")
        self._bands = sorted(((v, k) for k, v in self.thresholds.items()), reverse=True)
        # Factor names built once (a name built per query is hashed again by every dict it meets).
        self._keyword_factor = {g: "keywords_" + g for g in LEVEL_GROUPS}
        self._level_factor = {level: "level_" + level for level in ComplexityLevel}

        kw = spec["keywords"]
        self.level_points = {g: float(kw["level_points"][g]) for g in LEVEL_GROUPS}
        self.extra_hit_points = float(kw["extra_hit_points"])
        self.extra_hit_cap = float(kw["extra_hit_cap"])

        urgency = spec["urgency"]
        terms: list[Term] = []
        for group in LEVEL_GROUPS:
            terms += [self._term(t, group, self.level_points[group]) for t in kw["terms"][group]]
        terms += [self._term(t, "failure", 0.0) for t in urgency["failure"]]
        terms += [self._term(t, "scope", float(p)) for t, p in urgency["scope"].items()]
        terms += [self._term(t, "pressure", 0.0) for t in urgency["pressure"]]
        seen: dict[tuple, str] = {}
        for term in terms:
            if term.parts in seen:
                raise ValueError(f"complexity model {self.version}: {term.text!r} is listed twice ({seen[term.parts]}, {term.group})")
            seen[term.parts] = term.group
        self.terms = tuple(terms)
        self._matcher = TermMatcher(terms, int(kw["max_gap"]))

        length = spec["length"]
        self._length_buckets = [(int(t), float(p)) for t, p in length["buckets"]]
        self._length_per_doubling = float(length["per_doubling_above_last"])
        self._length_above_cap = float(length["above_last_cap"])

        self._question_points = float(spec["questions"]["per_extra"])
        self._question_cap = float(spec["questions"]["cap"])

        calc = spec["calculation"]
        self._free_numbers = int(calc["free_numbers"])
        self._calc_steps = [(int(t), float(p)) for t, p in calc["steps"]]

        self._failure_points = float(urgency["failure_points"])
        self._scope_base = float(urgency["scope_base"])
        self._scope_cap = float(urgency["scope_cap"])
        self._pressure_points = float(urgency["pressure_points"])
        self._pressure_cap = float(urgency["pressure_cap"])

        ctx = spec["context"]
        self._roles = {normalise_key(k): float(v) for k, v in ctx["roles"].items()}
        self._agent_types = {normalise_key(k): float(v) for k, v in ctx["agent_types"].items()}
        self._history_steps = [(int(t), float(p)) for t, p in ctx["history_turns"]]
        self._tools_points = float(ctx.get("tools_offered", 0.0))
        # Below the first step a factor adds nothing: skip it without a call.
        for name in ("_length_buckets", "_calc_steps", "_history_steps"):
            steps = getattr(self, name)
            if [t for t, _ in steps] != sorted(t for t, _ in steps) or any(p == 0 for _, p in steps):
                raise ValueError(f"complexity model {self.version}: {name} must ascend with non-zero points")
        self._length_first = self._length_buckets[0][0]
        self._calc_first = self._calc_steps[0][0]
        self._history_first = self._history_steps[0][0]

    def _term(self, text: str, group: str, points: float) -> Term:
        parts = []
        for chunk in text.split("..."):
            part = words(chunk)
            if part and chunk.strip().endswith("*"):  # words() drops the '*': keep it on the last word
                part[-1] += "*"
            parts.append(tuple(part))
        parts = tuple(parts)
        if not all(parts):
            raise ValueError(f"complexity model {self.version}: empty term {text!r}")
        for part in parts:
            for word in part:
                if word.endswith("*") and len(word) - 1 < _WILDCARD_MIN:
                    raise ValueError(f"complexity model {self.version}: wildcard {text!r} needs {_WILDCARD_MIN}+ letters")
        return Term(text, group, points, parts)

    def level_for(self, score: float) -> ComplexityLevel:
        for threshold, level in self._bands:
            if score >= threshold:
                return level
        return ComplexityLevel.SIMPLE

    def analyze(
        self,
        text: str,
        *,
        user_role: str | None = None,
        history_turns: int = 0,
        agent_type: str | None = None,
        offers_tools: bool = False,
    ) -> Analysis:
        reasons: list[str] = []
        factors: dict[str, float] = {}
        score = 0.0
        lower = text.lower()
        if lower.isascii():  # the same words as _WORD finds, at a third of the cost: other bytes become spaces
            raw = lower.encode("ascii")
            tokens = raw.translate(_NON_WORD_TO_SPACE).decode("ascii").split()
            kinds = raw.translate(ASCII_KINDS)  # digits -> "0", ASCII operators -> "=": see the calculation below
        else:
            tokens = _WORD.findall(lower)
            kinds = None
        hits = self._matcher.scan(tokens)

        # Content: keywords, a failure, an incident (a failure with a business-wide scope). They
        # describe the same thing from different angles, so the strongest counts and the others don't.
        content: list[tuple[float, str, str]] = []  # (points, reason, factor)
        pressures: list[Term] = []
        incident = False
        if hits:
            top, hard = -1, 0
            failures: list[Term] = []
            scopes: list[Term] = []
            for term in hits:
                rank = term.rank
                if rank >= 0:
                    top = rank if rank > top else top
                    hard += rank > 0
                elif term.group == "failure":
                    failures.append(term)
                elif term.group == "scope":
                    scopes.append(term)
                else:
                    pressures.append(term)
            if top >= 0:
                group = LEVEL_GROUPS[top]
                named = ", ".join([t.label for t in hits if t.rank == top])
                points = self.level_points[group]
                if hard > 1:
                    points += min(self.extra_hit_cap, self.extra_hit_points * (hard - 1))
                    named += f" (+{hard - 1} more)"
                content.append((points, f"keywords {group}: {named}", self._keyword_factor[group]))
            if failures:
                failed = ", ".join([t.label for t in failures[:3]])
                if scopes:
                    incident = True
                    points = self._scope_base + min(self._scope_cap, sum([t.points for t in scopes]))
                    scoped = ", ".join([t.label for t in scopes[:4]])
                    content.append((points, f"urgency: failure {failed} with scope {scoped}", "incident"))
                else:
                    content.append((self._failure_points, f"failure {failed}", "failure"))
        if content:
            best = content[0] if len(content) == 1 else max(content, key=_first)
            score += best[0]
            factors[best[2]] = best[0]
            reasons.append("%s %+.2f" % (best[1], best[0]))
            if len(content) > 1:
                reasons += ["%s %+.2f not added: the stronger content factor counts" % (w, p) for p, w, _ in content if w is not best[1]]

        # Length, with the seed's thresholds; very long texts keep rising slowly.
        n_chars = len(text)
        if n_chars >= self._length_first:
            points = _steps(n_chars, self._length_buckets)
            last = self._length_buckets[-1][0]
            if n_chars > last:
                points += min(self._length_above_cap, self._length_per_doubling * math.log2(n_chars / last))
            score += points
            factors["length"] = points
            reasons.append("length %d chars %+.2f" % (n_chars, points))

        # Several questions or listed asks in one query.
        asks = text.count("?") if "??" not in text else len(_QUESTION.findall(text))  # runs of "?": each is one run
        if "\n" in text:
            asks = max(asks, len(_LIST_ITEM.findall(text)))
        if asks > 1:
            points = min(self._question_cap, self._question_points * (asks - 1))
            score += points
            factors["questions"] = points
            reasons.append("%d questions %+.2f" % (asks, points))

        # Quantitative work: numbers beyond the first few, and operators.
        # In ASCII words, a digit-only word needs a "0" in ``kinds`` and an operator is an "=" there: two searches
        # of one translated copy instead of a regex scan (lower-casing changes no digit or operator).
        if kinds is not None:
            numbers = sum(map(str.isdigit, tokens)) if kinds.find(b"0") >= 0 else 0  # "#123", "5%", not "500s"
            operators = kinds.count(b"=")
        else:
            numbers = sum(map(str.isdigit, tokens))
            operators = len(OPERATOR.findall(text))
        amount = numbers - self._free_numbers + operators
        if amount >= self._calc_first:
            points = _steps(amount, self._calc_steps)
            score += points
            factors["calculation"] = points
            reasons.append("calculation: %d numbers, %d operators %+.2f" % (numbers, operators, points))

        # Pressure words add a little on their own.
        if pressures:
            points = min(self._pressure_cap, self._pressure_points * len(pressures))
            score += points
            factors["pressure"] = points
            reasons.append("pressure: %s %+.2f" % (", ".join([t.label for t in pressures[:3]]), points))

        # Context: who asks, which agent answers, how long the conversation is.
        if user_role:
            points = self._roles.get(normalise_key(user_role), 0.0)
            if points:
                score += points
                factors["user_role"] = points
                reasons.append("user role %s %+.2f" % (user_role, points))
        if agent_type:
            points = self._agent_types.get(normalise_key(agent_type), 0.0)
            if points:
                score += points
                factors["agent_type"] = points
                reasons.append("agent type %s %+.2f" % (agent_type, points))
        if history_turns >= self._history_first:
            points = _steps(history_turns, self._history_steps)
            score += points
            factors["history"] = points
            reasons.append("history %d turns %+.2f" % (history_turns, points))
        if offers_tools and self._tools_points:
            score += self._tools_points
            reasons.append("tools offered %+.2f" % self._tools_points)

        if not (score * 8.0).is_integer():  # eighths (the usual points) have 3 decimals at most: round() leaves
            score = round(score, 3)  # them as they are, and costs a decimal conversion
        level = _SIMPLE
        for threshold, band in self._bands:  # ``level_for``, inlined
            if score >= threshold:
                level = band
                break
        reasons.append("score %.2f -> %s (model %s)" % (score, level, self.version))  # a StrEnum's str is its value
        factors["heuristic_score"] = score
        factors[self._level_factor[level]] = 1.0
        return _new(Analysis, (level, score, reasons, incident, factors, tokens))


_SIMPLE = ComplexityLevel.SIMPLE
_new = tuple.__new__  # a named tuple's own ``__new__`` is Python code


def _first(pair: tuple[float, str, str]) -> float:
    return pair[0]


def load_spec(path: str | Path | None = None) -> dict:
    if path:
        return json.loads(Path(path).read_text())
    return json.loads(resources.files("modelyard_router").joinpath("data/keywords.json").read_text())


@cache
def load_complexity_model(path: str | None = None) -> ComplexityModel:
    """The shipped model (or one from ``path``), compiled once per process."""
    return ComplexityModel(load_spec(path))
