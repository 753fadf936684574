"""``modelyard bench simulator``: the model simulator's own throughput at 0 ms latency.

Starts ``python -m modelyard_simulator`` on a free loopback port with every model at 0 ms, drives it with
``--concurrency`` httpx clients for ``--seconds`` per scenario (plain, stream, logprobs, tools,
json_schema, n4_math) and reports requests/s and the simulator process's CPU time per request (user +
system; the load generator's CPU is not counted). The client shares the machine's cores, so requests/s
is a lower bound; CPU per request is the figure to compare between versions.

``--agreement FILE.csv`` instead measures the agreement model (model-simulator figures): over the CSV's
``prompt`` column, n samples per word problem from the small and the large model, how often the first
sample and the majority are right, how often two wrong samples agree, and how often the first sample is
right when all agree and when they do not.
"""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from modelyard_harness.processes import cpu_seconds, free_port, http_ok, wait_until

QUESTION = "How do I reset my password for the billing portal? Order {i}."
ORDER_TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Status and history of a customer order",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "with_history": {"type": "boolean"}},
            "required": ["order_id", "with_history"],
            "additionalProperties": False,
        },
    },
}
#: Request bodies per scenario (``{i}`` makes every prompt distinct).
SCENARIOS: dict[str, dict[str, Any]] = {
    "plain": {"model": "gpt-4o-mini"},
    "stream": {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True}},
    "logprobs": {"model": "gpt-4o-mini", "logprobs": True, "top_logprobs": 2},
    "tools": {"model": "gpt-4o", "tools": [ORDER_TOOL], "tool_choice": "required"},
    "json_schema": {
        "model": "gpt-4o",
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "reply",
                "strict": True,
                "schema": {
                    "type": "object",
                    "properties": {"answer": {"type": "string"}, "steps": {"type": "integer"}},
                    "required": ["answer", "steps"],
                    "additionalProperties": False,
                },
            },
        },
    },
    "n4_math": {"model": "gpt-4o-mini", "n": 4, "temperature": 0.7},
}
MATH = "A shop sells {i} pens at 3 dollars each and 12 notebooks at 5 dollars each. How much money does it make?"


def _body(scenario: str, i: int) -> dict[str, Any]:
    text = (MATH if scenario == "n4_math" else QUESTION).format(i=i)
    return {**SCENARIOS[scenario], "messages": [{"role": "user", "content": text}]}


async def _drive(base_url: str, scenario: str, seconds: float, concurrency: int) -> tuple[int, int]:
    done = errors = 0
    counter = iter(range(10**9))
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal done, errors
            while time.monotonic() < deadline:
                response = await client.post("/v1/chat/completions", json=_body(scenario, next(counter)))
                await response.aread()
                if response.status_code == 200:
                    done += 1
                else:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, errors


def run(scenarios: list[str], seconds: float, concurrency: int) -> dict[str, Any]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_SIMULATOR_")}
    env.update({"MODELYARD_SIMULATOR_PORT": str(port), "MODELYARD_SIMULATOR_ALL_MODELS": '{"latency_ms": 0}'})
    process = subprocess.Popen(
        [sys.executable, "-m", "modelyard_simulator"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is not None or http_ok(f"{base_url}/healthz"), 30, "the simulator to start")
        if process.poll() is not None:
            raise RuntimeError(f"the simulator exited with {process.returncode}")
        results = {}
        for scenario in scenarios:
            asyncio.run(_drive(base_url, scenario, min(1.0, seconds), concurrency))  # warm-up
            cpu_before, started = cpu_seconds(process.pid), time.monotonic()
            done, errors = asyncio.run(_drive(base_url, scenario, seconds, concurrency))
            elapsed, cpu = time.monotonic() - started, cpu_seconds(process.pid) - cpu_before
            results[scenario] = {
                "requests_per_s": round(done / elapsed, 1),
                "simulator_cpu_ms_per_request": round(cpu * 1000 / max(done, 1), 3),
                "requests": done,
                "errors": errors,
            }
        return {"bench": "simulator", "seconds": seconds, "concurrency": concurrency,
                "load_avg_1m": round(os.getloadavg()[0], 2), "scenarios": results}
    finally:
        process.terminate()
        process.wait(15)


async def agreement_report(path: Path, models: list[str], n: int, temperature: float) -> dict[str, Any]:
    """Self-consistency statistics of the agreement model over a CSV's ``prompt`` column (in-process)."""
    from modelyard_simulator import SimulatorConfig, create_app  # noqa: PLC0415 - only this mode needs it

    with path.open(newline="", encoding="utf-8") as handle:
        prompts = [row["prompt"] for row in csv.DictReader(handle)]
    app = create_app(SimulatorConfig(all_models={"latency_ms": 0}, include_pricing_models=False))
    out: dict[str, Any] = {"bench": "simulator-agreement", "file": str(path), "prompts": len(prompts), "n": n,
                           "temperature": temperature, "models": {}}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://simulator") as client:
        for model in models:
            counts = Counter()
            for prompt in prompts:
                body = {"model": model, "messages": [{"role": "user", "content": prompt}], "n": n,
                        "temperature": temperature}
                response = await client.post("/v1/chat/completions", json=body)
                if "x-simulator-correct-answer" not in response.headers:
                    continue
                right = int(response.headers["x-simulator-correct-answer"])
                finals = [int(c["message"]["content"].rsplit("#### ", 1)[1]) for c in response.json()["choices"]]
                vote, votes = Counter(finals).most_common(1)[0]
                wrong = Counter(f for f in finals if f != right)
                counts.update(problems=1, first_right=finals[0] == right, majority_right=vote == right,
                              wrong_pairs=sum(wrong.values()) * (sum(wrong.values()) - 1) // 2,
                              wrong_pairs_agreeing=sum(k * (k - 1) // 2 for k in wrong.values()),
                              unanimous=votes == n, unanimous_first_right=votes == n and finals[0] == right,
                              split_first_right=votes < n and finals[0] == right)
            problems = max(counts["problems"], 1)
            out["models"][model] = {
                "word_problems": counts["problems"],
                "first_sample_right": round(counts["first_right"] / problems, 3),
                "majority_right": round(counts["majority_right"] / problems, 3),
                "wrong_pairs_agreeing": round(counts["wrong_pairs_agreeing"] / max(counts["wrong_pairs"], 1), 3),
                "first_right_when_unanimous": round(counts["unanimous_first_right"] / max(counts["unanimous"], 1), 3),
                "first_right_when_split": round(
                    counts["split_first_right"] / max(counts["problems"] - counts["unanimous"], 1), 3
                ),
            }
    return out
