"""Word problems: a hidden right answer per prompt, a few wrong ones, and how sampled answers agree.

A prompt with at least two numbers that asks for something ("How many ...?", "calculate", a question
mark) is a word problem. Its right answer folds the prompt's first numbers with operations picked by
a hash of the prompt (so it is the same in every process); its wrong answers (distractors) are the
same numbers with other operations, or the last step left out: the mistakes a model makes fluently,
with arithmetic that holds. Each choice's final answer is right with probability ``p_right`` (from the
difficulty, the model's knobs and a per-prompt hardness, so that a model fails some questions
again and again as real models do); a wrong choice lands on the most common distractor with probability
``distractor_top_share`` and on one of the others otherwise, so right answers agree with each other
more often than wrong ones do. A share of wrong choices (``slip_rate``) instead show the right steps
with a slip in the last one ("13 * 2 = 28"), which re-checking the arithmetic catches.

Every such answer ends with the final answer in two recognisable forms: ``The answer is 42.`` and a
last line ``#### 42`` (GSM8K's convention).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

from modelyard_simulator.config import ModelKnobs

_NUMBER = re.compile(r"\d+(?:,\d{3})*")  # 1,200 is one number
_ASKS = re.compile(r"\?|how many|how much|calculate|compute|what is|find the|total", re.IGNORECASE)
_OPS = ("+", "-", "*")
_LEADS = ("First", "Then", "Next", "After that")
_MAX_VALUE = 10_000_000


def prompt_numbers(text: str, limit: int = 4) -> list[int]:
    return [int(n.replace(",", "")[:9]) for n in _NUMBER.findall(text)[:limit]]


def is_word_problem(question: str) -> bool:
    return _ASKS.search(question) is not None and len(_NUMBER.findall(question)) >= 2


@dataclass(frozen=True, slots=True)
class Step:
    left: int
    op: str
    right: int
    result: int


@dataclass(frozen=True, slots=True)
class Solution:
    steps: tuple[Step, ...]
    value: int

    def write(self, shown_value: int | None = None) -> str:
        """The worked solution; ``shown_value`` replaces the last step's result (an arithmetic slip)."""
        final = self.value if shown_value is None else shown_value
        lines = []
        for k, step in enumerate(self.steps):
            result = final if k == len(self.steps) - 1 else step.result
            lines.append(f"{_LEADS[min(k, 3)]}, {step.left} {step.op} {step.right} = {result}.")
        lines.append(f"The answer is {final}.")
        return " ".join(lines) + f"\n#### {final}"


@dataclass(frozen=True, slots=True)
class Problem:
    right: Solution
    #: distractors, the most common first
    wrong: tuple[Solution, ...]
    #: how much harder than its difficulty says this prompt is for every model (a standard normal
    #: deviate from the prompt's hash): real models fail the same questions again and again
    hardness: float = 0.0


def _fold(numbers: list[int], ops: tuple[str, ...]) -> Solution:
    value, steps = numbers[0], []
    for number, op in zip(numbers[1:], ops, strict=False):
        result = value + number if op == "+" else value - number if op == "-" else value * number
        if result <= 0 or result > _MAX_VALUE:  # keep every answer a plausible positive count
            op, result = "+", value + number
        steps.append(Step(value, op, number, result))
        value = result
    return Solution(tuple(steps), value)


@lru_cache(maxsize=4096)
def problem_for(question: str, distractors: int) -> Problem:
    digest = hashlib.blake2b(question.encode(), digest_size=16).digest()
    numbers = prompt_numbers(question)
    while len(numbers) < 2:  # "always" on a prompt without numbers: numbers from the hash
        numbers.append(2 + digest[len(numbers)] % 40)
    numbers = numbers[:3] if digest[0] % 3 else numbers  # most solutions use the first three numbers
    count = len(numbers) - 1
    right_ops = tuple(_OPS[b % 3] for b in digest[1 : 1 + count])
    right = _fold(numbers, right_ops)
    seen = {right.value}
    wrong: list[Solution] = []
    alternatives = [ops for ops in itertools.product(_OPS, repeat=count) if ops != right_ops]
    random.Random(digest).shuffle(alternatives)
    candidates = [_fold(numbers, ops) for ops in alternatives]
    if count > 1:
        candidates.insert(digest[2] % 3, _fold(numbers[:-1], right_ops[:-1]))  # the last step left out
    candidates += [_fold([right.value, k], ("+",)) for k in (1, 2, 10, 100)]  # an off-by-something
    for candidate in candidates:
        if candidate.value not in seen:
            seen.add(candidate.value)
            wrong.append(candidate)
            if len(wrong) == distractors:
                break
    hardness = NormalDist().inv_cdf((int.from_bytes(digest[8:14], "big") + 0.5) / 2**48)
    return Problem(right, tuple(wrong), hardness)


@dataclass(frozen=True, slots=True)
class Sampled:
    text: str
    final: int
    right: bool
    slipped: bool = False


def p_right(knobs: ModelKnobs, level: float, hardness: float = 0.0) -> float:
    """Linear in the difficulty, then shifted on the logit scale by ``right_rate_spread * hardness``."""
    p = knobs.right_rate_easy + (knobs.right_rate_hard - knobs.right_rate_easy) * level
    if not knobs.right_rate_spread or p <= 0 or p >= 1:
        return p
    return 1 / (1 + math.exp(-(math.log(p / (1 - p)) - knobs.right_rate_spread * hardness)))


def sample(problem: Problem, knobs: ModelKnobs, level: float, rng: random.Random) -> Sampled:
    """One choice's worked solution and final answer, right with probability ``p_right``."""
    if rng.random() < p_right(knobs, level, problem.hardness) or not problem.wrong:
        return Sampled(problem.right.write(), problem.right.value, True)
    wrong = problem.wrong
    index = 0 if len(wrong) == 1 or rng.random() < knobs.distractor_top_share else rng.randrange(1, len(wrong))
    chosen = wrong[index]
    if knobs.slip_rate and rng.random() < knobs.slip_rate:
        return Sampled(problem.right.write(shown_value=chosen.value), chosen.value, False, slipped=True)
    return Sampled(chosen.write(), chosen.value, False)
