"""Simulator settings and the per-model knobs.

Knobs are resolved in three layers, later wins:

1. built-in defaults per model *kind* (``slm``, ``llm``, ``llm_plus``) for the three class-default models
   and every model of the pricing table, whose ``vision`` comes from the table's capability flag;
2. ``all_models`` — a patch applied to every model (``MODELYARD_SIMULATOR_ALL_MODELS='{"latency_ms": 0}'``
   or ``MODELYARD_SIMULATOR_ALL_MODELS__LATENCY_MS=0``: the 0 ms mode for throughput benchmarks);
3. ``models`` — a patch per model name; a name that is not built in adds a model
   (``MODELYARD_SIMULATOR_MODELS='{"gpt-4o-mini": {"error_rate": 0.5}, "my-model": {"kind": "slm"}}'``).

The same patches can be applied at run time through ``POST /admin/config``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from modelyard_core.runtime import DEFAULT_GEN0_THRESHOLD
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ModelKind = Literal["slm", "llm", "llm_plus"]
FaultStatus = Literal[429, 500, 502, 503]


class ModelKnobs(BaseModel):
    """How one simulated model behaves. Every field can be patched at start-up and at run time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ModelKind = "llm"

    # Latency of a successful answer, slept before it is sent. 0 = the 0 ms mode: no sleep at all.
    latency_distribution: Literal["fixed", "normal", "lognormal"] = "fixed"
    latency_ms: float = Field(default=0.0, ge=0, description="fixed value, mean (normal) or median (lognormal)")
    latency_stddev_ms: float = Field(default=0.0, ge=0, description="standard deviation of the normal distribution")
    latency_sigma: float = Field(default=0.35, ge=0, le=3, description="shape of the lognormal distribution")
    latency_max_ms: float = Field(default=30_000.0, ge=0, description="cap of every sampled latency")

    # Length of a generated answer in tokens (mean; each answer varies by +-25 %).
    output_tokens: int = Field(default=80, ge=1, le=8_192)
    # Whether the model returns log-probabilities when a request asks for them.
    logprobs: bool = True

    # Faults. Errors answer at once with an OpenAI-style error body; a timeout hangs timeout_s seconds
    # (or until the client goes away), then answers 504.
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_statuses: tuple[FaultStatus, ...] = Field(default=(500, 503, 429), min_length=1)
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    timeout_s: float = Field(default=30.0, gt=0, le=600)

    # Difficulty model. The mean token probability falls linearly from token_prob_easy (difficulty 0)
    # to token_prob_hard (difficulty 1); above hedge_above the answer opens with a hedge
    # ("I'm not sure, but ..."). hedge_above = 1 never hedges.
    token_prob_easy: float = Field(default=0.98, gt=0, le=1)
    token_prob_hard: float = Field(default=0.90, gt=0, le=1)
    hedge_above: float = Field(default=1.0, ge=0, le=1)
    # A conversation whose system prompt contains one of these strings always hedges: one tenant's agent made
    # unsure whatever it is asked (tests of the router's learning from its cascades).
    hedge_markers: tuple[str, ...] = Field(default=(), max_length=20)

    # Streaming: tokens per second of one choice after the first token (0 = no pacing: the whole answer
    # as soon as the latency is over) and tokens per content chunk while the stream keeps pace. A
    # non-streamed answer arrives when its last token would have been generated.
    stream_tokens_per_s: float = Field(default=0.0, ge=0, le=100_000)
    stream_chunk_tokens: int = Field(default=1, ge=1, le=256)

    # Whether image content parts are accepted (others answer OpenAI's 400).
    vision: bool = True

    # Defect rates, for cascade tests: a tool call's arguments / a structured-output answer that does
    # not parse or does not validate against its schema.
    invalid_tool_args_rate: float = Field(default=0.0, ge=0, le=1)
    invalid_json_rate: float = Field(default=0.0, ge=0, le=1)

    # Agreement model for prompts with a final answer (word problems): each sampled choice is right with
    # a probability falling linearly from right_rate_easy to right_rate_hard with the difficulty; wrong
    # choices spread over `distractors` wrong answers, `distractor_top_share` of them on the most common
    # one; `slip_rate` of the wrong choices show an arithmetic slip ("a op b = c" that does not hold).
    final_answer: Literal["auto", "always", "never"] = "auto"
    right_rate_easy: float = Field(default=0.97, ge=0, le=1)
    right_rate_hard: float = Field(default=0.80, ge=0, le=1)
    # per-prompt spread of that probability on the logit scale (0: every prompt of one difficulty alike)
    right_rate_spread: float = Field(default=1.5, ge=0, le=5)
    distractors: int = Field(default=3, ge=1, le=8)
    distractor_top_share: float = Field(default=0.6, ge=0, le=1)
    slip_rate: float = Field(default=0.3, ge=0, le=1)

    def patched(self, patch: dict[str, Any]) -> ModelKnobs:
        """A copy with ``patch`` applied and validated (unknown knobs are an error)."""
        return ModelKnobs.model_validate({**self.model_dump(), **patch})


