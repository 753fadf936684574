"""Re-compute the arithmetic an answer shows.

Two sources of steps:
- calculator annotations ``<<9*2=18>>18`` (GSM8K style; chained ``<<5*75+120=675+120=795>>`` too): every
  ``=`` segment must equal the next, and the number shown after ``>>`` must be the result;
- equations written in the text: "16 - 3 - 4 = 9", "9 * $2 = $18", "20% of 50 = 10", "3 hours * 10 miles/hour =
  30 miles", "(12 / 20) x 100 = 60%", "8 + 6 + (5 * 5) = 8 + 6 + 25 = 39", "1/6 of 24 = 4". Unit words after a
  number ("hours", "miles/hour", "(birds)") are skipped; "x", "times", "of" between numbers multiply.

Only a side with an operator is compared with the side after it ("2 hours = 120 minutes" is a conversion,
not a calculation). A percentage may be read as 20 or 0.2: a step is wrong only when no reading fits.
A claimed value shown rounded ("60 / 7 = 8.57") is right when it is the computed value rounded to the
places shown. Anything that does not parse (algebra with letters, "6-inch") is skipped, never guessed.

Pure Python: one regex scan and a small recursive-descent evaluator; no ``eval``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .numbers import close

_TOKEN = re.compile(
    r"(?P<bad>[$\u20ac\u00a3]?\d{1,3}(?:,\d{3})*,\d{1,2}(?![\d,]))"  # "130,00": a number cut mid-group, never an operand
    r"|(?P<var>\d+(?:\.\d+)?[A-Za-z_]\w*)"  # "10x", "3F", "3rd": a variable term or an ordinal, never a number
    r"|(?P<frac>(?<![\d.,/])\d+/\d+(?![\d.,/]))"  # "2/5" written tight: one value, as a reader takes it
    r"|(?P<num>[$\u20ac\u00a3]?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+))(?P<pct>\s?%)?"
    r"|(?P<op>\*\*|[+\-\u2212*/\u00d7\u00f7\u00b7^])"
    r"|(?P<lp>[(\[])|(?P<rp>[)\]])|(?P<eq>=|\u2248)"
    r"|(?P<word>[A-Za-z]+(?:'[a-z]+)?)"
    r"|(?P<sep>\S)"
)
_ANNOTATION = re.compile(r"<<([^<>]*?)>>\s*(?P<shown>[$\u20ac\u00a3]?-?[\d,]*\.?\d+)?")
_CUT_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})*,\d{1,2}")
_OPEN_ANNOTATION = re.compile(r"<<[^>]*$")
_OPS = {"\u2212": "-", "\u00d7": "*", "\u00f7": "/", "\u00b7": "*", "**": "^"}
_OP_WORDS = {"x": "*", "X": "*", "times": "*", "plus": "+", "minus": "-", "of": "*"}
_MULTIPLIER_WORDS = {"dozen": 12.0, "dozens": 12.0, "hundred": 100.0, "thousand": 1000.0, "million": 1e6}
_TWO_WORD_OPS = {("multiplied", "by"): "*", ("divided", "by"): "/"}
MAX_UNIT_WORDS = 3
MAX_MAGNITUDE = 1e15  # a step whose value leaves this range is not checked (overflow, nonsense)


@dataclass(frozen=True, slots=True)
class Tok:
    kind: str  # num | op | lp | rp | eq | word | sep | bad | var
    text: str
    value: float = 0.0
    decimals: int = 0
    percent: bool = False
    pos: int = 0


@dataclass(frozen=True, slots=True)
class Step:
    """One checked ``left = right``: what the answer claims and what the arithmetic gives."""

    expression: str
    claimed: float
    computed: float
    ok: bool
    source: str  # "annotation" or "text"
    operands: tuple[float, ...]
    pos: int = 0  # where the step ends in the answer with annotations removed: orders the steps


def tokenize(text: str, offset: int = 0) -> list[Tok]:
    out: list[Tok] = []
    for m in _TOKEN.finditer(text.replace("\\*", " *")):
        kind = m.lastgroup if m.lastgroup != "pct" else "num"
        if m.group("frac") is not None:
            top, bottom = m.group("frac").split("/")
            if float(bottom) != 0:
                out.append(Tok("num", m.group(), float(top) / float(bottom), 6, False, offset + m.start()))
            else:
                out.append(Tok("bad", m.group(), pos=offset + m.start()))
            continue
        if m.group("num") is not None:
            digits = m.group("num").lstrip("$\u20ac\u00a3").replace(",", "")
            decimals = len(digits.split(".", 1)[1]) if "." in digits else 0
            out.append(Tok("num", m.group(), float(digits), decimals, bool(m.group("pct")), offset + m.start()))
        elif kind == "op":
            out.append(Tok("op", _OPS.get(m.group(), m.group()), pos=offset + m.start()))
        else:
            out.append(Tok(kind, m.group(), pos=offset + m.start()))
    return out


def _is_value_end(t: Tok | None) -> bool:
    return t is not None and t.kind in ("num", "rp")


def _is_value_start(t: Tok | None) -> bool:
    return t is not None and (t.kind in ("num", "lp") or (t.kind == "op" and t.text == "-"))


def _chains(toks: list[Tok]) -> list[list[Tok]]:
    """Runs of math tokens (numbers, operators, brackets, '=') with unit words dropped and operator words read."""
    chains: list[list[Tok]] = []
    i, n = 0, len(toks)
    while i < n:
        before = toks[i - 1] if i > 0 else None
        if not _is_value_start(toks[i]) or (
            before is not None
            and (before.kind in ("op", "var", "rp") or (before.kind == "word" and (len(before.text) == 1 or toks[i].kind == "op")))
        ):
            i += 1  # a run after an operator or a variable is the tail of algebra ("x * 4 + 8 = 40", "F - 12 = 17")
            continue
        chain: list[Tok] = []
        while i < n:
            t = toks[i]
            prev = chain[-1] if chain else None
            nxt = toks[i + 1] if i + 1 < n else None
            if t.kind == "lp" and _is_value_end(prev):
                # "(birds)" after a number: a unit label
                j = i + 1
                while j < n and toks[j].kind == "word":
                    j += 1
                if j > i + 1 and j < n and toks[j].kind == "rp":
                    i = j + 1
                    continue
                break
            if t.kind in ("num", "lp", "rp", "eq"):
                chain.append(t)
            elif t.kind == "op":
                if t.text == "/" and nxt is not None and nxt.kind == "word" and _is_value_end(prev):
                    i += 2  # "miles/hour": a unit, not a division
                    continue
                chain.append(t)
            elif (
                t.kind == "word" and prev is not None and prev.kind == "num" and t.text.lower() in _MULTIPLIER_WORDS
                and nxt is not None and nxt.kind == "op"
            ):  # "4 dozen + 2" counts eggs; "= 7 dozen" only names the unit
                chain.extend((Tok("op", "*"), Tok("num", t.text, _MULTIPLIER_WORDS[t.text.lower()], pos=t.pos)))
            elif t.kind == "word" and _is_value_end(prev):
                pair = (t.text.lower(), nxt.text.lower() if nxt is not None and nxt.kind == "word" else "")
                if pair in _TWO_WORD_OPS and _is_value_start(toks[i + 2] if i + 2 < n else None):
                    chain.append(Tok("op", _TWO_WORD_OPS[pair]))
                    i += 2
                    continue
                if t.text in _OP_WORDS and _is_value_start(nxt) and (t.text != "of" or prev.kind == "num"):
                    chain.append(Tok("op", _OP_WORDS[t.text]))
                    i += 1
                    continue
                # unit words: skipped when an operator or '=' follows within a few words
                j, words = i, 0
                while j < n and words < MAX_UNIT_WORDS and (
                    toks[j].kind == "word" or (toks[j].kind == "op" and toks[j].text == "/" and j + 1 < n
                                               and toks[j + 1].kind == "word")
                ):
                    words += toks[j].kind == "word"
                    j += 1
                if j < n and toks[j].kind in ("op", "eq") and toks[j].text != "/" or (
                    j < n and toks[j].kind == "op" and toks[j].text == "/" and j + 1 < n and toks[j + 1].kind == "num"
                ):
                    i = j
                    continue
                break
            else:
                break
            i += 1
        if any(t.kind == "eq" for t in chain):
            chains.append(chain)
        i += 1
    return chains


class _Parser:
    """expr := term (+|- term)*; term := power (*|/ power)*; power := unary (^ power)?; unary := -unary | atom."""

    def __init__(self, toks: list[Tok], percent_as_fraction: bool) -> None:
        self.toks, self.i, self.pct = toks, 0, percent_as_fraction

    def parse(self) -> float | None:
        try:
            value = self.expr()
        except (ArithmeticError, IndexError, ValueError):
            return None
        return value if self.i == len(self.toks) and math.isfinite(value) else None

    def peek(self) -> Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def expr(self) -> float:
        value = self.term()
        while (t := self.peek()) is not None and t.kind == "op" and t.text in "+-":
            self.i += 1
            value = value + self.term() if t.text == "+" else value - self.term()
        return value

    def term(self) -> float:
        value = self.power()
        while (t := self.peek()) is not None and t.kind == "op" and t.text in "*/":
            self.i += 1
            right = self.power()
            value = value * right if t.text == "*" else value / right
        return value

    def power(self) -> float:
        base = self.unary()
        if (t := self.peek()) is not None and t.kind == "op" and t.text == "^":
            self.i += 1
            exponent = self.power()
            if abs(exponent) > 64:
                raise ValueError("exponent too large")
            return base**exponent
        return base

    def unary(self) -> float:
        t = self.peek()
        if t is None:
            raise ValueError("unexpected end")
        if t.kind == "op" and t.text == "-":
            self.i += 1
            return -self.unary()
        if t.kind == "num":
            self.i += 1
            return t.value / 100 if (t.percent and self.pct) else t.value
        if t.kind == "lp":
            self.i += 1
            value = self.expr()
            if (close_tok := self.peek()) is None or close_tok.kind != "rp":
                raise ValueError("unclosed bracket")
            self.i += 1
            return value
        raise ValueError(f"unexpected {t.text!r}")


def _sides(chain: list[Tok]) -> list[list[Tok]]:
    sides: list[list[Tok]] = [[]]
    for t in chain:
        if t.kind == "eq":
            sides.append([])
        else:
            sides[-1].append(t)
    return sides


def _render(toks: list[Tok]) -> str:
    return " ".join(t.text for t in toks)


def _check_chain(chain: list[Tok], source: str) -> list[Step]:
    steps = []
    sides = _sides(chain)
    for left, right in zip(sides, sides[1:]):
        if not left or not right or not any(t.kind == "op" or "/" in t.text for t in left):
            continue
        readings = []
        for pct in (True, False):
            a, b = _Parser(left, pct).parse(), _Parser(right, pct).parse()
            if a is not None and b is not None:
                readings.append((a, b))
        if not readings or any(abs(v) > MAX_MAGNITUDE for pair in readings for v in pair):
            continue
        single = right[0] if len(right) == 1 and right[0].kind == "num" else None
        decimals = single.decimals if single is not None else 6
        # a rounded operand ("13.33 * 3") carries its rounding into the result
        rounded_operand = any(t.kind == "num" and t.decimals >= 1 for t in left)
        ok = any(
            close(a, b, decimals) or (rounded_operand and abs(a - b) <= 0.01 * max(abs(a), abs(b), 1e-9))
            for a, b in readings
        )
        a, b = readings[0]
        operands = tuple(t.value for t in left if t.kind == "num")
        steps.append(Step(f"{_render(left)} = {_render(right)}", b, a, ok, source, operands, right[-1].pos))
    return steps


@dataclass(frozen=True, slots=True)
class Arithmetic:
    steps: list[Step]
    #: numbers shown after an annotation that differ from its result ("<<9*2=18>>19")
    annotation_mismatches: list[str]
    open_annotation: bool  # text ends inside "<<...": cut off mid-calculation

    @property
    def errors(self) -> list[Step]:
        return [s for s in self.steps if not s.ok]

    @property
    def results(self) -> list[float]:
        return [s.claimed for s in self.steps]


def check(text: str) -> Arithmetic:
    """Every step of ``text`` that can be re-computed, in order of appearance."""
    steps: list[Step] = []
    mismatches: list[str] = []
    plain_parts: list[str] = []
    last = 0
    length = 0
    for m in _ANNOTATION.finditer(text):
        plain_parts.append(text[last : m.start()])
        length += m.start() - last
        last = m.end()
        shown = m.group("shown") or ""
        plain_parts.append(shown)
        length += len(shown)
        chain = [t for t in tokenize(m.group(1)) if t.kind != "word"]
        if any(t.kind in ("sep", "bad", "var") for t in chain):
            continue
        annotation_steps = [
            Step(s.expression, s.claimed, s.computed, s.ok, s.source, s.operands, length)
            for s in _check_chain(chain, "annotation")
        ]
        steps.extend(annotation_steps)
        if annotation_steps and shown.strip("$\u20ac\u00a3-,.") and not _CUT_NUMBER.fullmatch(shown.lstrip("$\u20ac\u00a3")):
            try:
                value = float(shown.lstrip("$\u20ac\u00a3").replace(",", ""))
            except ValueError:
                continue
            decimals = len(shown.split(".")[1]) if "." in shown else 0
            if not close(annotation_steps[-1].claimed, value, decimals):
                mismatches.append(f"<<{m.group(1)}>>{shown}")
    plain_parts.append(text[last:])
    plain = "".join(plain_parts)
    # "total\n= 4 / 0.5\n= 8": one equation over several lines (same length: offsets stay valid)
    plain = re.sub(r"\n(?=\s*=)", " ", plain)
    start = 0
    for line in plain.split("\n"):
        for chain in _chains(tokenize(line, start)):
            steps.extend(_check_chain(chain, "text"))
        start += len(line) + 1
    steps.sort(key=lambda s: s.pos)
    return Arithmetic(steps, mismatches, bool(_OPEN_ANNOTATION.search(text)))
