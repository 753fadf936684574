"""Money as integers, and the one rounding rule of billing.

Units, end to end:

* charges (base price, overage, adjustments, totals): **cents** (integer minor units of the price
  list's currency);
* model cost and savings: **nano-dollars** (1e-9 USD, integers), the unit metering stores in the
  usage documents, so a report's model cost *is* the usage documents' sum, not a re-rounded copy.

The rounding rule (the only place billing rounds): an amount is computed exactly from integers (as a
fraction) and rounded **once, half up, to a whole minor unit, when it becomes a line** of a report
(a tier period's base price, its included tokens, the overage, an adjustment). A total is the sum of
its lines, so the lines of every report add up to its total exactly.
"""

from __future__ import annotations

from fractions import Fraction

CENTS_PER_DOLLAR = 100
NANO_PER_CENT = 10_000_000


def round_half_up(amount: Fraction | int) -> int:
    """``amount`` rounded to the nearest integer, halves away from zero (amounts here are never negative
    before rounding; an adjustment's sign comes from a difference of rounded lines)."""
    value = Fraction(amount)
    if value < 0:
        return -round_half_up(-value)
    return int(value + Fraction(1, 2))


def prorate(amount: int, days: int, days_in_month: int) -> int:
    """``amount`` (cents, or tokens) for ``days`` of a month of ``days_in_month`` days: one line, rounded once."""
    return round_half_up(Fraction(amount * days, days_in_month))


def per_million(units: int, cents_per_million: int) -> int:
    """The price of ``units`` (tokens) at ``cents_per_million``: one line, rounded once."""
    return round_half_up(Fraction(units * cents_per_million, 1_000_000))
