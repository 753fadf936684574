"""A deterministic difficulty in [0, 1] per prompt: keywords, length and a little hash jitter.

It stands in for "how hard is this question for a small model". Analysis, design and incident questions
score high, look-ups and routine requests low, long prompts higher than short ones; the hash jitter
(+-0.1) keeps prompts with the same keywords from all landing on one value.
"""

from __future__ import annotations

import hashlib
import re

#: Lower-case fragments (matched as substrings, each counted once) and how much they add.
HARD_MARKERS: dict[str, float] = {
    "root cause": 0.25,
    "root-cause": 0.25,
    "postmortem": 0.2,
    "post-mortem": 0.2,
    "disaster recovery": 0.25,
    "architecture": 0.2,
    "design": 0.2,
    "prove": 0.2,
    "derive": 0.2,
    "analy": 0.15,
    "trade-off": 0.15,
    "tradeoff": 0.15,
    "strategy": 0.15,
    "multi-region": 0.15,
    "failover": 0.15,
    "distributed": 0.15,
    "compare": 0.12,
    "optimi": 0.12,
    "migrat": 0.12,
    "outage": 0.12,
    "evaluate": 0.12,
    "consisten": 0.12,
    "concurren": 0.12,
    "compliance": 0.12,
    "algorithm": 0.12,
    "explain": 0.1,
    "why": 0.08,
    "plan": 0.08,
    "incident": 0.08,
    "security": 0.08,
    "performance": 0.08,
    "scal": 0.08,
    "latency": 0.06,
}
EASY_MARKERS: dict[str, float] = {
    "hello": -0.2,
    "thank": -0.15,
    "status": -0.15,
    "password": -0.15,
    "opening hours": -0.15,
    "reset": -0.12,
    "unlock": -0.1,
    "where is": -0.1,
    "what time": -0.1,
    "update my": -0.1,
    "change my": -0.1,
    "how do i": -0.08,
    "invoice": -0.08,
    "log in": -0.08,
    "login": -0.08,
    "ticket": -0.06,
}

_BASE = 0.25
_LENGTH_WEIGHT = 0.35  # reached at _LENGTH_FULL words
_LENGTH_FULL = 150
_JITTER = 0.1
_WORD = re.compile(r"\S+")


def difficulty(prompt: str) -> float:
    """Difficulty of ``prompt`` in [0, 1]; the same prompt always gets the same value."""
    text = prompt.lower()
    keywords = sum(w for marker, w in HARD_MARKERS.items() if marker in text)
    keywords += sum(w for marker, w in EASY_MARKERS.items() if marker in text)
    keywords = min(max(keywords, -0.3), 0.6)
    words = len(_WORD.findall(text))
    length = _LENGTH_WEIGHT * min(words, _LENGTH_FULL) / _LENGTH_FULL
    digest = hashlib.blake2b(prompt.encode(), digest_size=8).digest()
    jitter = (int.from_bytes(digest, "big") / 2**64 * 2 - 1) * _JITTER
    return round(min(max(_BASE + keywords + length + jitter, 0.0), 1.0), 4)
