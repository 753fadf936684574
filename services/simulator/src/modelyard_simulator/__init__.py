"""modelyard model simulator: an OpenAI-compatible HTTP server with latency, token, log-probability,
failure and replay knobs, for the demo, the benchmarks and fault tests (it is never a test mock)."""

from modelyard_simulator.app import create_app
from modelyard_simulator.config import ModelKnobs, SimulatorConfig
from modelyard_simulator.difficulty import difficulty
from modelyard_simulator.server import main, serve

__all__ = ["ModelKnobs", "SimulatorConfig", "create_app", "difficulty", "main", "serve"]
