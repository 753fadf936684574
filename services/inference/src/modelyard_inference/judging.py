"""The verdict on one model call's answer, for the cascade: every choice it returned (issue 19, over the
answer judge of issue 17, ``answers``).

* Text choices are judged by ``answers.judge`` (verifiers, the trained scorer) with the request's
  ``response_format``: JSON that does not parse or fit the schema is a hard finding.
* A choice with tool calls or a refusal has no text to judge: ``checks.defects`` is the evidence. Calls of
  offered tools with arguments valid against their schemas are a sure answer (confidence 1); a defect is
  a hard finding (the answer escalates).
* Self-consistency samples (k completions the worker asked for, the tenant's policy) are compared by
  their final answers (``answers.judge``); the ``n`` choices a caller asked for are all its answers, so
  the weakest of them counts.
* A text cut at the caller's own ``max_tokens`` / ``max_completion_tokens`` is what the caller asked
  for: its ``finish_reason: "length"`` is not held against it (JSON cut short still fails its check).
"""

from __future__ import annotations

from dataclasses import replace

from modelyard_events import Choice, Generation

from .answers import Judgement, Model, Score, judge
from .checks import calls_of, defects
from .completions import Completion, Sample

VALID_TOOL_CALLS = "tool_call: calls valid against their schemas"


def _score_choice(query: str, choice: Choice | None, sample: Sample, generation: Generation | None, model: Model) -> Score:
    if choice is not None and (found := defects(choice, generation)):
        return Score(0.0, 1.0, True, [str(f) for f in found], found)
    if choice is not None and calls_of(choice):
        return Score(1.0, 0.0, False, [VALID_TOOL_CALLS])
    finish = sample.finish_reason
    if finish == "length" and generation is not None and (generation.max_tokens or generation.max_completion_tokens):
        finish = None  # the caller's own limit
    response_format = generation.response_format if generation is not None else None
    return judge(query, [Sample(sample.text, finish, sample.logprobs)], model=model, response_format=response_format).score


def judge_call(query: str, c: Completion, generation: Generation | None, *, model: Model, min_agreement: float,
               voting: bool) -> Judgement:
    """The verdict on a call: its k self-consistency samples compared (``voting``), else its choices each judged."""
    samples = c.samples
    if voting and len(samples) > 1:
        response_format = generation.response_format if generation is not None else None
        return judge(query, samples, model=model, response_format=response_format, min_agreement=min_agreement)
    choices: list[Choice | None] = list(c.choices) or [None]
    scores = [_score_choice(query, ch, s, generation, model) for ch, s in zip(choices, samples, strict=True)]
    weakest = min(range(len(scores)), key=lambda i: scores[i].confidence)
    if len(scores) == 1:
        return Judgement(scores[0], 0)
    score = scores[weakest]
    return Judgement(replace(score, reasons=[f"choice {weakest}: {r}" for r in score.reasons]), 0)
