"""`modelyard bench simulator`: the shape of what it reports (speed is measured by running it, never
asserted in a test)."""

from __future__ import annotations

import pytest
from modelyard.bench.simulator import agreement_report, run


def problem(i: int) -> str:
    return f"A farmer has {12 + i % 17} cows and buys {3 + i % 5} more, each giving {2 + i % 7} litres a day. How many litres? ({i})"


async def test_the_agreement_report_shows_self_consistency(tmp_path) -> None:
    path = tmp_path / "problems.csv"
    path.write_text("prompt\n" + "".join(f'"{problem(i)}"\n' for i in range(40)) + "Hello there\n")
    report = await agreement_report(path, ["gpt-4o-mini", "gpt-4o"], 5, 0.7)
    small, large = report["models"]["gpt-4o-mini"], report["models"]["gpt-4o"]
    assert report["prompts"] == 41 and small["word_problems"] == 40
    assert small["majority_right"] >= small["first_sample_right"]
    assert large["first_sample_right"] > small["first_sample_right"]
    assert small["first_right_when_unanimous"] > small["first_right_when_split"]


@pytest.mark.loopback  # starts a simulator process on a free port
def test_the_throughput_report_has_cpu_per_request_per_scenario() -> None:
    report = run(["plain", "tools"], seconds=0.5, concurrency=2)
    for figures in report["scenarios"].values():
        assert figures["requests"] > 0 and figures["errors"] == 0
        assert figures["requests_per_s"] > 0 and figures["simulator_cpu_ms_per_request"] > 0
