"""The SVG charts: accessible names, honest geometry, gaps for missing days, escaped labels."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from modelyard_dashboard.charts import PLOT_H, Series, bar_chart, gauge_bar, line_chart, nice_scale, share_bar
from modelyard_dashboard.formatting import count, ratio

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup) -> ET.Element:
    return ET.fromstring(str(markup))


@pytest.mark.parametrize(("peak", "top", "step"), [
    (0, 1.0, 0.25), (7, 8, 2), (10, 10, 2), (0.15, 0.15, 0.05), (860, 1000, 200), (0.0037, 0.004, 0.001),
])
def test_axes_end_on_round_numbers(peak, top, step):
    assert nice_scale(peak) == pytest.approx((top, step))


def test_a_chart_is_an_image_with_a_title_and_a_description():
    svg = parse(line_chart("c1", "Cascade rate", "per day", ["01-01", "01-02"], [Series("rate", [0.1, 0.2], "c-x")], ratio))
    assert svg.get("role") == "img" and svg.get("aria-labelledby") == "c1-t c1-d"
    assert svg.find(f"{SVG}title").text == "Cascade rate" and svg.find(f"{SVG}desc").text == "per day"


def test_stacked_bars_are_as_tall_as_their_values():
    svg = parse(bar_chart("b", "calls", "d", ["a", "b"], [Series("slm", [30, 10], "c-slm"), Series("llm", [10, 0], "c-llm")], count))
    bars = svg.findall(f"{SVG}rect")
    heights = {b.find(f"{SVG}title").text: float(b.get("height")) for b in bars}
    # The axis tops at 40: 30 calls fill three quarters of the plot.
    assert heights["a: slm 30"] == pytest.approx(PLOT_H * 30 / 40, abs=0.1)
    assert heights["a: llm 10"] == pytest.approx(PLOT_H * 10 / 40, abs=0.1)
    assert heights["b: llm 0"] == 0


def test_days_without_data_break_the_line():
    svg = parse(line_chart("l", "latency", "d", ["1", "2", "3", "4", "5"], [Series("ms", [5, 6, None, 7, 8], "c")], count))
    lines = svg.findall(f"{SVG}polyline")
    assert [len(line.get("points").split()) for line in lines] == [2, 2]
    assert len(svg.findall(f"{SVG}circle")) == 4


def test_labels_are_escaped():
    markup = str(bar_chart("x", "<b>t</b>", "d", ["<script>alert(1)</script>"], [Series("s&p", [1], "c")], count, thin_labels=False))
    assert "<script>" not in markup and "&lt;script&gt;" in markup and "s&amp;p" in markup
    parse(markup)  # still well-formed


def test_share_bar_splits_the_width_and_shows_an_empty_track_when_there_is_nothing():
    svg = parse(share_bar("s", "split", [("SLM", 3, "c-slm"), ("LLM", 1, "c-llm")], count))
    widths = [float(r.get("width")) for r in svg.findall(f"{SVG}rect")]
    assert widths[0] == pytest.approx(3 * widths[1])
    empty = parse(share_bar("s", "split", [("SLM", 0, "c-slm"), ("LLM", 0, "c-llm")], count))
    assert any("empty" in r.get("class") for r in empty.findall(f"{SVG}rect"))


def test_gauge_fill_is_clamped_and_coloured_by_level():
    svg = parse(gauge_bar("g", "agents", 1.7, "full"))
    fill = next(r for r in svg.findall(f"{SVG}rect") if "fill" in r.get("class"))
    assert fill.get("width") == "200" and "level-full" in fill.get("class")
    assert re.search(r'aria-label="agents"', str(gauge_bar("g", "agents", 0.5, "ok")))
