"""Calendar months (UTC) as billing periods, and the tenant's tier on each day of one.

A tier change takes effect for the whole UTC day on which it happens: each day of the month is billed
at the tier in effect at the end of that day. Days before the tenant existed are not billed. Days of
the current month still to come are billed at the current tier (an open month's report is a
projection of its base price; its usage is what has been metered so far).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from modelyard_events import Tier

#: YYYY-MM from 2000-01 to 2999-12 (a year the calendar functions and Unix timestamps all handle).
MONTH_PATTERN = r"^2[0-9]{3}-(0[1-9]|1[0-2])$"


class InvalidMonth(ValueError):
    pass


@dataclass(frozen=True, slots=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        if not re.match(MONTH_PATTERN, text or ""):
            raise InvalidMonth(f"{text!r} is not a month: YYYY-MM from 2000-01 to 2999-12, e.g. 2026-11")
        return cls(int(text[:4]), int(text[5:7]))

    @classmethod
    def of(cls, when: date | datetime) -> Month:
        if isinstance(when, datetime):
            when = when.astimezone(UTC).date()
        return cls(when.year, when.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def days(self) -> int:
        return calendar.monthrange(self.year, self.month)[1]

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return date(self.year, self.month, self.days)

    @property
    def end(self) -> datetime:
        """The first instant after the month (UTC)."""
        return datetime.combine(self.last_day + timedelta(days=1), time(), tzinfo=UTC)

    @property
    def last_second(self) -> datetime:
        return self.end - timedelta(seconds=1)

    def previous(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)

    def dates(self) -> list[date]:
        return [date(self.year, self.month, d) for d in range(1, self.days + 1)]


@dataclass(frozen=True, slots=True)
class TierChange:
    """From ``since`` on, the tenant is on ``tier`` (the first change is the tenant's creation)."""

    tier: Tier
    since: datetime


@dataclass(frozen=True, slots=True)
class TierPeriod:
    tier: Tier
    first_day: date
    last_day: date

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1


def tier_on(history: Sequence[TierChange], day: date) -> Tier | None:
    """The tier in effect at the end of ``day`` (UTC); None before the tenant existed."""
    current = None
    for change in sorted(history, key=lambda c: c.since):
        if change.since.astimezone(UTC).date() <= day:
            current = change.tier
        else:
            break
    return current


def tier_periods(history: Sequence[TierChange], month: Month) -> list[TierPeriod]:
    """The month's billed days as runs of one tier each, in order."""
    periods: list[TierPeriod] = []
    for day in month.dates():
        tier = tier_on(history, day)
        if tier is None:
            continue
        if periods and periods[-1].tier is tier and periods[-1].last_day == day - timedelta(days=1):
            periods[-1] = TierPeriod(tier, periods[-1].first_day, day)
        else:
            periods.append(TierPeriod(tier, day, day))
    return periods
