"""Deterministic answers: text, tokens and token probabilities from (model, conversation, seed).

The text is plain helpdesk prose built around the question's content words, so that an answer visibly
addresses its question. Small models hedge above their ``hedge_above`` difficulty and their token
probabilities fall with difficulty; large models stay sure. Nothing here sleeps or fails: faults and
latency live in the HTTP layer.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass

from modelyard_simulator.config import ModelKnobs
from modelyard_simulator.difficulty import difficulty

# Words with an optional leading space, short digit runs, punctuation runs, whitespace runs: together
# they cover every character, so "".join(tokenize(t)) == t. About 1.3 tokens per English word.
_TOKEN = re.compile(r" ?[A-Za-z]+| ?[0-9]{1,3}| ?[^\sA-Za-z0-9]+|\s+")
_WORD = re.compile(r"[a-z][a-z0-9'-]{3,}")

_STOPWORDS = frozenset(
    "about above after again against also been before being below between both cannot could does doing down "
    "during each from further have having here hers herself himself into itself just more most myself once only "
    "other ours ourselves over same should some such than that their theirs them themselves then there these "
    "they this those through under until very were what when where which while will with would your yours "
    "yourself yourselves please thanks thank hello need want know tell give make like dear".split()
)

OPENINGS = (
    "Here is how to handle {topic}.",
    "For {topic}, follow these steps.",
    "Good question about {topic}; the answer is straightforward.",
    "The answer regarding {topic} is below.",
)
#: Every hedge contains a phrase the inference confidence scorer knows (data/uncertainty_phrases.json).
HEDGES = (
    "I'm not sure, but here is my best attempt at {topic}.",
    "I don't know for certain, but {topic} probably depends on a few factors.",
    "It's hard to say without more context, but regarding {topic}: this is my guess.",
    "I'm not certain, but for {topic} the following may help.",
)
SENTENCES = (
    "Check the {w} settings first and confirm they match the expected values.",
    "Review the recent changes that touched {w} and note when each one happened.",
    "If the {w} problem persists, collect the logs and compare them with the last known good state.",
    "Document each step so that the {w} fix can be repeated by the next person on call.",
    "Verify the result with a short test before you close the ticket.",
    "Tell the people affected by {w} what changed and when to expect the fix.",
    "Restart only the component that owns {w}, not the whole system.",
    "Keep a rollback plan ready in case {w} behaves unexpectedly after the change.",
    "Measure {w} before and after, so that the improvement can be shown with numbers.",
    "Ask the owner of {w} to confirm the expected behaviour in writing.",
    "Automate the {w} check so that the same issue is caught earlier next time.",
    "Make sure access to {w} follows the least-privilege rule.",
)
HEDGE_CLOSINGS = (
    "Please double-check this with someone who knows {w} well.",
    "This may not cover every case of {w}.",
)
_SENTENCE_TOKENS = [len(_TOKEN.findall(" " + t.format(w="word"))) for t in SENTENCES]
#: Alternatives offered in top_logprobs; the chosen token is always among the listed entries.
_ALTERNATIVES = (" the", " a", ",", ".", " and", " to", " of", " it", " this", " in", " is", " for")


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    tokens: list[str]
    #: probability of each token, or None when log-probabilities were not asked for or not supported
    token_probs: list[float] | None
    finish_reason: str
    difficulty: float
    hedged: bool
    source: str  # "generated" or "replay"


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text)


def count_prompt_tokens(texts: list[str]) -> int:
    """OpenAI-like prompt size: about 4 characters per token plus a small overhead per message."""
    return 3 + sum(4 + (len(t) + 3) // 4 for t in texts)


def content_words(text: str, limit: int = 6) -> list[str]:
    """The question's first distinct content words (what an answer should talk about)."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        word = word.strip("'-")
        if len(word) >= 4 and word not in _STOPWORDS:
            seen.setdefault(word, None)
            if len(seen) == limit:
                break
    return list(seen)


