"""The HTTP face of the simulator: OpenAI-compatible endpoints plus an admin API for fault tests.

Endpoints
- ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /v1/models/{model}`` — OpenAI shapes.
- ``GET /healthz``.
- ``GET /admin/config`` / ``POST /admin/config`` — read or patch the knobs at run time
  (``{"all_models": {...}, "models": {"gpt-4o-mini": {"error_rate": 0.5}}}``), all or nothing.
- ``GET /admin/stats`` — requests, completions, hedges, injected errors and timeouts per model.
- ``POST /admin/reset`` — knobs back to the start-up configuration and counters to zero
  (``{"config": false}`` or ``{"stats": false}`` keeps that part).

Per-request headers (optional, for tests)
- ``X-Simulator-Latency-Ms: <ms>`` — this request's latency instead of a sampled one (0 = no sleep).
- ``X-Simulator-Fault: 429|500|502|503|timeout|none`` — force a fault, or none, instead of rolling the dice.
- ``X-Simulator-Difficulty: <0..1>`` — force the prompt's difficulty.

Response headers (OpenAI sends none of these; tests and evaluations read them)
- ``x-simulator-difficulty``, ``x-simulator-hedged`` (0/1), ``x-simulator-source`` (generated / replay);
- ``x-simulator-correct-answer`` and ``x-simulator-right`` (1/0 per choice) for prompts with a final answer;
- ``x-simulator-defects`` (none / unparsable / schema per choice) when an answer's JSON is defective;
- ``x-simulator-replay-correct`` (1/0) when the replay file says whether the recorded answer was right.

Errors injected by ``error_rate`` answer at once (no latency); a timeout hangs ``timeout_s`` seconds or
until the client disconnects, then answers 504. A client that disconnects while its answer is generated
(the latency, the paced tokens of a stream or of a non-streamed answer) stops the generation.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from modelyard_simulator.choices import Completion, complete
from modelyard_simulator.config import SimulatorConfig
from modelyard_simulator.errors import ApiError
from modelyard_simulator.replay import Recorded
from modelyard_simulator.request import parse_chat_request
from modelyard_simulator.responses import completion_document, generation_seconds, sse
from modelyard_simulator.state import ModelStats, Simulator
from modelyard_simulator.words import count_prompt_tokens

FAULTS: dict[int, tuple[str, str | None, str]] = {
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for {model} (simulated). Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request (simulated)."),
    502: ("server_error", "bad_gateway", "Bad gateway (simulated)."),
    503: (
        "server_error",
        "service_unavailable",
        "The engine is currently overloaded (simulated). Please try again later.",
    ),
}


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type="application/json", headers=headers)


def _error(exc: ApiError) -> Response:
    return _json(exc.body(), exc.status)


class Overrides:
    """The optional ``X-Simulator-*`` headers of one request."""

    __slots__ = ("latency_s", "fault", "difficulty")

    def __init__(self, request: Request) -> None:
        self.latency_s = self.fault = self.difficulty = None
        # one pass over the raw headers: most requests carry none of these
        if not any(key.startswith(b"x-simulator-") for key, _ in request.scope["headers"]):
            return
        headers = request.headers
        if (raw := headers.get("x-simulator-latency-ms")) is not None:
            self.latency_s = self._number(raw, "X-Simulator-Latency-Ms", 0, 600_000) / 1000
        if (raw := headers.get("x-simulator-difficulty")) is not None:
            self.difficulty = self._number(raw, "X-Simulator-Difficulty", 0, 1)
        if (raw := headers.get("x-simulator-fault")) is not None:
            raw = raw.strip().lower()
            if raw in ("timeout", "none"):
                self.fault = raw
            elif raw.isdigit() and int(raw) in FAULTS:
                self.fault = int(raw)
            else:
                raise ApiError(
                    400,
                    f"X-Simulator-Fault must be one of {sorted(FAULTS)}, timeout or none.",
                    param="X-Simulator-Fault",
                )

    @staticmethod
    def _number(raw: str, name: str, low: float, high: float) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not low <= value <= high:
            raise ApiError(400, f"{name} must be a number from {low} to {high}.", param=name)
        return value


class _StreamRun:
    """Accounting of one streamed answer. A client that goes away cancels the stream (Starlette), which
    stops the generation; ``close`` runs once however the stream ended, even if it never started."""

    def __init__(self, sim: Simulator, stats: ModelStats) -> None:
        self.sim, self.stats = sim, stats
        self.finished = self.closed = False

    async def events(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        try:
            async for part in chunks:
                yield part
            self.finished = True
        finally:
            await self.close()

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sim.in_flight -= 1
            self.stats.cancelled += not self.finished


class Endpoints:
    def __init__(self, simulator: Simulator) -> None:
        self.sim = simulator

    async def chat_completions(self, request: Request) -> Response:
        sim = self.sim
        try:
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError:
                raise ApiError(400, "We could not parse the JSON body of your request.") from None
            chat = parse_chat_request(body)
            knobs = sim.knobs_for(chat.model)
            if chat.conversation.image_param is not None and not knobs.vision:
                raise ApiError(
                    400,
                    "Invalid content type. image_url is only supported by certain models.",
                    param=chat.conversation.image_param,
                )
            overrides = Overrides(request)
        except ApiError as exc:
            sim.rejected += 1
            return _error(exc)

        stats = sim.stats_for(chat.model)
        stats.requests += 1
        sim.in_flight += 1
        streaming = False
        try:
            fault = overrides.fault or sim.roll_fault(knobs)
            if fault == "timeout":
                stats.timeouts_injected += 1
                await self._wait(request, knobs.timeout_s)
                return _error(
                    ApiError(
                        504,
                        f"Request timed out (simulated hang of {knobs.timeout_s:g} s).",
                        type="timeout",
                        code="timeout",
                    )
                )
            if isinstance(fault, int):
                stats.errors_injected[fault] += 1
                kind, code, message = FAULTS[fault]
                return _error(ApiError(fault, message.format(model=chat.model), type=kind, code=code))

            convo = chat.conversation
            recorded = sim.replay.lookup(convo.question, chat.model, convo.system) if sim.replay is not None else None
            if sim.replay is not None and recorded is None and sim.config.replay_fallback == "not_found":
                sim.rejected += 1
                return _error(
                    ApiError(
                        404,
                        f"No recorded response of `{chat.model}` for this prompt (replay mode).",
                        code="replay_miss",
                    )
                )
            sampling_key, greedy = sim.sampling(chat.seed, chat.temperature)
            completion = complete(
                chat,
                knobs,
                sampling_key=sampling_key,
                greedy=greedy,
                replay_text=recorded.text if recorded is not None else None,
                forced_difficulty=overrides.difficulty,
            )
            delay = overrides.latency_s if overrides.latency_s is not None else sim.latency_s(knobs)
            if delay > 0 and not await self._wait(request, delay):
                stats.cancelled += 1
                return Response(status_code=499)

            prompt_tokens = count_prompt_tokens(convo.texts) + convo.image_tokens
            completion_tokens = completion.completion_tokens
            _count(stats, completion, prompt_tokens, completion_tokens)
            headers = _headers(completion, recorded)
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
            if chat.stream:
                streaming = True
                run = _StreamRun(sim, stats)
                events = run.events(sse(chat, completion, usage, knobs.stream_tokens_per_s, knobs.stream_chunk_tokens))
                return StreamingResponse(
                    events, media_type="text/event-stream", headers=headers, background=BackgroundTask(run.close)
                )
            generating = generation_seconds(completion, knobs.stream_tokens_per_s)
            if generating > 0 and not await self._wait(request, generating):
                stats.cancelled += 1
                return Response(status_code=499)
            return _json(completion_document(chat, completion, usage), headers=headers)
        finally:
            if not streaming:
                sim.in_flight -= 1

    @staticmethod
    async def _wait(request: Request, seconds: float) -> bool:
        """Sleep like a busy or stuck backend; False as soon as the client has given up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            await asyncio.sleep(min(0.25, left))
            if await request.is_disconnected():
                return False
        return True

    async def list_models(self, request: Request) -> Response:
        return _json({"object": "list", "data": [_model_card(name) for name in self.sim.knobs]})

    async def get_model(self, request: Request) -> Response:
        name = request.path_params["model"]
        try:
            self.sim.knobs_for(name)
        except ApiError as exc:
            return _error(exc)
        return _json(_model_card(name))

    async def healthz(self, request: Request) -> Response:
        return _json({"status": "ok", "models": len(self.sim.knobs)})

    async def get_config(self, request: Request) -> Response:
        return _json(self._config_document())

    async def post_config(self, request: Request) -> Response:
        try:
            try:
                doc = orjson.loads(await request.body())
            except orjson.JSONDecodeError:
                raise ApiError(400, "The body must be JSON.") from None
            self.sim.apply(doc)
        except ApiError as exc:
            return _error(exc)
        return _json(self._config_document())

    async def get_stats(self, request: Request) -> Response:
        return _json(self.sim.stats_document())

    async def post_reset(self, request: Request) -> Response:
        raw = await request.body()
        try:
            doc = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            return _error(ApiError(400, "The body must be JSON (or empty)."))
        if not isinstance(doc, dict):
            return _error(ApiError(400, 'Expected {"config": bool, "stats": bool}.'))
        self.sim.reset(config=bool(doc.get("config", True)), stats=bool(doc.get("stats", True)))
        return _json(self._config_document())

    def _config_document(self) -> dict[str, Any]:
        return {
            "replay": {
                "file": str(self.sim.config.replay_file) if self.sim.config.replay_file else None,
                "prompts": len(self.sim.replay) if self.sim.replay is not None else 0,
                "fallback": self.sim.config.replay_fallback,
            },
            "models": {name: knobs.model_dump(mode="json") for name, knobs in self.sim.knobs.items()},
        }


