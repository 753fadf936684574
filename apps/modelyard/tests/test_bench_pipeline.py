"""System test of `modelyard bench pipeline`: the benchmark command runs end to end against a real stack.

The figures themselves are measured on `make up` and recorded in docs/benchmarks.md; here the command
runs with tiny phases against this module's own stack (real Kafka, real MongoDB protocol, every service
as its own process), so that its accounting — every query has an outcome, tenants are reused — is
checked on every `make test`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from modelyard_harness import modelyard_command


pytestmark = pytest.mark.system


def run_bench(stack, tmp_path) -> tuple[dict, str]:
    proc = subprocess.run(
        [modelyard_command(), "bench", "pipeline", "--api-url", stack.api_url,
         "--simulator-url", stack.simulator_url.removesuffix("/v1"),
         "--rate", "20", "--seconds", "2", "--warmup", "0", "--queries", "60", "--tenants", "3",
         "--timeout-s", "60", "--run-dir", str(tmp_path)],
        env=stack.env(), capture_output=True, text=True, timeout=240,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
    assert proc.returncode == 0, f"bench exited {proc.returncode}"
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_bench_accounts_for_every_query_and_reuses_its_tenants(stack, tmp_path):
    first, first_log = run_bench(stack, tmp_path)
    assert first["lost"] == 0
    assert first["queries"] == 2 * 20 + 60  # the fixed-rate phase and the maximum-rate phase, no warm-up
    assert first["throughput_qps"] > 0
    assert 0 < first["p50_ms_at_200"] <= first["p95_ms_at_200"] <= first["p99_ms_at_200"]
    assert first["raw_kafka_msgs_per_s"] > 0
    assert "0 reused, 3 created" in first_log

    second, second_log = run_bench(stack, tmp_path)
    assert second["lost"] == 0
    assert "3 reused, 0 created" in second_log
