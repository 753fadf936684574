"""Judge one model call: its answer, or the k answers of a self-consistency request compared by their final answers.

With self-consistency on (a tenant policy, for reasoning traffic: ``analysis.reasoning_question``) the SLM
worker asks for k completions in one request (OpenAI ``n``). Each completion is scored; one without a hard
finding and with a final answer (the number it ends on, or the option letter of a multiple-choice
question) casts a vote for that answer. Agreement = votes for the most common answer / k.

* No completion votes (free text, or every one failed a verifier): the most confident completion is kept
  and judged alone, as with one sample.
* The most common answer has no more than ``min_agreement`` of the k samples (default 0.5: no strict
  majority): a hard finding ``self_consistency`` ("answers disagree: 18, 20, 18 ..."), so the answer
  escalates whatever its score.
* Otherwise the kept completion is the most confident one with the majority answer, scored again with the
  feature ``sc_disagreement`` = 1 - agreement: a split vote lowers confidence (a prior weight in the
  shipped model; learned once labelled k-sample data exists).

The worker and ``modelyard cascade-score`` both call ``judge``: one code path online and offline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .analysis import Analysis
from .scorer import Model, Score, score_analysis
from .verifiers import HARD, SOFT, Finding

DEFAULT_MIN_AGREEMENT = 0.5


class Sample(Protocol):
    """One completion as a backend returns it."""

    @property
    def text(self) -> str: ...

    @property
    def finish_reason(self) -> str | None: ...

    @property
    def logprobs(self) -> Sequence[float] | None: ...


@dataclass(frozen=True, slots=True)
class Judgement:
    score: Score
    #: index of the kept completion among the samples
    chosen: int
    #: each sample's vote (its normalised final answer), None where it casts none; empty for one sample
    votes: tuple[str | None, ...] = ()
    #: share of the k samples behind the kept answer's final answer; None when nothing was compared
    agreement: float | None = None


def vote_of(a: Analysis, s: Score) -> str | None:
    """The final answer a sample votes for: an option letter, or a number written plainly; None: no vote."""
    if s.hard:
        return None
    if a.options:
        return a.letter if a.letter in a.options else None
    if a.is_math and a.final.value is not None:
        value = round(a.final.value, 6)
        return str(int(value)) if value == int(value) else str(value)
    return None


def judge(
    query: str,
    samples: Sequence[Sample],
    *,
    model: Model | None = None,
    response_format: dict[str, Any] | None = None,
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
) -> Judgement:
    """The verdict on one model call: ``samples`` are its completions (one, or k with self-consistency)."""
    if not samples:
        raise ValueError("a model call with no completion cannot be judged")
    analyses = [Analysis(query, s.text) for s in samples]
    scores = [
        score_analysis(a, logprobs=s.logprobs, finish_reason=s.finish_reason, response_format=response_format,
                       model=model)
        for a, s in zip(analyses, samples, strict=True)
    ]
    if len(samples) == 1:
        return Judgement(scores[0], 0)
    votes = tuple(vote_of(a, s) for a, s in zip(analyses, scores, strict=True))
    counted = Counter(v for v in votes if v is not None)
    if not counted:
        best = max(range(len(scores)), key=lambda i: scores[i].confidence)
        return Judgement(scores[best], best, votes)
    majority, count = counted.most_common(1)[0]
    agreement = count / len(samples)
    shown = ", ".join(v if v is not None else "-" for v in votes)
    chosen = max((i for i, v in enumerate(votes) if v == majority), key=lambda i: scores[i].confidence)
    a, s = analyses[chosen], samples[chosen]
    if agreement <= min_agreement:
        finding = Finding("self_consistency", HARD, f"answers disagree: {shown} ({count} of {len(samples)} agree)")
        extra: list[Finding] = [finding]
    else:
        extra = [] if count == len(samples) else [
            Finding("self_consistency", SOFT, f"{count} of {len(samples)} agree ({shown})")
        ]
    rescored = score_analysis(a, logprobs=s.logprobs, finish_reason=s.finish_reason, response_format=response_format,
                              model=model, disagreement=1.0 - agreement, extra=extra)
    return Judgement(rescored, chosen, votes, round(agreement, 4))
