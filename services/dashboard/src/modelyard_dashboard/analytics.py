"""Pure reading of the tenant API's figures: the date range a page shows, the cascade rate's health
band, and per-day rows with the days that had no usage filled in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

#: Range presets offered above every page: label -> days (ending today, UTC).
PRESETS = {"7d": 7, "30d": 30, "90d": 90}
DEFAULT_PRESET = "30d"
#: The tenant API serves at most this many days per request (end - start).
MAX_SPAN_DAYS = 366


class RangeError(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class DayRange:
    start: date
    end: date
    preset: str | None = None

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def query(self) -> str:
        """The range as a query string, for links and the live refresh."""
        return f"days={self.preset}" if self.preset else f"start={self.start.isoformat()}&end={self.end.isoformat()}"


def _parse(name: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RangeError(name, "not a date (YYYY-MM-DD)") from None


def resolve_range(today: date, days: str | None = None, start: str | None = None, end: str | None = None) -> DayRange:
    """A preset (``days=7d``), or an explicit ``start``/``end``; the last 30 days without either."""
    if start or end:
        last = _parse("end", end) if end else today
        first = _parse("start", start) if start else last - timedelta(days=PRESETS[DEFAULT_PRESET] - 1)
        if first > last:
            raise RangeError("start", "is after end")
        if (last - first).days > MAX_SPAN_DAYS:
            raise RangeError("start", f"at most {MAX_SPAN_DAYS} days can be shown at once")
        return DayRange(first, last)
    preset = days or DEFAULT_PRESET
    if preset not in PRESETS:
        raise RangeError("days", f"one of {', '.join(PRESETS)}")
    return DayRange(today - timedelta(days=PRESETS[preset] - 1), today, preset)


# --------------------------------------------------------------------------------------------------
# Cascade rate health (the seed's bands: 5-10% healthy, >15% high, <3% low)


@dataclass(frozen=True)
class Band:
    name: str  # css class and test hook: none, low, below, healthy, above, high
    label: str
    advice: str


def cascade_band(rate: float, queries: int) -> Band:
    """Where the cascade rate (escalations per query) sits in the seed's health bands."""
    if queries == 0:
        return Band("none", "no queries", "No queries in this range.")
    if rate < 0.03:
        return Band("low", "low", "Below 3%: the router may be over-routing to the LLM.")
    if rate < 0.05:
        return Band("below", "below the healthy band", "Between 3% and 5%: just below the healthy 5–10%.")
    if rate <= 0.10:
        return Band("healthy", "healthy", "Within the healthy 5–10%.")
    if rate <= 0.15:
        return Band("above", "above the healthy band", "Between 10% and 15%: above the healthy 5–10%; watch it.")
    return Band("high", "high", "Above 15%: adjust the complexity thresholds.")


# --------------------------------------------------------------------------------------------------
# Per-day rows


@dataclass(frozen=True)
class DayRow:
    day: str
    summary: dict = field(default_factory=dict)
    metered: bool = False  # False: no usage document that day (the API has no row; zeros shown)

    def get(self, name: str) -> float:
        return self.summary.get(name, 0)

    @property
    def error_rate(self) -> float:
        return error_rate(self.summary)


def day_rows(by_day: dict[str, dict], span: DayRange) -> list[DayRow]:
    """One row per day of ``span``, in order: the API's summary, or zeros for a day without usage."""
    return [DayRow(d.isoformat(), by_day[d.isoformat()], True) if d.isoformat() in by_day else DayRow(d.isoformat())
            for d in span.days]


def error_rate(summary: dict) -> float:
    return summary["errors"] / summary["calls"] if summary.get("calls") else 0.0
