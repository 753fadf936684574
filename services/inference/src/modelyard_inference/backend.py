"""An OpenAI-compatible model backend: bounded jittered retries, a circuit breaker per model, two HTTP clients.

Why the call looks the way it does (measured with ``modelyard bench inference-sdk`` and ``bench pipeline``,
see docs/benchmarks.md): ``chat.completions.create`` spends most of a worker's CPU in the SDK, not in the
model. So the body is encoded once with orjson (``completions.request_body``), the answer decoded with
orjson straight into a ``Completion``, and the HTTP call in between is made by the client
``backend_client`` names (``clients``): ``lean``, one aiohttp session and nothing else (the default), or
``openai``, the SDK's generic ``post`` on its aiohttp transport. Both raise errors of the same shape; the
SDK's own retries are off: ours are bounded, jittered, honour ``Retry-After`` and are visible to the
circuit breaker.

A model that refuses the request itself (400, 413, 422: a parameter it does not support, a tool schema it
cannot read) raises ``BackendRejected`` with the model's own error: the request is wrong, not the backend,
so it is neither retried nor counted against the circuit, and the caller gets that error back.

``stream`` makes the same call with ``stream: true`` and hands each chunk's deltas to a callback as they
arrive (the worker forwards them to the asker). Until the first delta, a failed attempt is retried like
any other; after it, the call has failed (what was already forwarded cannot be taken back).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import openai
import orjson
from modelyard_events import ChoiceDelta, Generation, ModelError
from openai import AsyncOpenAI

from . import metrics
from .breaker import CircuitBreaker, Permit, Result, State
from .clients import ConnectionFailed, ModelClient, SdkClient, StatusFailure, make_client
from .completions import (
    Completion,
    MalformedResponse,
    StreamError,
    StreamFold,
    caller_wants_logprobs,
    parse_completion,
    request_body,
    sse_events,
)
from .settings import InferenceSettings

__all__ = ["Backend", "BackendRejected", "BackendUnavailable", "CircuitBreaker", "Completion", "MalformedResponse",
           "Permit", "Result", "State", "classify", "parse_completion"]

log = logging.getLogger(__name__)

#: Statuses worth another try: the same request may well succeed a moment later (OpenAI's SDK retries
#: the same ones when its own retries are on).
RETRY_STATUSES = frozenset({408, 409, 429})


class BackendUnavailable(Exception):
    """The call failed after its retries, was not worth retrying, or the model's circuit is open."""

    def __init__(self, message: str, *, attempts: int, elapsed_ms: float, circuit_open: bool = False) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.elapsed_ms = elapsed_ms
        self.circuit_open = circuit_open


class BackendRejected(BackendUnavailable):
    """The model refused the request (400, 413, 422): ``error`` is what it said, for the caller."""

    def __init__(self, message: str, *, error: ModelError, attempts: int, elapsed_ms: float) -> None:
        super().__init__(message, attempts=attempts, elapsed_ms=elapsed_ms)
        self.error = error


class StreamBroken(Exception):
    """A streamed call failed after its first delta was forwarded: it cannot be retried."""


#: Statuses by which a model refuses the request itself (as opposed to being unable to answer it).
REJECTION_STATUSES = frozenset({400, 413, 422})


@dataclass(frozen=True, slots=True)
class Failure:
    """What one failed attempt says about the backend."""

    kind: str  # timeout | connection | status | rejected | stream | malformed
    retryable: bool
    #: True when the backend itself misbehaved (counts towards opening its circuit); a 400 does not
    backend_fault: bool
    detail: str
    retry_after_s: float | None = None


