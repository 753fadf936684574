"""One pass over a (question, answer) pair that the verifiers and the scorer's features share.

- the question's type: multiple choice (two or more option lines), a math word problem (numbers to compute
  with and a quantity asked for), and for a math question what the answer should look like (a count asks for
  a whole number);
- the answer's final answer: after "####", "answer is", "Final answer:", "\\boxed{}", else the last number of
  its last line that has one (how GSM8K-style answers are graded);
- the arithmetic it shows (``arithmetic.check``) and whether its operands come from the question
  ("grounded"), from an earlier step, or from nowhere.

Everything is computed lazily and once: a helpdesk answer without numbers costs a few regex scans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from . import arithmetic, numbers

_CHOICE_LINE = re.compile(r"^\s*\(?([A-Ja-j])[.):]\s", re.MULTILINE)
_MATH_ASK = re.compile(
    r"\bhow (?:many|much|long|far|fast|old|tall|often)\b|\bwhat (?:is|was|will be) the (?:total|sum|difference|"
    r"average|cost|price|number|amount|value|percentage|area|perimeter|ratio|speed|profit|minimum|maximum|weight|"
    r"temperature|length|height|distance|score|rate|age|volume)\b|\bwhat (?:temperature|time|percentage)\b|\bwhat percent"
    r"|\bcalculate\b|\bcompute\b|\bhow much\b|\bfind the (?:total|sum|number|value|cost)\b",
    re.IGNORECASE,
)
#: "What was the original price ...?", "What's the distance ...?": a what/how question
_QUANTITY_QUESTION = re.compile(r"\b(?:what|how)(?:'s)?\b[^.?!]*\?", re.IGNORECASE)
_COUNT_ASK = re.compile(r"\bhow many (?:more |fewer |less |total |in total |)?(?P<noun>[a-z]+)", re.IGNORECASE)
#: "how many hours/dollars/..." may be fractional; other nouns after "how many" are counted things
_MEASURE_NOUNS = frozenset(
    "hours minutes seconds days weeks months years miles kilometers km meters feet inches yards pounds ounces "
    "kilograms grams gallons liters litres quarts pints cups dollars cents euros percent times degrees calories "
    "square cubic acres tons servings slices pages".split()
)
_FINAL_MARKED = re.compile(
    r"####\s*(?P<hash>[^\n]*)|\\boxed\{(?P<boxed>[^{}]*)\}"
    r"|(?:final answer|the answer is|answer:)\s*(?:is\s*)?[:\-]?\s*(?P<said>[^\n]*)",
    re.IGNORECASE,
)
_LETTER_ANSWER = re.compile(
    r"(?:^|answer(?: is)?[:\s]*|option\s*)\(?\b([A-J])\b\)?(?:[.):\s]|$)", re.IGNORECASE | re.MULTILINE
)


@dataclass(frozen=True, slots=True)
class FinalAnswer:
    text: str  # what stands as the answer ("18", "$1,200", "B"), "" when none
    value: float | None  # its number, when it has one
    marked: bool  # stated explicitly ("#### 18", "the answer is 18") rather than taken from the last line
    decimals: int = 0


class Analysis:
    def __init__(self, query: str, response: str) -> None:
        self.query = query
        self.response = response

    # --- the question ------------------------------------------------------------------------------
    @cached_property
    def options(self) -> list[str]:
        """Option letters of a multiple-choice question (upper case), empty when it is not one."""
        letters = [m.group(1).upper() for m in _CHOICE_LINE.finditer(self.query)]
        return letters if len(letters) >= 2 else []

    @cached_property
    def question_numbers(self) -> list[numbers.Number]:
        return numbers.numbers(self.query)

    @cached_property
    def question_quantities(self) -> set[float]:
        return numbers.quantities(self.query)

    @cached_property
    def is_math(self) -> bool:
        """A word problem: two quantities or more in the question, and a quantity asked for or computed."""
        if self.options or _stated_quantities(self.query, self.question_numbers) < 2:
            return False
        return bool(_MATH_ASK.search(self.query)) or len(self.arithmetic.steps) >= 1

    @cached_property
    def count_noun(self) -> str | None:
        """The counted noun of a "how many X" question whose answer must be a whole number."""
        m = _COUNT_ASK.search(self.query)
        if m is None or m.group("noun").lower() in _MEASURE_NOUNS:
            return None
        return m.group("noun").lower()

    # --- the answer --------------------------------------------------------------------------------
    @cached_property
    def arithmetic(self) -> arithmetic.Arithmetic:
        return arithmetic.check(self.response)

    @cached_property
    def answer_numbers(self) -> list[numbers.Number]:
        return numbers.numbers(re.sub(r"<<[^<>]*>>", " ", self.response))

    @cached_property
    def final(self) -> FinalAnswer:
        text = self.response
        marked = list(_FINAL_MARKED.finditer(text))
        if marked:
            m = marked[-1]
            said = next(g for g in (m.group("hash"), m.group("boxed"), m.group("said")) if g is not None).strip()
            found = numbers.numbers(said)
            if found:
                n = found[0] if m.group("hash") is not None or m.group("boxed") is not None else found[-1]
                return FinalAnswer(said, n.value, True, n.decimals)
            if m.group("hash") is not None or m.group("boxed") is not None:
                return FinalAnswer(said, None, True)
        for line in reversed(text.strip().splitlines()):
            found = numbers.numbers(re.sub(r"<<[^<>]*>>", " ", line))
            if found:
                n = found[-1]
                return FinalAnswer(line[n.start : n.end], n.value, False, n.decimals)
        return FinalAnswer("", None, False)

    @cached_property
    def letter(self) -> str | None:
        """The option letter a multiple-choice answer gives (None when it gives none)."""
        for m in _LETTER_ANSWER.finditer(self.response.strip()[:400]):
            return m.group(1).upper()
        return None

    @cached_property
    def operand_sources(self) -> tuple[int, int, int]:
        """(from the question, from an earlier result or a known constant, from nowhere) over all operands."""
        known = set(self.question_quantities)
        from_question = from_steps = ungrounded = 0
        for step in self.arithmetic.steps:
            for value in step.operands:
                v = round(value, 6)
                if v in self.question_quantities:
                    from_question += 1
                elif v in known or v in numbers.COMMON_CONSTANTS or _derived(v, known):
                    from_steps += 1
                else:
                    ungrounded += 1
            known.add(round(step.claimed, 6))
            known.add(round(step.computed, 6))
        return from_question, from_steps, ungrounded

    @cached_property
    def unused_question_numbers(self) -> int:
        """Numbers the question states in digits that the answer never writes (distinct values)."""
        stated = {round(n.value, 6) for n in self.question_numbers}
        written: set[float] = set()
        for n in self.answer_numbers:
            written.update(round(f, 6) for f in numbers.forms(n))
        for step in self.arithmetic.steps:
            written.update(round(v, 6) for v in step.operands)
        return len(stated - written)


_COUNT_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand half twice double "
    "triple dozen quarter third".split()
)


def _stated_quantities(query: str, stated: list[numbers.Number]) -> int:
    """Numbers the question writes in digits, plus counting words ("three", "twice", "a dozen")."""
    return len(stated) + sum(1 for w in re.findall(r"[a-z]+", query.lower()) if w in _COUNT_WORDS)


def reasoning_question(query: str) -> bool:
    """Traffic that self-consistency serves, judged from the question alone (before any answer exists):
    multiple choice, or a word problem (two quantities or more and a quantity asked for)."""
    if len(_CHOICE_LINE.findall(query)) >= 2:
        return True
    asks = _MATH_ASK.search(query) or _QUANTITY_QUESTION.search(query)
    return bool(asks) and _stated_quantities(query, numbers.numbers(query)) >= 2


def _derived(value: float, known: set[float]) -> bool:
    """A value one step away from a known one (its tenth, its percentage): ``0.2`` from a stated ``20``."""
    return round(value * 100, 6) in known or round(value / 100, 6) in known or round(value * 10, 6) in known
