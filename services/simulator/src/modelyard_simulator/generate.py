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
from dataclasses import dataclass

from modelyard_simulator.config import ModelKnobs
from modelyard_simulator.difficulty import difficulty
from modelyard_simulator.words import TOKEN, content_words, count_prompt_tokens, tokenize

__all__ = ["Answer", "answer", "compose", "content_words", "count_prompt_tokens", "cut_at_stop", "finish",
           "logprob_entries", "rng_for", "token_probs", "tokenize"]

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
_SENTENCE_TOKENS = [len(TOKEN.findall(" " + t.format(w="word"))) for t in SENTENCES]
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


def rng_for(model: str, seed: int | str, conversation: str) -> random.Random:
    digest = hashlib.blake2b(f"{model}\x00{seed}\x00{conversation}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """``text`` up to (without) the first of the stop sequences."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return text[:cut] if cut >= 0 else text


def finish(text: str, stop: tuple[str, ...], max_tokens: int | None) -> tuple[str, list[str], str]:
    """What a model emits of ``text``: cut at the first stop sequence ("stop"), then at ``max_tokens``
    ("length") -- the text, its tokens and the finish reason."""
    if stop:
        text = cut_at_stop(text, stop)
    tokens = tokenize(text)
    if max_tokens is not None and len(tokens) > max_tokens:
        tokens = tokens[:max_tokens]
        return "".join(tokens), tokens, "length"
    return text, tokens, "stop"


def answer(
    knobs: ModelKnobs,
    *,
    model: str,
    question: str,
    conversation: str,
    seed: int | str,
    max_tokens: int | None = None,
    want_logprobs: bool = False,
    replay_text: str | None = None,
    forced_difficulty: float | None = None,
    stop: tuple[str, ...] = (),
) -> Answer:
    """The plain-text answer of ``model`` to ``question`` (last user message) within ``conversation``."""
    rng = rng_for(model, seed, conversation)
    level = difficulty(question) if forced_difficulty is None else forced_difficulty
    hedged = replay_text is None and level > knobs.hedge_above
    text = replay_text if replay_text is not None else compose(knobs, question, hedged, rng)
    text, tokens, finish_reason = finish(text, stop, max_tokens)
    probs = token_probs(knobs, level, hedged, len(tokens), rng) if want_logprobs and knobs.logprobs else None
    return Answer(
        text, tokens, probs, finish_reason, level, hedged, "replay" if replay_text is not None else "generated"
    )


def topic_of(words: list[str]) -> str:
    head = words[:3]
    return head[0] if len(head) == 1 else ", ".join(head[:-1]) + " and " + head[-1]


def compose(
    knobs: ModelKnobs, question: str, hedged: bool, rng: random.Random, worked: str | None = None
) -> str:
    """Helpdesk prose about the question's content words, about ``output_tokens`` long; with ``worked``
    (a worked solution, see reasoning.py), an opening sentence and that solution instead."""
    words = content_words(question) or ["this request"]
    target = max(4, round(knobs.output_tokens * rng.uniform(0.75, 1.25)))
    opening = rng.choice(HEDGES if hedged else OPENINGS).format(topic=topic_of(words))
    if worked is not None:
        return f"{opening}\n{worked}"
    parts = [opening]
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


def token_probs(
    knobs: ModelKnobs, level: float, hedged: bool, n: int, rng: random.Random, wrong: bool = False
) -> list[float]:
    mean = knobs.token_prob_easy + (knobs.token_prob_hard - knobs.token_prob_easy) * level
    if hedged:
        mean *= 0.85  # a model that hedges is unsure of its words too
    if wrong:
        mean *= 0.93  # a wrong final answer comes with slightly less sure words, on average
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