def rng_for(model: str, seed: int, conversation: str) -> random.Random:
    digest = hashlib.blake2b(f"{model}\x00{seed}\x00{conversation}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def answer(
    knobs: ModelKnobs,
    *,
    model: str,
    question: str,
    conversation: str,
    seed: int,
    max_tokens: int | None = None,
    want_logprobs: bool = False,
    replay_text: str | None = None,
    forced_difficulty: float | None = None,
) -> Answer:
    """The answer of ``model`` to ``question`` (last user message) within ``conversation`` (all messages)."""
    rng = rng_for(model, seed, conversation)
    level = difficulty(question) if forced_difficulty is None else forced_difficulty
    hedged = replay_text is None and level > knobs.hedge_above
    text = replay_text if replay_text is not None else _compose(knobs, question, hedged, rng)
    tokens = tokenize(text)
    finish_reason = "stop"
    if max_tokens is not None and len(tokens) > max_tokens:
        tokens = tokens[:max_tokens]
        text = "".join(tokens)
        finish_reason = "length"
    probs = _token_probs(knobs, level, hedged, len(tokens), rng) if want_logprobs and knobs.logprobs else None
    return Answer(
        text, tokens, probs, finish_reason, level, hedged, "replay" if replay_text is not None else "generated"
    )


def _compose(knobs: ModelKnobs, question: str, hedged: bool, rng: random.Random) -> str:
    words = content_words(question) or ["this request"]
    head = words[:3]
    topic = head[0] if len(head) == 1 else ", ".join(head[:-1]) + " and " + head[-1]
    target = max(4, round(knobs.output_tokens * rng.uniform(0.75, 1.25)))
    parts = [rng.choice(HEDGES if hedged else OPENINGS).format(topic=topic)]
    count = len(tokenize(parts[0]))
    closing = rng.choice(HEDGE_CLOSINGS).format(w=rng.choice(words)) if hedged else ""
    if closing:
        target -= len(tokenize(closing))
    while count < target:
        # a template's token count with its {w} as one word: close enough for a length target
        index = rng.randrange(len(SENTENCES))
        parts.append(SENTENCES[index].format(w=rng.choice(words)))
        count += _SENTENCE_TOKENS[index]
    if closing:
        parts.append(closing)
    return " ".join(parts)


# Token-probability noise comes from one fixed table of standard normal deviates (and rare dips), read
# from a per-answer offset: deterministic, and far cheaper than drawing a Gaussian per token.
_NOISE_SIZE = 8192
_noise_rng = random.Random(20261101)
_NOISE = [(_noise_rng.gauss(0.0, 1.0), 0.5 if _noise_rng.random() < 0.04 else 1.0) for _ in range(_NOISE_SIZE)]


def _token_probs(knobs: ModelKnobs, level: float, hedged: bool, n: int, rng: random.Random) -> list[float]:
    mean = knobs.token_prob_easy + (knobs.token_prob_hard - knobs.token_prob_easy) * level
    if hedged:
        mean *= 0.85  # a model that hedges is unsure of its words too
    spread = 0.03 + 0.4 * (1.0 - mean)  # sure models are consistently sure; unsure ones scatter
    start = rng.randrange(_NOISE_SIZE)
    noise = _NOISE[start : start + n]
    while len(noise) < n:
        noise += _NOISE[: n - len(noise)]
    # the dip factor is the occasional uncertain token, even in a confident answer
    probs = [(mean + spread * z) * dip for z, dip in noise]
    return [p if 0.01 < p < 0.9999 else (0.01 if p <= 0.01 else 0.9999) for p in probs]


_BYTES_CACHE: dict[str, list[int]] = {}


def _utf8(token: str) -> list[int]:
    # tokens repeat a lot (templates); the cache is bounded by clearing it when it grows large
    cached = _BYTES_CACHE.get(token)
    if cached is None:
        if len(_BYTES_CACHE) > 50_000:
            _BYTES_CACHE.clear()
        cached = _BYTES_CACHE[token] = list(token.encode())
    return cached


def logprob_entries(tokens: list[str], probs: list[float], top: int) -> list[dict]:
    """OpenAI ``choices[].logprobs.content``: token, logprob, bytes and ``top`` alternatives each."""
    log = math.log
    if not top:
        return [
            {"token": t, "logprob": log(p), "bytes": _utf8(t), "top_logprobs": []}
            for t, p in zip(tokens, probs, strict=True)
        ]
    entries = []
    for token, p in zip(tokens, probs, strict=True):
        alternatives = [(token, p)]
        rest, share = 1.0 - p, 0.5
        for alt in _ALTERNATIVES:
            if len(alternatives) == top:
                break
            if alt != token:
                alternatives.append((alt, max(rest * share, 1e-6)))
                share /= 2
        alternatives.sort(key=lambda a: a[1], reverse=True)
        entries.append(
            {
                "token": token,
                "logprob": log(p),
                "bytes": _utf8(token),
                "top_logprobs": [{"token": t, "logprob": log(q), "bytes": _utf8(t)} for t, q in alternatives],
            }
        )
    return entries
