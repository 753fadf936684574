"""``python -m modelyard_simulator.bench``: the simulator's own throughput at 0 ms latency.

Starts ``python -m modelyard_simulator`` on a free loopback port with every model at 0 ms, drives it with
``--concurrency`` httpx clients for ``--seconds`` per scenario, and prints one JSON line per scenario and
a summary JSON line last: requests/s and the simulator process's CPU time per request (user + system,
read from ``/proc``; the load generator's CPU is not counted). The client shares the machine's cores, so
requests/s is a lower bound; CPU per request is the figure to compare between versions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

import httpx

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


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
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_SIMULATOR_")}
    env.update({"MODELYARD_SIMULATOR_PORT": str(port), "MODELYARD_SIMULATOR_ALL_MODELS": '{"latency_ms": 0}'})
    process = subprocess.Popen(
        [sys.executable, "-m", "modelyard_simulator"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the simulator did not start")
            time.sleep(0.05)
        results = {}
        for scenario in scenarios:
            asyncio.run(_drive(base_url, scenario, min(1.0, seconds), concurrency))  # warm-up
            cpu_before, started = _cpu_seconds(process.pid), time.monotonic()
            done, errors = asyncio.run(_drive(base_url, scenario, seconds, concurrency))
            elapsed, cpu = time.monotonic() - started, _cpu_seconds(process.pid) - cpu_before
            results[scenario] = {
                "requests_per_s": round(done / elapsed, 1),
                "simulator_cpu_ms_per_request": round(cpu * 1000 / max(done, 1), 3),
                "requests": done,
                "errors": errors,
            }
            print(json.dumps({"scenario": scenario, **results[scenario]}), flush=True)
        return {"bench": "simulator", "seconds": seconds, "concurrency": concurrency, "scenarios": results}
    finally:
        process.terminate()
        process.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="repeatable; default: all")
    args = parser.parse_args()
    print(json.dumps(run(args.scenario or list(SCENARIOS), args.seconds, args.concurrency)))


if __name__ == "__main__":
    main()
