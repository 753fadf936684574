from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, FilePath

from modelyard_core.settings import Settings


class CascadeSettings(BaseModel):
    """How answers are judged (``modelyard_inference.answers``)."""

    #: The answer scorer's model file (written by ``modelyard train-scorer``); unset: the shipped default.
    #: ``MODELYARD_CASCADE__SCORER``; a file that does not load stops the worker at start-up.
    scorer: FilePath | None = None


class InferenceSettings(Settings):
    """One inference pool. Each pool is its own deployment, so its backend is configured by its own env."""

    pool: Literal["slm", "llm"] = "slm"
    backend_base_url: str = "http://127.0.0.1:8090/v1"
    backend_api_key: str = "simulator"
    #: Model names as the backend knows them, by the priced name the router chose
    #: (e.g. ``{"gpt-4o-mini": "meta-llama/Llama-3.1-8B-Instruct"}`` for a vLLM pool). Usage keeps the priced name.
    backend_models: dict[str, str] = Field(default_factory=dict)
    #: The HTTP client of a model call (``clients``): ``lean`` — one aiohttp connection pool, no SDK in the
    #: request path — or ``openai``, the SDK's ``post``. Same retries, deadlines, circuit and error mapping;
    #: lean costs less CPU per call (docs/benchmarks.md, issue 22). ``MODELYARD_BACKEND_CLIENT``, or
    #: ``MODELYARD_BACKEND__CLIENT`` as issue 22 names it.
    backend_client: Literal["lean", "openai"] = Field(
        default="lean",
        validation_alias=AliasChoices("backend_client", "MODELYARD_BACKEND_CLIENT", "MODELYARD_BACKEND__CLIENT"))
    #: HTTP layer under the openai SDK (``backend_client=openai`` only): aiohttp costs about half the client CPU per call of the default httpx2
    #: (see docs/benchmarks.md); httpx is kept for backends that need an httpx-only feature.
    backend_transport: Literal["aiohttp", "httpx"] = "aiohttp"
    backend_timeout_s: float = Field(default=30.0, gt=0, description="Deadline of one attempt, connect to last byte.")
    #: Tries of one model call on timeouts, connection errors, 408/409/429 and 5xx before the call counts as failed.
    backend_attempts: int = Field(default=3, ge=1, le=10)
    backend_backoff_s: float = Field(default=0.2, ge=0, description="First retry delay; doubles, with jitter.")
    backend_backoff_max_s: float = Field(default=5.0, ge=0, description="Cap of one retry delay, Retry-After included.")
    #: Consecutive failed attempts on one model that open its circuit. High enough that a backend failing
    #: half its calls stays usable through retries (20 in a row at 50% is one in a million), low enough
    #: that a dead backend is cut off after a fraction of one batch.
    breaker_failures: int = Field(default=20, ge=1)
    breaker_reset_s: float = Field(default=10.0, gt=0, description="How long an open circuit fails fast before one trial.")
    #: Queries in progress per worker process (records taken from Kafka and not finished), and so the most
    #: model calls in flight at once.
    concurrency: int = Field(default=512, ge=1)
    #: Publish the events of records that finish while an earlier group awaits its acknowledgements as one
    #: group (one send and acknowledgement wait per group, see ``pipeline``); False: each record on its own
    #: (the behaviour before issue 22, kept to measure against).
    publish_together: bool = True
    #: ``max_tokens`` of a call whose request set neither it nor ``max_completion_tokens``.
    max_output_tokens: int = Field(default=512, ge=1)
    request_logprobs: bool = True
    #: Shadow evaluation: two long free-text answers agree when their content words overlap (Jaccard) this much.
    shadow_similarity: float = Field(default=0.5, ge=0, le=1)
    #: Live tokens of a streamed final route: a delta that comes more than this long after the last batch
    #: goes out at once (the first always does), later ones wait at most this long (``streams``). 50 ms
    #: batches about three tokens of a 60 tokens/s model: a third of the records and of the worker's and
    #: the ingress's CPU per token of 5 ms, at no cost to the first token (docs/benchmarks.md, issue 19).
    stream_flush_ms: float = Field(default=50.0, ge=0, le=1_000)
    #: ... or until this many deltas are waiting.
    stream_max_deltas: int = Field(default=32, ge=1)
    #: Tenants' own endpoints (bring your own model): each gets a backend of its own with these limits, so
    #: a slow or broken one holds few slots and opens its own circuit quickly.
    tenant_endpoint_concurrency: int = Field(default=64, ge=1)
    tenant_endpoint_attempts: int = Field(default=2, ge=1, le=10)
    tenant_endpoint_timeout_s: float = Field(default=30.0, gt=0)
    tenant_endpoint_breaker_failures: int = Field(default=5, ge=1)
    #: A query names an agent the local view has not seen yet: wait this long for the view to catch up.
    agent_sync_timeout_s: float = Field(default=1.0, ge=0)
    cascade: CascadeSettings = Field(default_factory=CascadeSettings)

    @property
    def group_id(self) -> str:
        return f"modelyard-inference-{self.pool}"
