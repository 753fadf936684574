"""The simulator as a real uvicorn process on loopback: SDK round trip, timeouts, graceful SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import openai
import pytest

#: A real uvicorn process on a free port, started by the test itself: TCP on loopback, no shared server.
pytestmark = pytest.mark.loopback


def wait_until(condition, seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.05)


async def test_sdk_round_trip_over_tcp(live_simulator) -> None:
    async with openai.AsyncOpenAI(base_url=f"{live_simulator.base_url}/v1", api_key="unused", max_retries=0) as sdk:
        reply = await sdk.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "How do I reset my password?"}],
            logprobs=True,
            top_logprobs=1,
        )
        assert reply.choices[0].message.content and reply.usage.completion_tokens == len(
            reply.choices[0].logprobs.content
        )
        chunks = [
            c
            async for c in await sdk.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "How do I reset my password?"}], stream=True
            )
        ]
        assert chunks[-1].choices[0].finish_reason == "stop" and len(chunks) >= 3


async def test_timeout_hangs_past_the_client_timeout_and_stops_when_the_client_leaves(live_simulator) -> None:
    admin = httpx.Client(base_url=live_simulator.base_url)
    admin.post("/admin/reset").raise_for_status()
    admin.post("/admin/config", json={"models": {"gpt-4o": {"timeout_rate": 1.0, "timeout_s": 60}}}).raise_for_status()
    try:
        async with openai.AsyncOpenAI(
            base_url=f"{live_simulator.base_url}/v1", api_key="unused", max_retries=0, timeout=0.3
        ) as sdk:
            started = time.monotonic()
            with pytest.raises(openai.APITimeoutError):
                await sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello?"}])
            assert time.monotonic() - started < 5
        assert admin.get("/admin/stats").json()["timeouts_injected"] == 1
        # the hang notices the disconnect long before its 60 s are up
        wait_until(
            lambda: admin.get("/admin/stats").json()["in_flight"] == 0,
            5,
            "the hung request did not end after the client left",
        )
    finally:
        admin.post("/admin/reset").raise_for_status()
        admin.close()


def test_a_hang_is_bounded_and_ends_in_504(live_simulator) -> None:
    with httpx.Client(base_url=live_simulator.base_url, timeout=10) as client:
        client.post(
            "/admin/config", json={"models": {"gpt-4o": {"timeout_rate": 1.0, "timeout_s": 0.5}}}
        ).raise_for_status()
        try:
            started = time.monotonic()
            response = client.post(
                "/v1/chat/completions", json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}
            )
            elapsed = time.monotonic() - started
        finally:
            client.post("/admin/reset").raise_for_status()
    assert response.status_code == 504 and response.json()["error"]["type"] == "timeout"
    assert 0.5 <= elapsed < 5


async def test_sigterm_lets_in_flight_requests_finish(start_simulator_process) -> None:
    live = start_simulator_process(
        {"MODELYARD_SIMULATOR_ALL_MODELS": '{"latency_ms": 800, "latency_distribution": "fixed"}'}
    )
    async with httpx.AsyncClient(base_url=live.base_url, timeout=10) as client:
        pending = asyncio.create_task(
            client.post(
                "/v1/chat/completions", json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}
            )
        )
        deadline = time.monotonic() + 5
        while (await client.get("/admin/stats")).json()["in_flight"] != 1:
            assert time.monotonic() < deadline, "the request never arrived"
            await asyncio.sleep(0.02)
        live.process.send_signal(signal.SIGTERM)
        response = await pending
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"]
    # uvicorn shuts down gracefully, then re-raises the signal: exit status 0 or "terminated by SIGTERM"
    assert await asyncio.to_thread(live.process.wait, 15) in (0, -signal.SIGTERM)
