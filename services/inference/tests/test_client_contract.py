"""Contract of the two model-call clients (``backend_client``: ``openai`` and ``lean``): the same answers,
usage, finish reasons, retries and errors, over real HTTP sockets.

Two servers: the model simulator (its ASGI app under uvicorn in this process, a fresh one per client so
both see the same seeded randomness) and a recorded OpenAI transcript (``data/openai_transcript.json``,
the documented response and error shapes, served by a small aiohttp server). Each client runs the same
conversation against its own fresh server; the outcomes must be equal, and are checked for what they say.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from aiohttp import web
from modelyard_events import Generation
from modelyard_inference.backend import Backend, BackendRejected, BackendUnavailable
from modelyard_simulator import SimulatorConfig, create_app

from .conftest import fast_settings

#: Real sockets to servers this test starts itself.
pytestmark = pytest.mark.loopback

TRANSCRIPT = json.loads((Path(__file__).parent / "data" / "openai_transcript.json").read_text())["scenarios"]
ASK = [{"role": "user", "content": "How do I reset my password?"}]
CLIENTS = ("openai", "lean")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def simulator(**config: Any) -> AsyncIterator[str]:
    """A fresh simulator on a real socket; its base URL."""
    config.setdefault("all_models", {"latency_ms": 0})
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(SimulatorConfig(_env_file=None, **config)), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def transcript_server() -> AsyncIterator[str]:
    """The recorded responses, by the request's model name, each scenario's in order (the last repeats)."""
    served: dict[str, int] = {}

    async def chat(request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        script = TRANSCRIPT[body["model"]]
        i = served[body["model"]] = served.get(body["model"], -1) + 1
        step = script[min(i, len(script) - 1)]
        if "events" in step:
            assert body.get("stream") is True, "a streamed scenario asked without stream: true"
            response = web.StreamResponse(status=step["status"], headers=step["headers"])
            await response.prepare(request)
            for event in step["events"]:
                await response.write(b"data: " + orjson.dumps(event) + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            return response
        if "text" in step:
            return web.Response(status=step["status"], text=step["text"], headers=step["headers"])
        return web.Response(status=step["status"], body=orjson.dumps(step["body"]), headers=step["headers"],
                            content_type="application/json")

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


def outcome(result: Any) -> dict[str, Any]:
    """What a call gave the worker, without timings."""
    if isinstance(result, BaseException):
        return {"error": type(result).__name__, "message": str(result), "attempts": result.attempts,
                "circuit_open": getattr(result, "circuit_open", None),
                "model_error": result.error.model_dump() if isinstance(result, BackendRejected) else None}
    return {"text": result.text, "finish_reason": result.finish_reason, "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens, "logprobs": result.logprobs, "attempts": result.attempts,
            "choices": [c.model_dump() for c in result.choices], "choice_logprobs": list(result.choice_logprobs)}


Call = Callable[[Backend], Any]


async def converse(client: str, base_url: str, calls: list[tuple[str, Call]]) -> dict[str, Any]:
    backend = Backend(fast_settings(backend_client=client, backend_base_url=base_url, backend_attempts=3,
                                    backend_api_key="sk-test"))
    assert type(backend.client).__name__ == {"openai": "SdkClient", "lean": "LeanClient"}[client]
    results: dict[str, Any] = {}
    try:
        await backend.warm_up()
        for name, call in calls:
            try:
                results[name] = outcome(await call(backend))
            except BackendUnavailable as exc:
                results[name] = outcome(exc)
    finally:
        await backend.close()
    return results


async def both(server: Callable[[], Any], calls: list[tuple[str, Call]]) -> dict[str, dict[str, Any]]:
    """Each client's outcomes, each client against a fresh server of its own."""
    by_client = {}
    for client in CLIENTS:
        async with server() as url:
            by_client[client] = await converse(client, url, calls)
    return by_client


# --------------------------------------------------------------------------------------------------


async def test_both_clients_get_the_same_from_the_simulator() -> None:
    deltas: dict[str, list] = {}

    def keep(name: str, model: str, generation: Generation | None = None) -> Call:
        async def call(backend: Backend) -> Any:
            got: list[dict[str, Any]] = []
            completion = await backend.stream(model, ASK, generation, lambda ds: got.extend(d.model_dump(exclude_none=True) for d in ds))
            deltas.setdefault(name, []).append(got)
            return completion
        return call

    calls: list[tuple[str, Call]] = [
        ("plain", lambda b: b.complete("gpt-4o-mini", ASK)),
        ("two choices, logprobs kept", lambda b: b.complete("gpt-4o", ASK, Generation(n=2, logprobs=True, max_tokens=40))),
        ("streamed", keep("streamed", "gpt-4o")),
        ("bad role", lambda b: b.complete("gpt-4o-mini", [{"role": "robot", "content": "hi"}])),
        ("unknown model", lambda b: b.complete("no-such-model", ASK)),
        ("always failing", lambda b: b.complete("broken", ASK)),
        ("gives up with 504", lambda b: b.complete("hanging", ASK)),
    ]

    @asynccontextmanager
    async def server():
        async with simulator(models={"broken": {"kind": "slm", "error_rate": 1.0},
                                     "hanging": {"kind": "slm", "timeout_rate": 1.0, "timeout_s": 0.05},
                                     "gpt-4o": {"stream_chunk_tokens": 2}}) as url:
            yield url

    got = await both(server, calls)
    assert got["lean"] == got["openai"]
    assert deltas["streamed"][0] == deltas["streamed"][1] and deltas["streamed"][0]
    # ... and what they agree on is right
    lean = got["lean"]
    assert lean["plain"]["text"] and lean["plain"]["finish_reason"] == "stop" and lean["plain"]["output_tokens"] > 0
    assert len(lean["two choices, logprobs kept"]["choices"]) == 2
    assert lean["two choices, logprobs kept"]["choices"][0]["logprobs"]
    assert "".join(d.get("content", "") for d in deltas["streamed"][0]) == lean["streamed"]["text"]
    assert lean["bad role"]["error"] == "BackendRejected" and lean["bad role"]["model_error"]["status"] == 400
    assert lean["unknown model"]["error"] == "BackendUnavailable" and "HTTP 404" in lean["unknown model"]["message"]
    assert lean["always failing"]["attempts"] == 3 and "after 3 attempts" in lean["always failing"]["message"]
    assert "HTTP 504" in lean["gives up with 504"]["message"]


