"""Finding the keyword file's terms in a query's words: words, phrases, gapped patterns, wildcard prefixes.

``TermMatcher.scan`` is the hot loop of the complexity analysis (``complexity.py``): each distinct
word is resolved once to the terms that may start with it and remembered in a bounded vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import compress

from modelyard_events import ComplexityLevel

LEVEL_GROUPS = tuple(level.value for level in ComplexityLevel)  # simple < moderate < complex < critical


class Term:
    """One entry of the data file: a word, a phrase, or a gapped pattern ("design ... architecture").

    Compared by identity (a term is one entry); the derived fields make matching cheap.
    """

    __slots__ = ("text", "label", "group", "points", "parts", "rank", "single", "size", "rest", "rest_len")

    def __init__(self, text: str, group: str, points: float, parts: tuple[tuple[str, ...], ...]) -> None:
        self.text = text
        self.label = repr(text)
        self.group = group
        self.points = points
        self.parts = parts
        self.rank = LEVEL_GROUPS.index(group) if group in LEVEL_GROUPS else -1  # -1: an urgency group
        self.single = len(parts) == 1 and len(parts[0]) == 1
        self.size = sum(len(part) for part in parts)
        # A contiguous phrase without wildcards after its first word is checked as one list slice.
        plain = len(parts) == 1 and not any(w.endswith("*") for w in parts[0][1:])
        self.rest = list(parts[0][1:]) if plain else None
        self.rest_len = len(parts[0]) - 1

    def __repr__(self) -> str:
        return f"Term({self.text!r}, {self.group})"


def _part_at(tokens: list[str], i: int, part: tuple[str, ...]) -> bool:
    if i + len(part) > len(tokens):
        return False
    for k, word in enumerate(part):
        token = tokens[i + k]
        if token != word and not (word[-1] == "*" and token.startswith(word[:-1])):
            return False
    return True


class _Vocabulary(dict):
    """Word -> candidate terms, filled on first sight of a word and bounded in size."""

    def __init__(self, resolve, limit: int) -> None:
        super().__init__()
        self._resolve = resolve
        self._limit = limit

    def __missing__(self, token: str) -> tuple[Term, ...]:
        if len(self) >= self._limit:  # hostile text full of new words cannot grow it forever
            self.clear()
        found = self[token] = self._resolve(token)
        return found


class TermMatcher:
    """Finds terms in a word list, left to right, longest term first at each position.

    Each distinct word is resolved once to the terms that may start with it (exact first word
    first, then wildcard prefixes) and remembered in a bounded vocabulary. A scan maps the words
    through it and visits only the positions that have candidates.
    """

    def __init__(self, terms: Iterable[Term], max_gap: int, vocabulary_size: int = 50_000) -> None:
        self.max_gap = max_gap
        exact: dict[str, list[Term]] = {}
        prefixed: list[Term] = []
        for term in terms:
            first = term.parts[0][0]
            (prefixed if first.endswith("*") else exact.setdefault(first, [])).append(term)
        by_size = lambda ts: tuple(sorted(ts, key=lambda t: -t.size))  # noqa: E731
        self._exact = {k: by_size(v) for k, v in exact.items()}
        self._prefixed = by_size(prefixed)
        self._lookup = _Vocabulary(self._resolve, vocabulary_size).__getitem__

    def _resolve(self, token: str) -> tuple[Term, ...]:
        return self._exact.get(token, ()) + tuple(t for t in self._prefixed if token.startswith(t.parts[0][0][:-1]))

    def _end_of_match(self, tokens: list[str], i: int, term: Term) -> int:
        """Where scanning resumes after ``term`` matched at ``i`` (0 when it does not match).

        The first word is known to match. A gapped term consumes only its first part, so words
        inside the gap are still seen.
        """
        rest = term.rest
        if rest is not None:
            end = i + 1 + term.rest_len
            return end if tokens[i + 1 : end] == rest else 0
        parts = term.parts
        first = parts[0]
        if len(first) > 1 and not _part_at(tokens, i + 1, first[1:]):
            return 0
        resume = j = i + len(first)
        n = len(tokens)
        for part in parts[1:]:
            for start in range(j, min(n, j + self.max_gap + 1)):
                if _part_at(tokens, start, part):
                    j = start + len(part)
                    break
            else:
                return 0
        return j if len(parts) == 1 else resume

    def scan(self, tokens: list[str]) -> list[Term]:
        """Distinct terms found, in order of first appearance."""
        candidates = list(map(self._lookup, tokens))
        found: list[Term] = []
        resume = 0
        for i in compress(range(len(tokens)), candidates):
            if i < resume:
                continue
            for term in candidates[i]:
                if term.single:
                    end = i + 1
                elif term.rest is not None:  # a plain phrase, checked here: most fail on their second word
                    end = i + 1 + term.rest_len
                    if tokens[i + 1 : end] != term.rest:
                        continue
                else:
                    end = self._end_of_match(tokens, i, term)
                if end:
                    if term not in found:
                        found.append(term)
                    resume = end
                    break
        return found
