"""The table ``eval-cascade`` prints before its JSON line (the same for the offline and the pipeline mode)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def every_nth(rows: Sequence[T], about: int) -> list[T]:
    """Every n-th row, n chosen so that about ``about`` remain (all rows when ``about`` is 0 or more than there are):
    a deterministic sample spread over the whole file."""
    if not about or about >= len(rows):
        return list(rows)
    step = math.ceil(len(rows) / about)
    return list(rows[::step])


def _row(name: str, threshold: str, o: dict[str, Any], metered: str = "") -> str:
    return (f"{name:<22} {threshold:>9} {o['quality']:>8.3f} {o['cost']:>6.3f} {o['escalated']:>9.1%} "
            f"{o['direct']:>7.1%} {metered:>13}")


def print_table(result: dict[str, Any]) -> None:
    pipeline = result["mode"] == "pipeline"
    label = ("through the running pipeline; the simulator replays the recorded answers" if pipeline
             else "offline: the worker's judging code on the recorded answers")
    print(f"cascade on {result['questions']} of {result['of']} labelled questions ({label})")
    print("quality = accuracy / large-model-only accuracy; cost = cost / large-model-only cost "
          "(data README: characters, large model x15)")
    print(f"{'policy':<22} {'threshold':>9} {'quality':>8} {'cost':>6} {'escalated':>9} {'to LLM':>7} {'metered cost':>13}")
    for name, o in result["policies"].items():
        metered = f"{o['metered_cost']:.3f}" if pipeline and o.get("metered_cost") is not None else ""
        print(_row(f"tenant: {name}", f"{o['threshold']:g}", o, metered))
    refs = result["references"]
    for name, key in (("small model alone", "never_escalate"), ("large model alone", "large_only"),
                      ("oracle (reference)", "oracle")):
        print(_row(name, "-", refs[key]))
    if pipeline:
        print("metered cost: the tenant's metered USD over metering's all-LLM counterfactual (the same calls' tokens at "
              "the standard LLM's price)")
    if result.get("scorer_trained_on_this_file"):
        print("in-sample: the scorer was trained on this file; the held-out estimate is in docs/benchmarks.md "
              "(issue 17)")
    if not result.get("ok", True):
        print(f"INCOMPLETE: {result.get('problem')}")
