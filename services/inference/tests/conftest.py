"""Fixtures: the model simulator in-process behind the openai SDK (real Kafka comes from the modelyard plugin)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx2
import pytest
from modelyard_inference.backend import Backend
from modelyard_inference.settings import InferenceSettings
from modelyard_simulator import SimulatorConfig, create_app
from openai import AsyncOpenAI

SimulatedBackend = Callable[..., Awaitable[tuple[Backend, httpx2.AsyncClient]]]


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
    """
    opened: list[tuple[Backend, httpx2.AsyncClient]] = []

    async def make(settings: InferenceSettings | None = None, *, headers: dict[str, str] | None = None,
                   **config: object) -> tuple[Backend, httpx2.AsyncClient]:
        settings = settings or fast_settings()
        config.setdefault("all_models", {"latency_ms": 0})
        app = create_app(SimulatorConfig(_env_file=None, **config))
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