#: Defaults per kind. Small models answer fast and hedge on hard prompts; large ones are slower and sure.
KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "slm": {
        "kind": "slm",
        "latency_distribution": "lognormal",
        "latency_ms": 30.0,
        "output_tokens": 60,
        "token_prob_easy": 0.95,
        "token_prob_hard": 0.40,
        "hedge_above": 0.55,
        "vision": False,
        "right_rate_easy": 0.90,
        "right_rate_hard": 0.35,
    },
    "llm": {
        "kind": "llm",
        "latency_distribution": "lognormal",
        "latency_ms": 120.0,
        "output_tokens": 120,
        "token_prob_easy": 0.98,
        "token_prob_hard": 0.90,
    },
    "llm_plus": {
        "kind": "llm_plus",
        "latency_distribution": "lognormal",
        "latency_ms": 200.0,
        "output_tokens": 160,
        "token_prob_easy": 0.985,
        "token_prob_hard": 0.93,
        "right_rate_easy": 0.98,
        "right_rate_hard": 0.85,
    },
}

BUILTIN_MODELS: dict[str, ModelKind] = {"gpt-4o-mini": "slm", "gpt-4o": "llm", "gpt-4-turbo": "llm_plus"}

_SMALL_NAME_MARKERS = ("mini", "nano", "small", "-1b", "-3b", "-7b", "-8b")


def guess_kind(model: str) -> ModelKind:
    """Kind of a pricing-table model the simulator has no explicit kind for, from its name."""
    return "slm" if any(marker in model.lower() for marker in _SMALL_NAME_MARKERS) else "llm"


def _pricing_models(pricing_file: str | None) -> dict[str, tuple[ModelKind, bool]]:
    """Kind and vision capability of every pricing-table model (the table says which models read images)."""
    from modelyard_core.pricing import load_pricing  # only pricing: no broker or client is built

    table = load_pricing(pricing_file)
    by_default = {model: str(cls.value) for cls, model in table.class_defaults.items()}
    return {m: (by_default.get(m) or guess_kind(m), bool(table.reads_images(m))) for m in table.models}  # type: ignore[misc]


class SimulatorConfig(BaseSettings):
    """Settings of the model simulator (env prefix ``MODELYARD_SIMULATOR_``)."""

    model_config = SettingsConfigDict(env_prefix="MODELYARD_SIMULATOR_", env_nested_delimiter="__", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65_535)
    #: Seeds the generated answers (with the request's own ``seed``) and the fault/latency dice.
    seed: int = 0
    #: Patch applied to every model, e.g. ``{"latency_ms": 0}``.
    all_models: dict[str, Any] = Field(default_factory=dict)
    #: Patch per model name; an unknown name adds a model (give it a ``kind``).
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Serve the models of the pricing table as well (kind from the class defaults, else from the name).
    include_pricing_models: bool = True
    pricing_file: str | None = None

    #: Replay mode: JSON lines ``{"prompt": ..., "responses": {"<model>": "<text>"}}``, or a CSV with a
    #: ``prompt`` column and ``<model>_response`` columns (RouteLLM's format), matched on the last user
    #: message. A prompt or model that is not recorded falls back as ``replay_fallback`` says.
    replay_file: Path | None = None
    replay_fallback: Literal["generate", "not_found"] = "generate"
    #: Which served models answer with a recorded model's texts: ``{"<recorded name>": ["<served model>", ...]}``
    #: (a single name is a list of one). A recorded name not mapped serves under its own name.
    replay_models: dict[str, list[str]] = Field(default_factory=dict)
    #: Whether a replayed answer carries log-probabilities computed as for generated text (True), or none
    #: (False: what the recorded files hold, so a scorer judges the answer exactly as recorded).
    replay_logprobs: bool = True

    #: A request with neither ``seed`` nor ``temperature`` is deterministic per conversation (False, what
    #: the pipeline tests rely on) or sampled at OpenAI's default temperature 1, varying per call (True).
    vary_unseeded: bool = False

    log_level: str = "warning"
    access_log: bool = False
    #: Seconds uvicorn waits for in-flight requests on SIGTERM before cancelling them (hung timeouts).
    graceful_shutdown_s: int = Field(default=5, ge=0)
    #: Young-generation garbage-collection threshold, start-up objects frozen (0: Python's defaults;
    #: see ``modelyard_core.runtime.tune_gc``).
    gc_gen0_threshold: int = Field(default=DEFAULT_GEN0_THRESHOLD, ge=0)

    _resolved: dict[str, ModelKnobs] = PrivateAttr(default_factory=dict)

    @field_validator("replay_models", mode="before")
    @classmethod
    def _one_name_is_a_list(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _resolve(self) -> SimulatorConfig:
        self._resolved = resolve_models(self)
        return self

    def resolved_models(self) -> dict[str, ModelKnobs]:
        """Every served model with its knobs after the three layers (validated at construction)."""
        return dict(self._resolved)


def resolve_models(config: SimulatorConfig) -> dict[str, ModelKnobs]:
    kinds: dict[str, ModelKind] = {}
    vision: dict[str, bool] = {}
    if config.include_pricing_models:
        priced = _pricing_models(config.pricing_file)
        kinds.update({m: kind for m, (kind, _) in priced.items()})
        vision.update({m: reads for m, (_, reads) in priced.items()})
    kinds.update(BUILTIN_MODELS)
    for name, patch in config.models.items():
        kinds[name] = patch.get("kind", kinds.get(name, "llm"))
    resolved: dict[str, ModelKnobs] = {}
    for name, kind in kinds.items():
        if kind not in KIND_DEFAULTS:
            raise ValueError(f"model {name!r}: kind must be one of {sorted(KIND_DEFAULTS)}, not {kind!r}")
        defaults = {**KIND_DEFAULTS[kind], **({"vision": vision[name]} if name in vision else {})}
        knobs = ModelKnobs.model_validate(defaults).patched(config.all_models)
        resolved[name] = knobs.patched(config.models.get(name, {}))
    return resolved