def classify(exc: BaseException) -> Failure | None:
    """Timeouts, connection errors, 408/409/429 and 5xx are retried; other 4xx are not. None: not a backend failure."""
    if isinstance(exc, (TimeoutError, openai.APITimeoutError)):
        return Failure("timeout", True, True, "timed out")
    if isinstance(exc, (openai.APIConnectionError, ConnectionFailed)):
        return Failure("connection", True, True, f"connection failed: {exc}")
    if isinstance(exc, (openai.APIStatusError, StatusFailure)):
        status = exc.status_code
        retryable = status in RETRY_STATUSES or status >= 500
        detail = f"HTTP {status}: {_error_message(exc)}"
        # A 4xx other than 408/409/429 means the backend is up and our request is wrong.
        kind = "rejected" if status in REJECTION_STATUSES else "status"
        headers = exc.headers if isinstance(exc, StatusFailure) else exc.response.headers if exc.response is not None else None
        return Failure(kind, retryable, retryable, detail, _retry_after(headers) if retryable else None)
    if isinstance(exc, StreamError):  # an error event before the first token: as a 5xx would be
        return Failure("stream", True, True, f"error event: {exc}")
    if isinstance(exc, MalformedResponse):
        return Failure("malformed", False, True, f"malformed response: {exc}")
    return None


def model_error(exc: openai.APIStatusError | StatusFailure) -> ModelError:
    """The model's own error of a rejected request (OpenAI's error shape, or what the body says)."""
    body = exc.body if isinstance(exc.body, dict) else {}
    inner = body.get("error", body)
    inner = inner if isinstance(inner, dict) else {}

    def field(name: str, limit: int) -> str | None:
        value = inner.get(name)
        return str(value)[:limit] if value is not None else None

    return ModelError(status=exc.status_code, message=field("message", 2000) or _error_message(exc),
                      type=field("type", 64), code=field("code", 64), param=field("param", 256))


def _error_message(exc: openai.APIStatusError | StatusFailure) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"][:300]
    return str(exc.message)[:300]


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """``retry-after-ms`` or ``retry-after`` (seconds) of a 429/503, when the backend sent one."""
    if headers is None:
        return None
    for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(header)
        if raw is None:
            continue
        try:
            value = float(raw) * scale
        except ValueError:
            continue  # an HTTP date: rare from model servers; our own backoff applies
        if value >= 0:
            return value
    return None


# --------------------------------------------------------------------------------------------------
# Backend


