from typing import Literal

from pydantic import Field

from modelyard_core.settings import Settings


class InferenceSettings(Settings):
    """One inference pool. Each pool is its own deployment, so its backend is configured by its own env."""

    pool: Literal["slm", "llm"] = "slm"
    backend_base_url: str = "http://127.0.0.1:8090/v1"
    backend_api_key: str = "simulator"
    backend_timeout_s: float = Field(default=30.0, gt=0)
    #: Tries of one model call on timeouts, 429 and 5xx before the call counts as failed.
    backend_attempts: int = Field(default=3, ge=1, le=10)
    backend_backoff_s: float = Field(default=0.2, ge=0, description="First retry delay; doubles, with jitter.")
    breaker_failures: int = Field(default=5, ge=1, description="Consecutive failures that open the circuit.")
    breaker_reset_s: float = Field(default=10.0, gt=0, description="How long an open circuit fails fast.")
    #: Model calls in flight per worker process; also the most records taken from Kafka per batch.
    concurrency: int = Field(default=512, ge=1)
    max_output_tokens: int = Field(default=512, ge=1)
    request_logprobs: bool = True

    @property
    def group_id(self) -> str:
        return f"modelyard-inference-{self.pool}"
