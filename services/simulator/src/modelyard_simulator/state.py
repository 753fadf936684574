"""Run-time state of one simulator process: the current knobs, the dice, the replay book and the counters."""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from modelyard_simulator.config import KIND_DEFAULTS, ModelKnobs, SimulatorConfig
from modelyard_simulator.errors import ApiError
from modelyard_simulator.replay import ReplayBook


@dataclass
class ModelStats:
    requests: int = 0
    completed: int = 0
    replayed: int = 0
    hedged: int = 0
    timeouts_injected: int = 0
    errors_injected: Counter[int] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: the client went away before the answer was complete (the generation stopped)
    cancelled: int = 0
    choices: int = 0
    tool_calls: int = 0
    #: choices whose JSON (structured output or tool arguments) is defective on purpose
    defective: int = 0
    final_answers_right: int = 0
    final_answers_wrong: int = 0

    def as_dict(self) -> dict[str, Any]:
        counts = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "errors_injected"}
        return {
            **counts,
            "errors_injected": {str(status): n for status, n in sorted(self.errors_injected.items())},
            "errors_injected_total": sum(self.errors_injected.values()),
        }


class Simulator:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._initial = config.resolved_models()
        self.knobs: dict[str, ModelKnobs] = dict(self._initial)
        #: Faults and latencies are random per call (a retry can succeed), reproducible per process seed;
        #: answers are deterministic per prompt (see generate.rng_for).
        self.dice = random.Random(config.seed)
        self.replay = ReplayBook.load(config.replay_file, config.replay_models) if config.replay_file else None
        self.stats: dict[str, ModelStats] = {}
        self.rejected = 0
        self.in_flight = 0
        self.started = time.time()
        #: requests sampled without a seed at a temperature above 0: each gets its own random stream
        self.sampled_calls = 0

    def sampling(self, seed: int | None, temperature: float | None) -> tuple[str, bool]:
        """The key of a request's random stream, and whether its choices are all the first one (greedy).

        With a ``seed`` an answer repeats (exactly, at temperature 0); at temperature 0 it repeats too;
        sampled at a temperature above 0 without a seed it varies from call to call (reproducibly per
        process ``seed`` and call order); with neither, it is the same per conversation unless
        ``vary_unseeded`` is set (then it is sampled like temperature 1).
        """
        base = self.config.seed
        if seed is not None:
            return f"{base}:s{seed}", temperature == 0
        if temperature == 0:
            return f"{base}:t0", True
        if temperature is not None or self.config.vary_unseeded:
            self.sampled_calls += 1
            return f"{base}:c{self.sampled_calls}", False
        return str(base), False

    def knobs_for(self, model: str) -> ModelKnobs:
        try:
            return self.knobs[model]
        except KeyError:
            raise ApiError(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                param="model",
                code="model_not_found",
            ) from None

    def stats_for(self, model: str) -> ModelStats:
        stats = self.stats.get(model)
        if stats is None:
            stats = self.stats[model] = ModelStats()
        return stats

    def roll_fault(self, knobs: ModelKnobs) -> int | str | None:
        """``"timeout"``, an HTTP status to fail with, or None. Rates of 0 cost no dice roll."""
        if knobs.timeout_rate and self.dice.random() < knobs.timeout_rate:
            return "timeout"
        if knobs.error_rate and self.dice.random() < knobs.error_rate:
            return self.dice.choice(knobs.error_statuses)
        return None

    def latency_s(self, knobs: ModelKnobs) -> float:
        if knobs.latency_ms <= 0:
            return 0.0  # the 0 ms mode: no dice, no sleep
        if knobs.latency_distribution == "normal":
            ms = self.dice.gauss(knobs.latency_ms, knobs.latency_stddev_ms)
        elif knobs.latency_distribution == "lognormal":
            ms = knobs.latency_ms * math.exp(self.dice.gauss(0.0, knobs.latency_sigma))
        else:
            ms = knobs.latency_ms
        return min(max(ms, 0.0), knobs.latency_max_ms) / 1000

    def apply(self, doc: Any) -> dict[str, ModelKnobs]:
        """Patch the knobs at run time: ``{"all_models": {...}, "models": {"<name>": {...}}}``, all or nothing."""
        if not isinstance(doc, dict) or not set(doc) <= {"all_models", "models"}:
            raise ApiError(400, 'Expected {"all_models": {knob: value}, "models": {model: {knob: value}}}.')
        everyone = doc.get("all_models") or {}
        per_model = doc.get("models") or {}
        if not isinstance(everyone, dict) or not isinstance(per_model, dict):
            raise ApiError(400, "'all_models' must be an object of knobs and 'models' an object of such objects.")
        updated = dict(self.knobs)
        try:
            for name, patch in per_model.items():
                if not isinstance(patch, dict):
                    raise ApiError(400, f"models.{name}: expected an object of knobs.", param=f"models.{name}")
                if name not in updated:
                    kind = patch.get("kind", "llm")
                    if kind not in KIND_DEFAULTS:
                        raise ApiError(
                            400,
                            f"models.{name}.kind: expected one of {sorted(KIND_DEFAULTS)}.",
                            param=f"models.{name}.kind",
                        )
                    updated[name] = ModelKnobs.model_validate(KIND_DEFAULTS[kind])
            for name, knobs in updated.items():
                updated[name] = knobs.patched(everyone).patched(per_model.get(name, {}))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ApiError(400, f"Invalid knob '{where}': {first['msg']}.", param=where) from None
        self.knobs = updated
        return updated

    def reset(self, *, config: bool = True, stats: bool = True) -> None:
        if config:
            self.knobs = dict(self._initial)
        if stats:
            self.stats.clear()
            self.rejected = 0

    def stats_document(self) -> dict[str, Any]:
        models = {name: s.as_dict() for name, s in sorted(self.stats.items())}
        return {
            "uptime_s": round(time.time() - self.started, 3),
            "in_flight": self.in_flight,
            "rejected": self.rejected,
            "requests": sum(s.requests for s in self.stats.values()),
            "errors_injected": sum(sum(s.errors_injected.values()) for s in self.stats.values()),
            "timeouts_injected": sum(s.timeouts_injected for s in self.stats.values()),
            "models": models,
        }
