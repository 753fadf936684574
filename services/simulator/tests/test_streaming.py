"""Real streaming on a real uvicorn process: the first token after the latency, then tokens at the model's
rate; a client that goes away stops the generation. Timing bounds are one-sided where load can only
make things slower (a paced stream can never be faster than its rate)."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

#: A real uvicorn process on a free port, started by the module itself: TCP on loopback, no shared server.
pytestmark = pytest.mark.loopback

RATE = 50.0
LATENCY_MS = 150
PACED = {
    "gpt-4o": {"latency_ms": LATENCY_MS, "latency_distribution": "fixed", "stream_tokens_per_s": RATE, "output_tokens": 40},
    "slow-model": {"kind": "llm", "latency_ms": 0, "stream_tokens_per_s": 20, "output_tokens": 400},
    "chunky-model": {"kind": "llm", "latency_ms": 0, "stream_tokens_per_s": 400, "stream_chunk_tokens": 4},
}
SIMULATOR_ENV = {"MODELYARD_SIMULATOR_MODELS": json.dumps(PACED)}
QUESTION = [{"role": "user", "content": "How do I reset my password for the billing portal?"}]


@pytest.fixture(scope="module")
def paced(module_simulator):
    return module_simulator


def wait_until(condition, seconds: float, message: str):
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.05)
    return value


def test_first_token_after_the_latency_then_tokens_at_the_rate(paced) -> None:
    with openai.OpenAI(base_url=f"{paced.base_url}/v1", api_key="unused", max_retries=0) as sdk:
        started = time.monotonic()
        arrivals, text = [], ""
        stream = sdk.chat.completions.create(
            model="gpt-4o", messages=QUESTION, stream=True, stream_options={"include_usage": True}
        )
        usage = None
        for chunk in stream:
            usage = chunk.usage or usage
            for choice in chunk.choices:
                if choice.delta.content:
                    arrivals.append(time.monotonic() - started)
                    text += choice.delta.content
        plain = sdk.chat.completions.create(model="gpt-4o", messages=QUESTION)
    tokens = usage.completion_tokens
    assert text == plain.choices[0].message.content and tokens > 20
    assert arrivals[0] >= LATENCY_MS / 1000
    # one token per chunk, unless the loaded machine made the stream fall behind (then a few together)
    assert tokens / 2 < len(arrivals) <= tokens
    assert arrivals[-1] - arrivals[0] >= (tokens - 1) / RATE * 0.95
    assert arrivals[-1] - arrivals[0] < (tokens - 1) / RATE * 4 + 1


def test_a_non_streamed_answer_arrives_when_its_last_token_is_generated(paced) -> None:
    with httpx.Client(base_url=paced.base_url, timeout=30) as client:
        started = time.monotonic()
        response = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": QUESTION})
        elapsed = time.monotonic() - started
    tokens = response.json()["usage"]["completion_tokens"]
    assert elapsed >= LATENCY_MS / 1000 + (tokens - 1) / RATE * 0.95


async def test_chunks_carry_a_few_tokens_and_fall_behind_gracefully(paced) -> None:
    async with openai.AsyncOpenAI(base_url=f"{paced.base_url}/v1", api_key="unused", max_retries=0) as sdk:
        stream = await sdk.chat.completions.create(model="chunky-model", messages=QUESTION, stream=True, n=2)
        pieces = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]
    assert len(pieces) >= 10 and all(len(p) > 0 for p in pieces)
    # four tokens per chunk unless the stream fell behind (then the overdue tokens travel together)
    assert max(len(p.split()) for p in pieces) >= 2


def test_each_choice_finishes_after_its_own_last_token(paced) -> None:
    with openai.OpenAI(base_url=f"{paced.base_url}/v1", api_key="unused", max_retries=0) as sdk:
        events = []  # (choice, "token" | "finish") in arrival order
        for chunk in sdk.chat.completions.create(model="chunky-model", messages=QUESTION, n=3, stream=True):
            for choice in chunk.choices:
                if choice.delta.content:
                    events.append((choice.index, "token"))
                if choice.finish_reason:
                    events.append((choice.index, "finish"))
    last_token = {i: max(k for k, e in enumerate(events) if e == (i, "token")) for i in range(3)}
    finish = {i: events.index((i, "finish")) for i in range(3)}
    shortest = min(range(3), key=lambda i: last_token[i])
    assert all(finish[i] > last_token[i] for i in range(3))
    assert finish[shortest] < max(last_token.values()), "the shortest choice finishes while the others go on"


def test_a_client_that_disconnects_stops_the_generation(paced) -> None:
    admin = httpx.Client(base_url=paced.base_url, timeout=10)
    before = admin.get("/admin/stats").json()["models"].get("slow-model", {}).get("cancelled", 0)
    started = time.monotonic()
    with httpx.Client(base_url=paced.base_url, timeout=10) as client, client.stream(
        "POST", "/v1/chat/completions", json={"model": "slow-model", "messages": QUESTION, "stream": True}
    ) as response:
        lines = response.iter_lines()
        received = [next(lines) for _ in range(6)]
    assert any(line.startswith("data: {") for line in received)
    # 400 tokens at 20/s would take ~20 s; the simulator notices the disconnect long before
    wait_until(lambda: admin.get("/admin/stats").json()["in_flight"] == 0, 5, "the stream kept generating")
    assert admin.get("/admin/stats").json()["models"]["slow-model"]["cancelled"] == before + 1
    assert time.monotonic() - started < 8
    admin.close()


def test_sync_sdk_streams_n_choices_with_usage(live_simulator) -> None:
    with openai.OpenAI(base_url=f"{live_simulator.base_url}/v1", api_key="unused", max_retries=0) as sdk:
        texts = {}
        usage = None
        for chunk in sdk.chat.completions.create(
            model="gpt-4o-mini", messages=QUESTION, n=3, stream=True, stream_options={"include_usage": True}
        ):
            usage = chunk.usage or usage
            for choice in chunk.choices:
                texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
        plain = sdk.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, n=3)
    assert [texts[i] for i in range(3)] == [c.message.content for c in plain.choices]
    assert usage == plain.usage
