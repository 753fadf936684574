"""Line up the broker's request counts with the phases of a `modelyard bench pipeline --variants` run.

Input: the bench's JSON (its last line) and a CSV of the broker's cumulative request counters sampled
every second by Kafka's own JMX reader (``org.apache.kafka.tools.JmxTool``, see docs/benchmarks.md,
"CPU per query (issue 22)"). Output: per variant and phase, Produce, Fetch and OffsetCommit requests per
second and per query, and the hop latencies the bench measured. Usage:

    python tools/broker_requests.py BENCH.json REQUESTS.csv
"""

from __future__ import annotations

import csv
import json
import sys


def counters(path: str) -> list[tuple[float, dict[str, float]]]:
    rows = []
    with open(path) as f:
        reader = csv.reader(f)
        header = next(reader)
        names = [h.split("request=")[1].split(",")[0] if "request=" in h else h for h in header]
        for row in reader:
            if len(row) != len(names):
                continue
            sums: dict[str, float] = {}
            for name, value in zip(names[1:], row[1:]):
                sums[name] = sums.get(name, 0.0) + float(value or 0)
            rows.append((float(row[0]) / 1000, sums))
    return rows


def at(rows: list[tuple[float, dict[str, float]]], t: float) -> dict[str, float]:
    """The counters of the sample nearest ``t``."""
    return min(rows, key=lambda r: abs(r[0] - t))[1]


def main(bench_json: str, requests_csv: str) -> None:
    bench = json.loads(open(bench_json).read().strip().splitlines()[-1])
    rows = counters(requests_csv)
    for run in bench["runs"]:
        print(f"== {run['variant']}  q/s {run['throughput_qps']}  CPU ms/q {run['cpu_ms_per_query_all_services']}"
              f"  p50/p99 {run['p50_ms']}/{run['p99_ms']}  load {run['load_avg_1m_before']}/{run['load_avg_1m_after']}")
        for phase, (start, end) in run.get("phases_unix", {}).items():
            a, b = at(rows, start), at(rows, end)
            queries = run["fixed_rate_qps"] * (end - start) if phase == "fixed_rate" else run["throughput_qps"] * (end - start)
            line = "  ".join(f"{k} {(b[k] - a.get(k, 0)) / (end - start):7.1f}/s {(b[k] - a.get(k, 0)) / max(queries, 1):5.2f}/q"
                             for k in ("Produce", "Fetch", "OffsetCommit") if k in b)
            print(f"  {phase:<10} {line}")
        hops = run.get("hops_at_fixed_rate", {}).get("hops_ms", {})
        print("  hops p50/p99 ms: " + "; ".join(f"{h} {v['p50']}/{v['p99']}" for h, v in hops.items()))
        print("  cores at fixed rate:", run.get("cores_at_fixed_rate_all_services"),
              " CPU ms/q:", {k: v for k, v in run["cpu_ms_per_query"].items()})


if __name__ == "__main__":
    main(*sys.argv[1:3])
