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
* ``answer_of`` / ``preferred``: the answer a judged call gives the query, and the one it keeps.
"""

from __future__ import annotations

from dataclasses import replace

from modelyard_events import Answer, Choice, Generation, ModelClass

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


def answer_of(c: Completion, model_class: ModelClass, model: str, confidence: float, chosen: int | None = None) -> Answer:
    """The answer a call gave: its text, and every choice when the text alone does not say it all; of
    self-consistency samples, the ``chosen`` one alone (the caller asked for one answer)."""
    choices = list(c.choices)
    if chosen is not None and choices:
        choices = [choices[chosen].model_copy(update={"index": 0})]
    text = (choices[0].content or "") if choices else c.text
    whole = len(choices) > 1 or (len(choices) == 1 and not choices[0].plain)
    return Answer(text=text, model_class=model_class, model=model, confidence=confidence,
                  choices=choices if whole else None)


def preferred(answer: Answer, hard: bool, earlier: Answer | None) -> Answer:
    """The answer a query keeps if nothing better comes: a larger model's answer replaces a smaller one's unsure
    answer, unless it failed a hard verifier (empty, refused, cut off, wrong arithmetic ...); then the surer of the
    two. Confidences are not compared otherwise: the scorer is trained on small-model answers, so its confidence
    in a larger model's answer is not on the same scale (on the recorded GSM8K answers, keeping the more
    confident answer kept the small one on a quarter of the escalated questions at the neutral threshold and
    cost 0.016 of quality; docs/benchmarks.md)."""
    if earlier is None or (not hard and answer.model_class != earlier.model_class):
        return answer
    return answer if answer.confidence >= earlier.confidence else earlier
