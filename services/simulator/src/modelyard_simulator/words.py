"""Tokens and content words: the simulator's stand-in for a tokenizer and for "what a text is about"."""

from __future__ import annotations

import re

# Words with an optional leading space, short digit runs, punctuation runs, whitespace runs: together
# they cover every character, so "".join(tokenize(t)) == t. About 1.3 tokens per English word.
TOKEN = re.compile(r" ?[A-Za-z]+| ?[0-9]{1,3}| ?[^\sA-Za-z0-9]+|\s+")
_WORD = re.compile(r"[a-z][a-z0-9'-]{3,}")

STOPWORDS = frozenset(
    "about above after again against also been before being below between both cannot could does doing down "
    "during each from further have having here hers herself himself into itself just more most myself once only "
    "other ours ourselves over same should some such than that their theirs them themselves then there these "
    "they this those through under until very were what when where which while will with would your yours "
    "yourself yourselves please thanks thank hello need want know tell give make like dear".split()
)


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(text)


def count_prompt_tokens(texts: list[str]) -> int:
    """OpenAI-like prompt size: about 4 characters per token plus a small overhead per message."""
    return 3 + sum(4 + (len(t) + 3) // 4 for t in texts)


def content_words(text: str, limit: int = 6) -> list[str]:
    """The text's first distinct content words (what an answer should talk about)."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        word = word.strip("'-")
        if len(word) >= 4 and word not in STOPWORDS:
            seen.setdefault(word, None)
            if len(seen) == limit:
                break
    return list(seen)