class Backend:
    def __init__(self, settings: InferenceSettings, client: AsyncOpenAI | ModelClient | None = None) -> None:
        """``client``: an SDK client (tests give one on an in-process transport), any ``ModelClient``, or
        None for the one ``settings.backend_client`` names."""
        self.settings = settings
        self.client: ModelClient = SdkClient(client) if isinstance(client, AsyncOpenAI) else client or make_client(settings)
        self.breakers: dict[str, CircuitBreaker] = {}

    def breaker(self, model: str) -> CircuitBreaker:
        """One circuit per model: on a shared endpoint one broken deployment must not cut off the others."""
        b = self.breakers.get(model)
        if b is None:
            s = self.settings
            b = self.breakers[model] = CircuitBreaker(model, s.breaker_failures, s.breaker_reset_s)
        return b

    def _body(self, model: str, messages: list[dict[str, Any]], generation: Generation | None, *,
              stream: bool = False) -> bytes:
        s = self.settings
        return orjson.dumps(request_body(s.backend_models.get(model, model), messages, generation,
                                         max_output_tokens=s.max_output_tokens, request_logprobs=s.request_logprobs,
                                         stream=stream))

    async def complete(self, model: str, messages: list[dict[str, Any]], generation: Generation | None = None) -> Completion:
        """Answer ``messages`` with ``model`` and the caller's ``generation`` parameters; BackendUnavailable
        when the model cannot, BackendRejected when it refuses the request."""
        content = self._body(model, messages, generation)
        keep = caller_wants_logprobs(generation)

        async def attempt() -> Completion:
            return parse_completion(await self.client.post(content), keep_logprobs=keep)

        return await self._call(model, attempt)

    async def stream(self, model: str, messages: list[dict[str, Any]], generation: Generation | None,
                     forward: Callable[[list[ChoiceDelta]], Awaitable[None] | None]) -> Completion:
        """``complete`` with ``stream: true``: each chunk's deltas go to ``forward`` as they arrive.

        The body streams raw through the client (the SDK's raw-response mode, or the lean client's lines)
        and each event is read with orjson: the SDK's own stream class decodes every event in pure Python,
        which at hundreds of tokens a second is most of a worker's CPU."""
        content = self._body(model, messages, generation, stream=True)
        keep = caller_wants_logprobs(generation)

        async def attempt() -> Completion:
            fold = StreamFold(keep_logprobs=keep)
            forwarded = False
            async with self.client.stream(content) as lines:
                try:
                    async for event in sse_events(lines):
                        if deltas := fold.add(event):
                            pending = forward(deltas)
                            forwarded = True
                            if pending is not None:
                                await pending
                except Exception as exc:
                    if forwarded:
                        raise StreamBroken(f"the stream broke after its first tokens: {type(exc).__name__}: {exc}"[:300]) from exc
                    raise
            return fold.completion()

        return await self._call(model, attempt)

    async def _call(self, model: str, attempt_once: Callable[[], Awaitable[Completion]]) -> Completion:
        """One model call: attempts under the circuit breaker, retried with jittered backoff where worth it."""
        s = self.settings
        breaker = self.breaker(model)
        started = time.perf_counter()
        delay = s.backend_backoff_s
        last = ""
        for attempt in range(1, s.backend_attempts + 1):
            permit = breaker.acquire()
            if permit is None:
                raise BackendUnavailable(
                    f"{model}: circuit open after repeated failures" + (f" (last: {last})" if last else ""),
                    attempts=attempt - 1, elapsed_ms=_ms_since(started), circuit_open=True,
                )
            attempt_started = time.perf_counter()
            try:
                async with asyncio.timeout(s.backend_timeout_s):
                    completion = await attempt_once()
            except asyncio.CancelledError:
                breaker.record(permit, Result.ABANDONED)
                raise
            except StreamBroken as exc:
                breaker.record(permit, Result.FAILED)
                metrics.ATTEMPT_FAILURES.labels(model, "stream").inc()
                raise BackendUnavailable(f"{model}: {exc}", attempts=attempt, elapsed_ms=_ms_since(started)) from exc
            except Exception as exc:
                failure = classify(exc)
                if failure is None:
                    breaker.record(permit, Result.ABANDONED)
                    raise  # not the backend's doing: the worker turns it into a failed call
                # recorded before any backoff, so a failed trial re-opens the circuit at once
                breaker.record(permit, Result.FAILED if failure.backend_fault else Result.OK)
                last = failure.detail
                metrics.ATTEMPT_FAILURES.labels(model, failure.kind).inc()
                if failure.kind == "rejected" and isinstance(exc, (openai.APIStatusError, StatusFailure)):
                    raise BackendRejected(f"{model} refused the request: {failure.detail}", error=model_error(exc),
                                          attempts=attempt, elapsed_ms=_ms_since(started)) from exc
                if not failure.retryable:
                    raise BackendUnavailable(
                        f"{model}: {failure.detail}", attempts=attempt, elapsed_ms=_ms_since(started)
                    ) from exc
                if attempt < s.backend_attempts:
                    await asyncio.sleep(self._backoff(delay, failure.retry_after_s))
                    delay *= 2
                continue
            breaker.record(permit, Result.OK)
            return completion.with_timing(_ms_since(attempt_started), attempt)
        raise BackendUnavailable(
            f"{model}: failed after {s.backend_attempts} attempts (last: {last})",
            attempts=s.backend_attempts, elapsed_ms=_ms_since(started),
        )

    def _backoff(self, delay: float, retry_after: float | None) -> float:
        jittered = delay * (0.5 + random.random())  # spread retries of many calls that failed together
        if retry_after is not None:
            jittered = max(jittered, retry_after)
        return min(jittered, self.settings.backend_backoff_max_s)

    async def warm_up(self) -> None:
        """One cheap request at start-up: the SDK's one-off set-up (it probes the platform in a thread on its
        first request) and the first connection happen now, not for a whole first batch at once. Best effort:
        a backend that is down at start-up is the breaker's business, not a reason not to start."""
        try:
            async with asyncio.timeout(min(self.settings.backend_timeout_s, 5.0)):
                await self.client.probe()
        except Exception as exc:  # noqa: BLE001
            log.warning("backend %s did not answer the warm-up request: %r", self.settings.backend_base_url, exc)

    async def close(self) -> None:
        await self.client.close()


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000

