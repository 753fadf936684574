"""Fixtures: the model simulator in-process behind the openai SDK (real Kafka comes from the modelyard plugin)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx2
import pytest
from modelyard_inference.backend import Backend
from modelyard_inference.settings import InferenceSettings
from modelyard_simulator import SimulatorConfig, create_app
from openai import AsyncOpenAI

SimulatedBackend = Callable[..., Awaitable[tuple[Backend, httpx2.AsyncClient]]]


class Recorded:
    """The simulator's ASGI app, keeping the JSON body of every chat request it is sent (what the model got)."""

    def __init__(self, app, bodies: list[dict]) -> None:
        self.app = app
        self.bodies = bodies

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].endswith("/chat/completions"):
            return await self.app(scope, receive, send)
        chunks: list[bytes] = []

        async def replay():
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                self.bodies.append(json.loads(b"".join(chunks)))
            return message

        return await self.app(scope, replay, send)


def fast_settings(**overrides: object) -> InferenceSettings:
    """Inference settings for unit tests: quick retries, no env."""
    fields: dict[str, object] = {"backend_backoff_s": 0.001, "backend_timeout_s": 2.0, "agent_sync_timeout_s": 0}
    fields.update(overrides)
    return InferenceSettings(_env_file=None, **fields)


@pytest.fixture
async def simulated_backend() -> AsyncIterator[SimulatedBackend]:
    """Factory: ``await simulated_backend(settings, headers=..., **simulator_config)`` → (Backend, admin client).

    The simulator runs in-process (its ASGI app behind httpx2's ASGITransport); the Backend reaches it
    through the openai SDK exactly as it reaches a real endpoint. ``headers`` are sent with every call
    (``X-Simulator-Fault``, ``X-Simulator-Difficulty``, ...). Latency is 0 ms unless the config says otherwise.
    ``bodies``, a list, receives the JSON body of every chat request the simulator is sent.
    """
    opened: list[tuple[Backend, httpx2.AsyncClient]] = []

    async def make(settings: InferenceSettings | None = None, *, headers: dict[str, str] | None = None,
                   bodies: list[dict] | None = None, **config: object) -> tuple[Backend, httpx2.AsyncClient]:
        settings = settings or fast_settings()
        config.setdefault("all_models", {"latency_ms": 0})
        app = create_app(SimulatorConfig(_env_file=None, **config))
        if bodies is not None:
            app = Recorded(app, bodies)
        http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://simulator")
        client = AsyncOpenAI(base_url="http://simulator/v1", api_key="unused", max_retries=0, http_client=http,
                             default_headers=headers)
        pair = (Backend(settings, client), http)
        opened.append(pair)
        return pair

    yield make
    for backend, http in opened:
        await backend.close()
        await http.aclose()
