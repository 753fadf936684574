"""Date ranges, the cascade rate's health bands, and per-day rows."""

from __future__ import annotations

from datetime import date

import pytest
from modelyard_dashboard.analytics import DayRange, RangeError, cascade_band, day_rows, resolve_range

TODAY = date(2025, 3, 10)


def test_presets_end_today_and_default_to_30_days():
    assert resolve_range(TODAY) == DayRange(date(2025, 2, 9), TODAY, "30d")
    week = resolve_range(TODAY, days="7d")
    assert (week.start, week.end, len(week.days)) == (date(2025, 3, 4), TODAY, 7)
    assert week.query() == "days=7d"


def test_an_explicit_range_is_used_as_given():
    span = resolve_range(TODAY, start="2025-01-01", end="2025-01-31")
    assert (span.start, span.end, span.preset, len(span.days)) == (date(2025, 1, 1), date(2025, 1, 31), None, 31)
    assert span.query() == "start=2025-01-01&end=2025-01-31"
    assert resolve_range(TODAY, start="2025-03-01").end == TODAY


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"days": "9d"}, "days"),
    ({"start": "yesterday"}, "start"),
    ({"end": "2025-13-01"}, "end"),
    ({"start": "2025-03-02", "end": "2025-03-01"}, "start"),
    ({"start": "2023-01-01", "end": "2025-01-01"}, "start"),
])
def test_bad_ranges_name_the_field(kwargs, field):
    with pytest.raises(RangeError) as err:
        resolve_range(TODAY, **kwargs)
    assert err.value.field == field


@pytest.mark.parametrize(("rate", "queries", "band"), [
    (0.0, 0, "none"), (0.0, 10, "low"), (0.029, 100, "low"), (0.03, 100, "below"), (0.049, 100, "below"),
    (0.05, 100, "healthy"), (0.10, 100, "healthy"), (0.101, 100, "above"), (0.15, 100, "above"), (0.151, 100, "high"),
])
def test_cascade_bands_are_the_seeds(rate, queries, band):
    assert cascade_band(rate, queries).name == band


def test_high_and_low_bands_say_what_to_do():
    assert "adjust the complexity thresholds" in cascade_band(0.2, 10).advice
    assert "over-routing to the LLM" in cascade_band(0.01, 10).advice


def test_day_rows_fill_days_without_usage_with_zeros():
    span = DayRange(date(2025, 1, 1), date(2025, 1, 3))
    rows = day_rows({"2025-01-02": {"queries": 4, "calls": 5, "errors": 1}}, span)
    assert [(r.day, r.metered, r.get("queries")) for r in rows] == [
        ("2025-01-01", False, 0), ("2025-01-02", True, 4), ("2025-01-03", False, 0)]
    assert rows[1].error_rate == 0.2 and rows[0].error_rate == 0.0