async def test_both_clients_read_a_recorded_openai_transcript_the_same_way() -> None:
    deltas: list[list[dict[str, Any]]] = []

    def stream(model: str) -> Call:
        async def call(backend: Backend) -> Any:
            got: list[dict[str, Any]] = []
            completion = await backend.stream(model, ASK, Generation(logprobs=True),
                                              lambda ds: got.extend(d.model_dump(exclude_none=True) for d in ds))
            deltas.append(got)
            return completion
        return call

    calls: list[tuple[str, Call]] = [
        ("answer", lambda b: b.complete("gpt-4o-2024-08-06", ASK)),
        ("tool call and a cut-off choice", lambda b: b.complete("gpt-4o-mini-tools", ASK, Generation(n=2))),
        ("refusal", lambda b: b.complete("gpt-4o-refusal", ASK)),
        ("400", lambda b: b.complete("bad-temperature", ASK)),
        ("400 context length", lambda b: b.complete("too-long", ASK)),
        ("401", lambda b: b.complete("bad-key", ASK)),
        ("429 then 200", lambda b: b.complete("rate-limited-then-ok", ASK)),
        ("500, 500, 503", lambda b: b.complete("server-error", ASK)),
        ("stream", stream("gpt-4o-stream")),
        ("stream refused", stream("stream-rejected")),
    ]
    got = await both(transcript_server, calls)
    assert got["lean"] == got["openai"]
    assert deltas[0] == deltas[1]
    lean = got["lean"]
    assert lean["answer"] == {
        "text": "Open Settings, choose Security, then Reset password.", "finish_reason": "stop", "input_tokens": 19,
        "output_tokens": 12, "logprobs": [-0.0123, -0.2041, -1.5e-05], "attempts": 1,
        "choices": lean["answer"]["choices"], "choice_logprobs": [[-0.0123, -0.2041, -1.5e-05]]}
    tools = lean["tool call and a cut-off choice"]
    assert tools["choices"][0]["tool_calls"][0]["function"]["name"] == "get_ticket"
    assert [c["finish_reason"] for c in tools["choices"]] == ["tool_calls", "length"] and tools["output_tokens"] == 27
    assert lean["refusal"]["choices"][0]["refusal"].startswith("I'm sorry")
    assert lean["400"]["model_error"] == {
        "status": 400, "type": "invalid_request_error", "param": "temperature", "code": "decimal_above_max_value",
        "message": TRANSCRIPT["bad-temperature"][0]["body"]["error"]["message"]}
    assert lean["400 context length"]["model_error"]["code"] == "context_length_exceeded"
    assert lean["401"]["error"] == "BackendUnavailable" and lean["401"]["attempts"] == 1
    assert lean["429 then 200"]["attempts"] == 2 and lean["429 then 200"]["text"] == "Your ticket is in progress."
    assert lean["500, 500, 503"]["attempts"] == 3 and "HTTP 503" in lean["500, 500, 503"]["message"]
    assert lean["stream"]["text"] == "Restart the VPN client." and lean["stream"]["input_tokens"] == 15
    assert lean["stream"]["logprobs"] == [-0.31, -0.02]
    assert "".join(d.get("content", "") for d in deltas[0]) == "Restart the VPN client."
    assert lean["stream refused"]["model_error"]["code"] == "unsupported_value"


@pytest.mark.parametrize("variable", ["MODELYARD_BACKEND_CLIENT", "MODELYARD_BACKEND__CLIENT"])
def test_the_client_is_chosen_by_either_variable_and_a_wrong_value_is_refused(
        variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelyard_inference.settings import InferenceSettings
    from pydantic import ValidationError

    assert InferenceSettings().backend_client == "lean"
    monkeypatch.setenv(variable, "openai")
    assert InferenceSettings().backend_client == "openai"
    monkeypatch.setenv(variable, "curl")
    with pytest.raises(ValidationError, match="lean"):
        InferenceSettings()
