"""The seed's confidence scorer (``modelyard_inference.confidence`` until issue 17), kept only as the "before"
of ``modelyard bench cascade``: base x penalties, no verifiers, no trained weights.

    base      = (g - 0.30) / (0.90 - 0.30) clamped to [0, 1], g = exp(mean token logprob); 0.85 without logprobs;
                x 0.9 when a token's probability is below 0.02
    penalties = empty 0; refusal x 0.2; hedges x 0.55, then x 0.8 each (3 at most); finish "length" x 0.5,
                "content_filter" x 0.3; off topic x 0.6; too short x 0.6

It reads the same phrase lists as the verifiers (their uncertainty, refusal and stop-word lists are the seed's).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from modelyard_inference.answers.verifiers import normalise, phrases

_CONTENT_WORD = re.compile(r"[a-z][a-z0-9]{3,}")
_CHOICE_LINE = re.compile(r"^\s*\(?[A-Ja-j][.):]\s", re.MULTILINE)
_FINISH = {"length": 0.5, "content_filter": 0.3}


def seed_confidence(query: str, response: str, logprobs: Sequence[float] | None = None,
                    finish_reason: str | None = None) -> float:
    if not response.strip():
        return 0.0
    data = phrases()
    answer = normalise(response)
    if logprobs:
        g = math.exp(math.fsum(logprobs) / len(logprobs))
        value = min(max((g - 0.30) / 0.60, 0.0), 1.0) * (0.9 if math.exp(min(logprobs)) < 0.02 else 1.0)
    else:
        value = 0.85
    if data.refusal.found(answer[: data.refusal_window]):
        value *= 0.2
    if hedges := data.uncertainty.found(answer)[:3]:
        value *= 0.55 * 0.8 ** (len(hedges) - 1)
    value *= _FINISH.get(finish_reason or "", 1.0)
    if len(_CHOICE_LINE.findall(query)) < 2:
        question = normalise(query)
        stems = {w[:5] for w in _CONTENT_WORD.findall(question) if w not in data.stopwords}
        if len(stems) >= 3 and not any(stem in answer for stem in stems):
            value *= 0.6
        if len(question.split()) >= 20 and len(answer.split()) <= 3:
            value *= 0.6
    return round(min(max(value, 0.0), 1.0), 4)
