"""The verdict on one model call's answer: every choice it returned, judged as the cascade needs.

* A text choice gets the confidence score (``confidence.score``: log-probabilities, hedges, truncation
  ...), and 0 when ``checks.defects`` rules it out (JSON that does not parse or fit ``response_format``,
  a refusal).
* A tool-call choice has no text to score: its check is the evidence. Calls that name an offered tool
  with arguments valid against its schema are a sure answer (confidence 1); any defect makes it 0.
* A call that returned several choices (``n``) is as good as its weakest: the caller gets all of them.
* A text cut off at the caller's own ``max_tokens`` / ``max_completion_tokens`` is what the caller asked
  for, not a defect of the model: its ``finish_reason: "length"`` is not held against it (JSON or tool
  arguments cut short still fail their checks).
"""

from __future__ import annotations

from modelyard_events import Choice, Generation

from .checks import defects
from .completions import Completion
from .confidence import Confidence, score

VALID_TOOL_CALLS = "tool calls valid against their schemas"


def judge_choice(query: str, choice: Choice, logprobs: list[float] | None, generation: Generation | None) -> Confidence:
    found = defects(choice, generation)
    if found:
        return Confidence(0.0, found)
    if choice.tool_calls or choice.function_call is not None:
        return Confidence(1.0, [VALID_TOOL_CALLS])
    finish = choice.finish_reason
    if finish == "length" and generation is not None and (generation.max_tokens or generation.max_completion_tokens):
        finish = None  # the caller's limit
    return score(query, choice.content or "", logprobs=logprobs, finish_reason=finish)


def judge(query: str, c: Completion, generation: Generation | None) -> Confidence:
    """The weakest choice's verdict (its reasons prefixed with its index when there are several)."""
    if not c.choices:  # a completion built by hand (tests): its text is its one choice
        return score(query, c.text, logprobs=c.logprobs, finish_reason=c.finish_reason)
    logprobs = c.choice_logprobs or (None,) * len(c.choices)
    verdicts = [judge_choice(query, ch, lp, generation) for ch, lp in zip(c.choices, logprobs, strict=True)]
    weakest = min(range(len(verdicts)), key=lambda i: verdicts[i].confidence)
    verdict = verdicts[weakest]
    if len(verdicts) == 1:
        return verdict
    return Confidence(verdict.confidence, [f"choice {c.choices[weakest].index}: {r}" for r in verdict.reasons])
