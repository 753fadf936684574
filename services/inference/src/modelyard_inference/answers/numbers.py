"""Numbers as a reader of a word problem sees them: "$1,200.50", "20%", "1/6", "three", "half", "a dozen".

Two views of one text:
- ``quantities(text)``: every value a question or an answer states, with the forms a solver may use in a
  calculation ("20%" gives 20 and 0.2, "half" gives 2 and 0.5): the set a computation's operands are
  checked against ("grounded" operands) and the question numbers an answer should use.
- ``tokens(text)``: a flat token stream (number, operator, bracket, "=", word, other) for the equation
  reader in ``arithmetic``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: a written number: optional minus and currency sign; digits with well-formed thousands groups, or plain digits
#: (a malformed group such as "130,00" is reported by ``malformed_number_at_end``, not read as a number)
_NUMBER = re.compile(
    r"(?<![\w.])(?P<neg>[-\u2212](?=[$\u20ac\u00a3]?\d))?(?P<cur>[$\u20ac\u00a3])?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?P<pct>\s?%)?"
)
_GLUED = re.compile(r"[A-Za-z_]\w*")  # "10x", "3rd": a number glued to letters is a variable or an ordinal ...
#: ... unless the letters are a unit: "140cm", "5kg", "10am" state quantities
GLUED_UNITS = frozenset("cm mm km m kg g mg l ml lb lbs oz ft in mph kmh am pm h hr hrs min mins s sec k".split())

WORD_VALUES: dict[str, tuple[float, ...]] = {
    "zero": (0,), "one": (1,), "two": (2,), "three": (3,), "four": (4,), "five": (5,), "six": (6,),
    "seven": (7,), "eight": (8,), "nine": (9,), "ten": (10,), "eleven": (11,), "twelve": (12,),
    "thirteen": (13,), "fourteen": (14,), "fifteen": (15,), "sixteen": (16,), "seventeen": (17,),
    "eighteen": (18,), "nineteen": (19,), "twenty": (20,), "thirty": (30,), "forty": (40,), "fifty": (50,),
    "sixty": (60,), "seventy": (70,), "eighty": (80,), "ninety": (90,), "hundred": (100,), "thousand": (1000,),
    "million": (1_000_000,), "once": (1,), "twice": (2,), "double": (2,), "doubles": (2,), "doubled": (2,),
    "thrice": (3,), "triple": (3,), "tripled": (3,), "triples": (3,), "quadruple": (4,), "half": (2, 0.5),
    "halves": (2, 0.5), "halved": (2, 0.5), "third": (3, 1 / 3), "thirds": (3, 1 / 3), "quarter": (4, 0.25),
    "quarters": (4, 0.25), "fourth": (4, 0.25), "fourths": (4, 0.25), "fifth": (5, 0.2), "fifths": (5, 0.2),
    "tenth": (10, 0.1), "dozen": (12,), "dozens": (12,), "pair": (2,), "pairs": (2,), "score": (20,),
    "week": (7,), "weeks": (7,), "weekly": (7, 52), "year": (12, 52, 365), "years": (12, 52, 365),
    "month": (30, 4), "months": (12, 30, 4), "hour": (60,), "hours": (60,), "minute": (60,), "minutes": (60,),
    "day": (24,), "days": (24, 7), "daily": (7, 365), "percent": (100,), "cents": (100,), "cent": (100,),
    "feet": (12,), "foot": (12,), "yard": (3, 36), "yards": (3, 36), "pound": (16,), "pounds": (16,),
    "gallon": (4, 128), "gallons": (4, 128), "quart": (4,), "dime": (10, 0.1), "dimes": (10, 0.1),
    "nickel": (5, 0.05), "nickels": (5, 0.05), "penny": (1, 0.01), "pennies": (1, 0.01),
}
#: values any solution may use without the question stating them (unit and identity constants)
COMMON_CONSTANTS = frozenset({0.0, 1.0, 2.0, 100.0, 0.01, 1000.0})
_WORDS = re.compile(r"[a-z]+(?:-[a-z]+)?")


@dataclass(frozen=True, slots=True)
class Number:
    value: float
    start: int
    end: int
    decimals: int  # digits after the point as written: the precision a rounded result is shown with
    percent: bool
    currency: bool


def numbers(text: str) -> list[Number]:
    """Every written number in ``text`` (not numbers glued to letters: "10x", "3rd", "mp3")."""
    found = []
    for m in _NUMBER.finditer(text):
        end = m.end()
        if not m.group("pct") and (glued := _GLUED.match(text, end)) and glued.group().lower() not in GLUED_UNITS:
            continue
        digits = m.group("num")
        value = float(digits.replace(",", ""))
        if m.group("neg"):
            value = -value
        decimals = len(digits.split(".", 1)[1]) if "." in digits else 0
        found.append(Number(value, m.start(), end, decimals, bool(m.group("pct")), bool(m.group("cur"))))
    return found


def forms(n: Number) -> tuple[float, ...]:
    """The values a calculation may use for a stated number: 20% is 20 or 0.2."""
    return (n.value, n.value / 100) if n.percent else (n.value,)


def quantities(text: str) -> set[float]:
    """All values ``text`` states, in digits or words, with their usable forms (rounded to 6 places)."""
    values: set[float] = set()
    for n in numbers(text):
        values.update(forms(n))
    for word in _WORDS.findall(text.lower()):
        for part in word.split("-"):
            values.update(WORD_VALUES.get(part, ()))
    return {round(v, 6) for v in values}


def stated_numbers(text: str) -> list[float]:
    """The numbers written in digits, in order (what a question gives and an answer should use)."""
    return [n.value for n in numbers(text)]


_MALFORMED_END = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})*,\d{1,2}\s*$")


def malformed_number_at_end(text: str) -> bool:
    """The text stops inside a thousands group ("...= $130,00", "...is 9,00"): a generation cut mid-number."""
    return bool(_MALFORMED_END.search(text[-24:]))


def close(a: float, b: float, decimals: int = 6) -> bool:
    """``b`` as written (with ``decimals`` places) is ``a`` rounded, or equal within float noise."""
    tolerance = max(0.5 * 10.0**-decimals * 1.0001, 1e-9 * max(abs(a), abs(b)))
    return abs(a - b) <= tolerance
