"""``modelyard bench stream``: time to first token through modelyard, against straight to the model.

The same closed-loop load of streamed chat completions (same prompts, concurrency, duration) goes first
straight to the model simulator, then through the ingress (ingress → Kafka → router → Kafka → inference
→ simulator; the tokens back through ``queries.streams`` to the ingress). The simulator's model answers
at a fixed latency and streams at a fixed token rate for the run (its knobs are restored afterwards), so
the difference is what modelyard adds. ``model`` pins a model (a final route: its tokens stream live).

Time to first token: from writing the request to the first server-sent event that carries content (the
role-only opening chunk is not a token). Time to last token: to ``[DONE]``. Measured by a lean asyncio
HTTP/1.1 client that reads the chunked body as it arrives (``loadgen``'s conventions: one keep-alive
connection per worker, pre-encoded requests, no JSON parsing).

With ``kafka`` and ``mongo_url`` the benchmark starts its own deployment on them (every service as a
process, as the system tests do) instead of using a running one.
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from .http import PROMPTS, endpoints
from .loadgen import closed_loop, encode_post

#: A content delta with at least one character (``"content":""`` is the opening chunk's).
_CONTENT = re.compile(rb'"content":"[^"]')


def stream_body(model: str, prompt: str) -> bytes:
    return orjson.dumps({"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True})


async def read_stream(reader: asyncio.StreamReader, started: float) -> tuple[int, float | None, float]:
    """``(status, seconds to the first content, seconds to the end)`` of one streamed response."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    chunked = b"transfer-encoding: chunked" in head.lower()
    length = re.search(rb"(?i)content-length:\s*(\d+)", head)
    if not chunked:  # an error answer
        await (reader.readexactly(int(length.group(1))) if length else reader.read())
        return status, None, time.perf_counter() - started
    first: float | None = None
    tail = b""  # a content marker may straddle two chunks
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return status, first, time.perf_counter() - started
        data = await reader.readexactly(size)
        await reader.readexactly(2)
        if first is None:
            if _CONTENT.search(tail + data):
                first = time.perf_counter() - started
            tail = data[-16:]


@dataclass
class StreamResult:
    seconds: float = 0.0
    first_token_s: list[float] = field(default_factory=list)
    last_token_s: list[float] = field(default_factory=list)
    failed: int = 0

    def summary(self) -> dict[str, Any]:
        def pct(values: list[float], q: float) -> float | None:
            ordered = sorted(values)
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2) if ordered else None

        return {
            "responses": len(self.first_token_s), "failed": self.failed, "seconds": round(self.seconds, 2),
            "ttft_p50_ms": pct(self.first_token_s, 0.5), "ttft_p90_ms": pct(self.first_token_s, 0.9),
            "ttft_p99_ms": pct(self.first_token_s, 0.99), "ttft_max_ms": pct(self.first_token_s, 1.0),
            "last_token_p50_ms": pct(self.last_token_s, 0.5), "last_token_p99_ms": pct(self.last_token_s, 0.99),
        }


async def run_streams(requests: list[tuple[str, int, bytes]], *, concurrency: int, seconds: float,
                      timeout_s: float = 120.0) -> StreamResult:
    """``concurrency`` workers stream the requests round-robin, back to back, for ``seconds``."""
    result = StreamResult()

    async def exchange(reader: asyncio.StreamReader, started: float) -> bool:
        status, first, last = await read_stream(reader, started)
        if status == 200 and first is not None:
            result.first_token_s.append(first)
            result.last_token_s.append(last)
        else:
            result.failed += 1
        return True

    def connection_error() -> None:
        result.failed += 1

    result.seconds = await closed_loop(requests, concurrency=concurrency, seconds=seconds, exchange=exchange,
                                       on_connection_error=connection_error, request_timeout_s=timeout_s)
    return result


async def run_stream_bench(
    *,
    ingress_url: str = "http://127.0.0.1:8081",
    simulator_url: str = "http://127.0.0.1:8090",
    api_url: str = "http://127.0.0.1:8080",
    admin_token: str = "dev-admin-token",
    api_key: str | None = None,
    concurrency: int = 16,
    seconds: float = 30.0,
    warmup_s: float = 5.0,
    model: str = "gpt-4o",
    latency_ms: float = 250.0,
    tokens_per_s: float = 60.0,
) -> dict[str, Any]:
    """Run both loads against a running deployment and return the figures."""
    ingress_url, simulator_url, auth = await endpoints(ingress_url, simulator_url, api_url, admin_token, api_key)
    direct = [encode_post(f"{simulator_url}/v1/chat/completions", stream_body(model, p)) for p in PROMPTS]
    through = [encode_post(f"{ingress_url}/v1/chat/completions", stream_body(model, p), auth) for p in PROMPTS]
    knobs = {"latency_ms": latency_ms, "latency_distribution": "fixed", "stream_tokens_per_s": tokens_per_s}
    async with httpx.AsyncClient(base_url=simulator_url, timeout=10) as sim:
        saved = (await sim.get("/admin/config")).raise_for_status().json()["models"]
        (await sim.post("/admin/config", json={"models": {model: knobs}})).raise_for_status()
        try:
            results = {}
            for name, requests in (("direct", direct), ("ingress", through)):
                if warmup_s > 0:
                    await run_streams(requests, concurrency=concurrency, seconds=warmup_s)
                results[name] = (await run_streams(requests, concurrency=concurrency, seconds=seconds)).summary()
        finally:
            await sim.post("/admin/config", json={"models": saved})
    d, i = results["direct"], results["ingress"]

    def added(key: str) -> float | None:
        return round(i[key] - d[key], 2) if i[key] is not None and d[key] is not None else None

    return {
        "benchmark": "stream",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores",
        "concurrency": concurrency, "seconds": seconds, "model": model,
        "simulator": {"latency_ms": latency_ms, "latency_distribution": "fixed", "tokens_per_s": tokens_per_s},
        "direct": d, "ingress": i,
        # Time to the last token depends on each prompt's answer length: its p50 jumps between the lengths of
        # the eight prompts, so a difference of the two runs' p50 says little; the first token does not.
        "added_ttft_p50_ms": added("ttft_p50_ms"), "added_ttft_p99_ms": added("ttft_p99_ms"),
    }


async def run_with_own_stack(kafka: str, mongo_url: str, **kwargs: Any) -> dict[str, Any]:
    """Start a private deployment on ``kafka`` and ``mongo_url``, run the benchmark against it, stop it."""
    from modelyard_harness import build_stack, unique_prefix

    stack = build_stack(kafka, mongo_url, unique_prefix("bench-stream"))
    ingress = stack.add("ingress", ["ingress"], "/readyz")
    await asyncio.to_thread(stack.start, *stack.processes)
    try:
        return await run_stream_bench(ingress_url=ingress.ready_url.removesuffix("/readyz"),
                                      simulator_url=stack.simulator_url, api_url=stack.api_url, **kwargs)
    finally:
        await asyncio.to_thread(stack.stop)
