"""Unit test (pure: paths are given, nothing is read from Kafka): cutting queries' paths into hops."""

from __future__ import annotations

from modelyard.bench.hops import cut


def test_each_path_is_cut_at_its_records_times_and_incomplete_ones_are_left_out():
    paths = {
        "direct": [("submitted", 1000), ("slm", 1010), ("outcome", 1014)],
        "escalated": [("submitted", 2000), ("slm", 2020), ("escalated", 2026), ("llm", 2030), ("outcome", 2040)],
        "refused": [("submitted", 3000), ("outcome", 3008)],
        "no outcome": [("submitted", 4000), ("slm", 4010)],
    }
    done = {"direct": 1020.0, "escalated": 2043.0, "refused": 3009.0, "no outcome": 5000.0}
    result = cut(paths, done)
    assert result["paths"] == {"slm": 1, "slm→escalated→llm": 1, "rejected": 1}
    hops = result["hops_ms"]
    assert hops["router"]["n"] == 3 and hops["router"]["mean"] == round((10 + 20 + 8) / 3, 1)
    assert hops["slm worker"]["n"] == 2 and hops["slm worker"]["mean"] == 5.0
    assert hops["escalation (router)"] == {"n": 1, "p50": 4, "p99": 4, "mean": 4.0}
    assert hops["llm worker"]["mean"] == 10.0
    assert hops["outcome → load generator"]["mean"] == round((6 + 3 + 1) / 3, 1)
    assert hops["total (submitted record → load generator)"]["p99"] == 43
