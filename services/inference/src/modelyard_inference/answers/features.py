"""Compact, explainable features of one answer for the trained scorer (``scorer``).

Two groups:
- ``general`` features apply to every answer: hedges, an off-topic or too-short reply, token
  log-probability statistics when the backend returned them (mean, minimum, 10th percentile and median of
  the per-token log-probabilities; all 0 with ``has_logprobs`` 0 when there are none, so a model file
  trained without them still scores answers that have them, and the other way round), and the share of
  self-consistency samples that disagree with the kept answer (0 with one sample, see ``consistency``);
- ``math`` features apply to a math word problem only (``Analysis.is_math``; 0 otherwise): what the
  question asks (length, how many numbers, percentages, fractions, money, multi-step cue words) and what the
  answer shows (steps, a marked final answer, a final answer that is not a whole number, that copies a
  question number or is not the last computed value, question numbers never used, operands from nowhere,
  self-doubt phrases, an unterminated last line).

Hard verifier findings are not features: they escalate on their own (``scorer``).
Every feature has a human label for the reasons; ``FEATURES`` fixes the order of a model file's weights.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .analysis import Analysis
from .numbers import close
from .verifiers import Finding, normalise, phrases, uncertainty_phrases

GENERAL, MATH = "general", "math"
NEAR_GUESS_LOGPROB = math.log(0.02)
MAX_STEPS = 12
MAX_COUNT = 4  # counts are capped: the fifth unused number says little more than the fourth
_MULTISTEP = re.compile(
    r"\b(?:each|every|per|twice|half|more than|less than|fewer than|remaining|rest|left|total|times|average|"
    r"respectively|after|then|instead|except|discount|increase|decrease|profit|percent)\b",
    re.IGNORECASE,
)
_FRACTION_WORDS = re.compile(r"\b(?:half|third|thirds|quarter|quarters|fourth|fifths?|tenths?)\b|\d/\d", re.IGNORECASE)
_AGE = re.compile(r"\b(?:years? old|ages?|older|younger|born|birthday)\b", re.IGNORECASE)
_TIME_UNITS = re.compile(r"\b(?:minutes?|hours?|days?|weeks?|months?|years?|daily|weekly|monthly|annually)\b", re.IGNORECASE)
#: prose reasoning between the calculations: an answer that argues more than it computes
_CONNECTIVES = re.compile(r"\b(?:since|therefore|thus|hence|means|because|not|however|but)\b", re.IGNORECASE)
_TERMINAL = (".", "!", "?", ")", '"', "'", "*", "]", "`", "}")


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    group: str
    label: str  # how a reason names it: "{label} ({value})"


FEATURES: tuple[Feature, ...] = (
    Feature("hedged", GENERAL, "hedging phrase"),
    Feature("extra_hedges", GENERAL, "further hedging phrases"),
    Feature("off_topic", GENERAL, "off topic"),
    Feature("too_short", GENERAL, "too short for the question"),
    Feature("has_logprobs", GENERAL, "token log-probabilities present"),
    Feature("lp_neg_mean", GENERAL, "mean token surprise (-mean logprob)"),
    Feature("lp_neg_min", GENERAL, "least likely token (-min logprob)"),
    Feature("lp_neg_p10", GENERAL, "10th-percentile token surprise"),
    Feature("lp_neg_p50", GENERAL, "median token surprise"),
    Feature("lp_near_guess", GENERAL, "a near-guess token (p < 0.02)"),
    Feature("sc_disagreement", GENERAL, "samples disagreeing with this final answer"),
    Feature("is_math", MATH, "math word problem"),
    Feature("q_log_words", MATH, "question length (log words)"),
    Feature("q_numbers", MATH, "numbers in the question"),
    Feature("q_percent", MATH, "question has a percentage"),
    Feature("q_fraction", MATH, "question has a fraction"),
    Feature("q_money_or_decimal", MATH, "question has money or decimals"),
    Feature("q_multistep_words", MATH, "multi-step cue words in the question"),
    Feature("q_age", MATH, "an age question"),
    Feature("q_time_units", MATH, "time units in the question"),
    Feature("a_log_chars", MATH, "answer length (log chars)"),
    Feature("a_steps", MATH, "computed steps"),
    Feature("a_final_marked", MATH, "final answer stated explicitly"),
    Feature("a_final_not_integer", MATH, "final answer not a whole number"),
    Feature("a_final_in_question", MATH, "final answer repeats a question number"),
    Feature("a_final_not_last_result", MATH, "final answer is not the last computed value"),
    Feature("a_unused_question_numbers", MATH, "question numbers the answer never uses"),
    Feature("a_ungrounded_operands", MATH, "operands not in the question nor computed"),
    Feature("a_self_doubt", MATH, "self-doubt phrases"),
    Feature("a_unterminated", MATH, "last line unfinished, no marked answer"),
    Feature("a_result_mismatch", MATH, "shown result differs from its calculation"),
    Feature("a_connectives", MATH, "argument words (since, therefore, means, not, ...)"),
    Feature("a_log_chars_per_step", MATH, "prose per computed step (log chars)"),
)
INDEX = {f.name: i for i, f in enumerate(FEATURES)}
#: yes/no features: a reason names them without a value
FLAGS = frozenset(
    "hedged off_topic too_short has_logprobs lp_near_guess is_math q_percent q_fraction q_money_or_decimal q_age "
    "a_final_marked a_final_not_integer a_final_in_question a_final_not_last_result a_unterminated".split()
)


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    position = q * (len(sorted_values) - 1)
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def extract(
    a: Analysis, findings: Sequence[Finding], logprobs: Sequence[float] | None = None, disagreement: float = 0.0
) -> list[float]:
    """The feature vector of one answer, in ``FEATURES`` order (``disagreement``: share of the samples)."""
    x = [0.0] * len(FEATURES)
    x[INDEX["sc_disagreement"]] = disagreement
    names = {f.verifier for f in findings}
    hedges = len(uncertainty_phrases(a)) if "hedging" in names else 0
    x[INDEX["hedged"]] = float(hedges > 0)
    x[INDEX["extra_hedges"]] = float(max(hedges - 1, 0))
    x[INDEX["off_topic"]] = float("off_topic" in names)
    x[INDEX["too_short"]] = float("too_short" in names)
    if logprobs:
        ordered = sorted(logprobs)
        x[INDEX["has_logprobs"]] = 1.0
        x[INDEX["lp_neg_mean"]] = -math.fsum(ordered) / len(ordered)
        x[INDEX["lp_neg_min"]] = -ordered[0]
        x[INDEX["lp_neg_p10"]] = -_quantile(ordered, 0.10)
        x[INDEX["lp_neg_p50"]] = -_quantile(ordered, 0.50)
        x[INDEX["lp_near_guess"]] = float(ordered[0] < NEAR_GUESS_LOGPROB)
    if not a.is_math or not a.response.strip():
        return x
    query = a.query
    x[INDEX["is_math"]] = 1.0
    x[INDEX["q_log_words"]] = math.log1p(len(query.split()))
    x[INDEX["q_numbers"]] = float(min(len(a.question_numbers), 2 * MAX_COUNT))
    x[INDEX["q_percent"]] = float(any(n.percent for n in a.question_numbers) or "percent" in query.lower())
    x[INDEX["q_fraction"]] = float(bool(_FRACTION_WORDS.search(query)))
    x[INDEX["q_money_or_decimal"]] = float(any(n.currency or n.decimals for n in a.question_numbers))
    x[INDEX["q_multistep_words"]] = float(min(len(_MULTISTEP.findall(query)), 2 * MAX_COUNT))
    x[INDEX["q_age"]] = float(bool(_AGE.search(query)))
    x[INDEX["q_time_units"]] = float(min(len(_TIME_UNITS.findall(query)), MAX_COUNT))
    x[INDEX["a_log_chars"]] = math.log1p(len(a.response))
    x[INDEX["a_connectives"]] = float(min(len(_CONNECTIVES.findall(a.response)), 2 * MAX_COUNT))
    steps = a.arithmetic.steps
    distinct_steps = len({(round(s.claimed, 6), s.operands) for s in steps})
    x[INDEX["a_steps"]] = float(min(distinct_steps, MAX_STEPS))
    x[INDEX["a_log_chars_per_step"]] = math.log1p(len(a.response) / (distinct_steps + 1))
    final = a.final
    x[INDEX["a_final_marked"]] = float(final.marked and final.value is not None)
    if final.value is not None:
        x[INDEX["a_final_not_integer"]] = float(abs(final.value - round(final.value)) > 1e-9)
        x[INDEX["a_final_in_question"]] = float(round(final.value, 6) in {round(n.value, 6) for n in a.question_numbers})
        if steps:
            last = steps[-1]
            # the final answer may show the last result rounded ("8.57" for 60 / 7) or as a percentage
            x[INDEX["a_final_not_last_result"]] = float(
                not any(close(value, final.value, final.decimals) for value in (last.claimed, last.claimed * 100))
            )
    x[INDEX["a_unused_question_numbers"]] = float(min(a.unused_question_numbers, MAX_COUNT))
    x[INDEX["a_ungrounded_operands"]] = float(min(a.operand_sources[2], MAX_COUNT))
    x[INDEX["a_self_doubt"]] = float(min(len(phrases().self_doubt.found(normalise(a.response))), MAX_COUNT))
    x[INDEX["a_unterminated"]] = float(not final.marked and not a.response.rstrip().endswith(_TERMINAL))
    x[INDEX["a_result_mismatch"]] = float(min(len(a.arithmetic.annotation_mismatches), MAX_COUNT))
    return x
