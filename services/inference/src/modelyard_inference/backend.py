"""An OpenAI-compatible backend with bounded, jittered retries and a circuit breaker."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass

import openai
from openai import AsyncOpenAI

from .settings import InferenceSettings

log = logging.getLogger(__name__)

#: Failures worth another try: the same request may well succeed a moment later.
RETRYABLE = (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)


class BackendUnavailable(Exception):
    """The call failed after its retries, or the circuit is open."""


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    finish_reason: str | None
    input_tokens: int
    output_tokens: int
    logprobs: list[float] | None
    latency_ms: float


class CircuitBreaker:
    """Opens after N consecutive failures; while open, calls fail fast; one trial call after the reset time."""

    def __init__(self, failures: int, reset_s: float) -> None:
        self.threshold = failures
        self.reset_s = reset_s
        self.consecutive = 0
        self.opened_at: float | None = None

    def allow(self) -> bool:
        if self.opened_at is None:
            return True
        if time.monotonic() - self.opened_at >= self.reset_s:
            self.opened_at = time.monotonic()  # half-open: let this caller try, hold the others back
            return True
        return False

    def success(self) -> None:
        self.consecutive = 0
        self.opened_at = None

    def failure(self) -> None:
        self.consecutive += 1
        if self.consecutive >= self.threshold and self.opened_at is None:
            self.opened_at = time.monotonic()
            log.warning("circuit opened after %d consecutive failures", self.consecutive)

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None


class Backend:
    def __init__(self, settings: InferenceSettings, client: AsyncOpenAI | None = None) -> None:
        self.settings = settings
        self.client = client or AsyncOpenAI(
            base_url=settings.backend_base_url,
            api_key=settings.backend_api_key,
            timeout=settings.backend_timeout_s,
            max_retries=0,  # retries are ours: bounded, jittered, and visible to the circuit breaker
        )
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_reset_s)

    async def complete(self, model: str, messages: list[dict]) -> Completion:
        s = self.settings
        delay = s.backend_backoff_s
        last: Exception | None = None
        for attempt in range(1, s.backend_attempts + 1):
            if not self.breaker.allow():
                raise BackendUnavailable(f"circuit open for {s.backend_base_url} ({last or 'recent failures'})")
            started = time.perf_counter()
            try:
                resp = await self.client.chat.completions.create(
                    model=model,
                    messages=messages,
                    max_tokens=s.max_output_tokens,
                    logprobs=s.request_logprobs or None,
                )
            except RETRYABLE as exc:
                self.breaker.failure()
                last = exc
                if attempt < s.backend_attempts:
                    await asyncio.sleep(delay * (0.5 + random.random()))
                    delay *= 2
                continue
            except openai.APIStatusError as exc:
                # 4xx other than 429: the request itself is wrong; retrying cannot help.
                raise BackendUnavailable(f"{model}: HTTP {exc.status_code}: {exc.message}") from exc
            self.breaker.success()
            choice = resp.choices[0]
            logprobs = None
            if choice.logprobs is not None and choice.logprobs.content:
                logprobs = [t.logprob for t in choice.logprobs.content]
            usage = resp.usage
            return Completion(
                text=choice.message.content or "",
                finish_reason=choice.finish_reason,
                input_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.completion_tokens if usage else 0,
                logprobs=logprobs,
                latency_ms=(time.perf_counter() - started) * 1000,
            )
        raise BackendUnavailable(f"{model}: failed after {s.backend_attempts} attempts: {type(last).__name__}: {last}")

    async def close(self) -> None:
        await self.client.close()
