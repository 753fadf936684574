"""Fixtures: the simulator in-process (httpx ASGITransport) or as a real uvicorn process on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest
from modelyard_simulator import SimulatorConfig, create_app

# the test modules share request pieces from simulator_samples.py (importlib mode does not add this directory)
if os.path.dirname(__file__) not in sys.path:
    sys.path.insert(0, os.path.dirname(__file__))


def in_process(config: SimulatorConfig) -> tuple[openai.AsyncOpenAI, httpx.AsyncClient]:
    """An OpenAI SDK client and a raw httpx client talking to one fresh in-process simulator."""
    app = create_app(config)
    raw = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://simulator")
    sdk = openai.AsyncOpenAI(base_url="http://simulator/v1", api_key="unused", http_client=raw, max_retries=0)
    return sdk, raw


@pytest.fixture
def simulator() -> Callable[..., tuple[openai.AsyncOpenAI, httpx.AsyncClient]]:
    """Factory: ``simulator(**config_fields)``; latency is 0 ms unless the test says otherwise."""

    def make(**fields: object) -> tuple[openai.AsyncOpenAI, httpx.AsyncClient]:
        fields.setdefault("all_models", {"latency_ms": 0})
        return in_process(SimulatorConfig(**fields))

    return make


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveSimulator:
    process: subprocess.Popen
    base_url: str


def start_live(env_extra: dict[str, str]) -> LiveSimulator:
    port = free_port()
    env = {**os.environ, "MODELYARD_SIMULATOR_PORT": str(port), "MODELYARD_SIMULATOR_HOST": "127.0.0.1", **env_extra}
    process = subprocess.Popen(
        [sys.executable, "-m", "modelyard_simulator"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"simulator exited with {process.returncode}: {process.stdout.read().decode()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=0.5).status_code == 200:
                return LiveSimulator(process, base_url)
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("simulator did not answer /healthz within 20 s")


@pytest.fixture(scope="module")
def live_simulator() -> Iterator[LiveSimulator]:
    live = start_live({"MODELYARD_SIMULATOR_ALL_MODELS": '{"latency_ms": 0}'})
    yield live
    if live.process.poll() is None:
        live.process.terminate()
        live.process.wait(timeout=15)


@pytest.fixture(scope="module")
def module_simulator(request: pytest.FixtureRequest) -> Iterator[LiveSimulator]:
    """A simulator process configured by the test module's ``SIMULATOR_ENV`` (environment variables)."""
    live = start_live(request.module.SIMULATOR_ENV)
    yield live
    if live.process.poll() is None:
        live.process.terminate()
        live.process.wait(timeout=15)


@pytest.fixture
def start_simulator_process() -> Iterator[Callable[[dict[str, str]], LiveSimulator]]:
    """Factory for a dedicated simulator process (the test may stop it); leftovers are killed afterwards."""
    started: list[LiveSimulator] = []

    def start(env_extra: dict[str, str]) -> LiveSimulator:
        live = start_live(env_extra)
        started.append(live)
        return live

    yield start
    for live in started:
        if live.process.poll() is None:
            live.process.kill()
            live.process.wait(timeout=15)