def _model_card(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "modelyard-simulator"}


def _count(stats: ModelStats, completion: Completion, prompt_tokens: int, completion_tokens: int) -> None:
    stats.completed += 1
    stats.replayed += completion.source == "replay"
    stats.hedged += completion.hedged
    stats.prompt_tokens += prompt_tokens
    stats.completion_tokens += completion_tokens
    for choice in completion.choices:
        stats.choices += 1
        stats.tool_calls += len(choice.tool_calls)
        stats.defective += choice.defect is not None
        stats.final_answers_right += choice.right is True
        stats.final_answers_wrong += choice.right is False


def _headers(completion: Completion, recorded: Recorded | None) -> dict[str, str]:
    """Why the answer looks the way it does (for tests and evaluations; OpenAI sends none of these)."""
    headers = {
        "x-simulator-difficulty": f"{completion.difficulty:.4f}",
        "x-simulator-hedged": "1" if completion.hedged else "0",
        "x-simulator-source": completion.source,
    }
    if completion.correct_answer is not None:
        headers["x-simulator-correct-answer"] = str(completion.correct_answer)
        headers["x-simulator-right"] = ",".join("1" if c.right else "0" for c in completion.choices)
    if any(c.defect for c in completion.choices):
        headers["x-simulator-defects"] = ",".join(c.defect or "none" for c in completion.choices)
    if recorded is not None and recorded.correct is not None:
        headers["x-simulator-replay-correct"] = "1" if recorded.correct else "0"
    return headers


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return _error(ApiError(status, f"{request.method} {request.url.path}: {getattr(exc, 'detail', 'error')}"))


def create_app(config: SimulatorConfig | None = None) -> Starlette:
    """The simulator as an ASGI app; each app has its own knobs, dice and counters."""
    endpoints = Endpoints(Simulator(config or SimulatorConfig()))
    routes = [
        Route("/v1/chat/completions", endpoints.chat_completions, methods=["POST"]),
        Route("/chat/completions", endpoints.chat_completions, methods=["POST"]),
        Route("/v1/models", endpoints.list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", endpoints.get_model, methods=["GET"]),
        Route("/healthz", endpoints.healthz, methods=["GET"]),
        Route("/admin/config", endpoints.get_config, methods=["GET"]),
        Route("/admin/config", endpoints.post_config, methods=["POST"]),
        Route("/admin/stats", endpoints.get_stats, methods=["GET"]),
        Route("/admin/reset", endpoints.post_reset, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    app.state.simulator = endpoints.sim
    return app
