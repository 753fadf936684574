"""An OpenAI-compatible model backend: the openai SDK, bounded jittered retries, a circuit breaker per model.

Why the call looks the way it does (measured with ``modelyard bench inference-sdk``, see docs/benchmarks.md):
``chat.completions.create`` spends most of a worker's CPU in the SDK, not in the model — a typed
request-body transform on every call, pydantic models for every log-probability of the answer, and
httpx2's connection pool, which scans every pooled connection per request. So the backend

* runs the SDK on its aiohttp transport (``DefaultAioHttpClient``, the ``openai[aiohttp]`` extra), and
* sends the chat-completions body itself through the SDK's generic ``client.post`` (its documented way to
  call an endpoint without the typed layer), pre-encoded with orjson, and reads the JSON answer with
  orjson.

Base URL, API key, headers, timeouts and the mapping of HTTP errors to ``openai.APIStatusError`` and its
subclasses stay the SDK's. The SDK's own retries are off: ours are bounded, jittered, honour
``Retry-After`` and are visible to the circuit breaker.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import httpx2
import openai
import orjson
from openai import AsyncOpenAI, DefaultAioHttpClient, DefaultAsyncHttpxClient

from . import metrics
from .settings import InferenceSettings

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


class MalformedResponse(ValueError):
    """The backend answered 2xx with something that is not a chat completion."""


@dataclass(frozen=True, slots=True)
class Choice:
    """One completion of a call (a call asking for ``n`` of them returns n)."""

    text: str
    finish_reason: str | None
    logprobs: list[float] | None


@dataclass(frozen=True, slots=True)
class Completion:
    """A call's answer. ``text``, ``finish_reason`` and ``logprobs`` are its first choice's; the tokens count
    every choice (the prompt once, as OpenAI bills it)."""

    text: str
    finish_reason: str | None
    input_tokens: int
    output_tokens: int
    logprobs: list[float] | None
    #: the successful attempt only
    latency_ms: float
    attempts: int = 1
    #: every choice, in index order (one unless the call asked for several)
    choices: tuple[Choice, ...] = ()

    @property
    def samples(self) -> tuple[Choice, ...]:
        return self.choices or (Choice(self.text, self.finish_reason, self.logprobs),)


@dataclass(frozen=True, slots=True)
class Failure:
    """What one failed attempt says about the backend."""

    kind: str  # timeout | connection | status | malformed
    retryable: bool
    #: True when the backend itself misbehaved (counts towards opening its circuit); a 400 does not
    backend_fault: bool
    detail: str
    retry_after_s: float | None = None


def classify(exc: BaseException) -> Failure | None:
    """Timeouts, connection errors, 408/409/429 and 5xx are retried; other 4xx are not. None: not a backend failure."""
    if isinstance(exc, (TimeoutError, openai.APITimeoutError)):
        return Failure("timeout", True, True, "timed out")
    if isinstance(exc, openai.APIConnectionError):
        return Failure("connection", True, True, f"connection failed: {exc}")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retryable = status in RETRY_STATUSES or status >= 500
        detail = f"HTTP {status}: {_error_message(exc)}"
        # A 4xx other than 408/409/429 means the backend is up and our request is wrong.
        return Failure("status", retryable, retryable, detail, _retry_after(exc.response) if retryable else None)
    if isinstance(exc, MalformedResponse):
        return Failure("malformed", False, True, f"malformed response: {exc}")
    return None


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"][:300]
    return str(exc.message)[:300]


def _retry_after(response: httpx2.Response | None) -> float | None:
    """``retry-after-ms`` or ``retry-after`` (seconds) of a 429/503, when the backend sent one."""
    if response is None:
        return None
    for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = response.headers.get(header)
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
# Circuit breaker


class State(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Result(Enum):
    OK = "ok"
    FAILED = "failed"
    #: the attempt ended without a verdict on the backend (cancelled, or our own bug)
    ABANDONED = "abandoned"


@dataclass(frozen=True, slots=True)
class Permit:
    generation: int
    trial: bool


class CircuitBreaker:
    """Closed → open after ``failures`` consecutive failed attempts → after ``reset_s`` half-open.

    Half-open lets exactly ONE trial attempt through while every other caller fails fast; the trial's
    success closes the circuit, its failure opens it for another ``reset_s``. Attempts admitted before
    the circuit opened may finish later: their results belong to an older generation and change nothing.
    Single event loop: no lock needed, every transition happens between awaits.
    """

    def __init__(self, name: str, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.threshold = failures
        self.reset_s = reset_s
        self.clock = clock
        self.state = State.CLOSED
        self.consecutive = 0
        self.opened_at = 0.0
        self.generation = 0
        self._trial_out = False

    def acquire(self) -> Permit | None:
        """A permit to attempt a call, or None: fail fast."""
        if self.state is State.CLOSED:
            return Permit(self.generation, trial=False)
        if self.state is State.OPEN and self.clock() - self.opened_at >= self.reset_s:
            self._set(State.HALF_OPEN)
        if self.state is State.HALF_OPEN and not self._trial_out:
            self._trial_out = True
            return Permit(self.generation, trial=True)
        return None

    def record(self, permit: Permit, result: Result) -> None:
        if permit.trial:
            self._trial_out = False
            if result is Result.OK:
                self._close()
            elif result is Result.FAILED:
                self._open()
            # abandoned: stay half-open, the next caller becomes the trial
            return
        if permit.generation != self.generation or self.state is not State.CLOSED:
            return  # admitted before the circuit last opened: old news
        if result is Result.OK:
            self.consecutive = 0
        elif result is Result.FAILED:
            self.consecutive += 1
            if self.consecutive >= self.threshold:
                self._open()

    @property
    def is_open(self) -> bool:
        return self.state is not State.CLOSED

    def _open(self) -> None:
        self.opened_at = self.clock()
        self.generation += 1
        if self.state is not State.OPEN:
            log.warning("circuit of %s opened after %d consecutive failures", self.name, self.consecutive)
        self._set(State.OPEN)

    def _close(self) -> None:
        self.consecutive = 0
        self.generation += 1
        log.info("circuit of %s closed: trial call succeeded", self.name)
        self._set(State.CLOSED)

    def _set(self, state: State) -> None:
        self.state = state
        metrics.BREAKER_STATE.labels(self.name).set(list(State).index(state))


# --------------------------------------------------------------------------------------------------
# Backend


def make_client(settings: InferenceSettings, *, default_headers: dict[str, str] | None = None) -> AsyncOpenAI:
    """The pool's SDK client: one connection per call in flight, the SDK's retries off."""
    # The SDK's per-request timeout is a backstop; each attempt runs under our own total deadline.
    timeout = httpx2.Timeout(settings.backend_timeout_s + 1.0)
    limits = httpx2.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency)
    http_cls = DefaultAioHttpClient if settings.backend_transport == "aiohttp" else DefaultAsyncHttpxClient
    return AsyncOpenAI(
        base_url=settings.backend_base_url,
        api_key=settings.backend_api_key,
        timeout=timeout,
        max_retries=0,
        default_headers=default_headers,
        http_client=http_cls(timeout=timeout, limits=limits),
    )


_JSON = {"headers": {"Content-Type": "application/json"}}


def _choice(choice: dict) -> Choice:
    text = (choice.get("message") or {}).get("content") or ""
    logprobs = None
    if (lp := choice.get("logprobs")) and (entries := lp.get("content")):
        logprobs = [float(e["logprob"]) for e in entries]
    return Choice(text, choice.get("finish_reason"), logprobs)


def parse_completion(raw: bytes) -> tuple[tuple[Choice, ...], int, int]:
    """The choices (in index order), prompt tokens and completion tokens of a chat completion."""
    try:
        doc = orjson.loads(raw)
        listed = doc["choices"]
        choices = tuple(_choice(c) for c in sorted(listed, key=lambda c: c.get("index", 0)))
        if not choices:
            raise IndexError("no choices")
        usage = doc.get("usage") or {}
        return choices, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise MalformedResponse(f"{type(exc).__name__}: {exc}"[:200]) from None


class Backend:
    def __init__(self, settings: InferenceSettings, client: AsyncOpenAI | None = None) -> None:
        self.settings = settings
        self.client = client or make_client(settings)
        self.breakers: dict[str, CircuitBreaker] = {}

    def breaker(self, model: str) -> CircuitBreaker:
        """One circuit per model: on a shared endpoint one broken deployment must not cut off the others."""
        b = self.breakers.get(model)
        if b is None:
            s = self.settings
            b = self.breakers[model] = CircuitBreaker(model, s.breaker_failures, s.breaker_reset_s)
        return b

    async def complete(self, model: str, messages: list[dict[str, str]], *, samples: int = 1,
                       temperature: float | None = None) -> Completion:
        """Answer ``messages`` with ``model`` (``samples`` completions: OpenAI ``n``); BackendUnavailable when
        the model cannot."""
        s = self.settings
        breaker = self.breaker(model)
        body: dict = {"model": s.backend_models.get(model, model), "messages": messages, "max_tokens": s.max_output_tokens}
        if samples > 1:
            body["n"] = samples
        if temperature is not None:
            body["temperature"] = temperature
        if s.request_logprobs:
            body["logprobs"] = True
        content = orjson.dumps(body)
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
                    response = await self.client.post(
                        "/chat/completions", cast_to=httpx2.Response, content=content, options=_JSON,
                    )
                choices, tin, tout = parse_completion(response.content)
            except asyncio.CancelledError:
                breaker.record(permit, Result.ABANDONED)
                raise
            except Exception as exc:
                failure = classify(exc)
                if failure is None:
                    breaker.record(permit, Result.ABANDONED)
                    raise  # not the backend's doing: the worker turns it into a failed call
                # recorded before any backoff, so a failed trial re-opens the circuit at once
                breaker.record(permit, Result.FAILED if failure.backend_fault else Result.OK)
                last = failure.detail
                metrics.ATTEMPT_FAILURES.labels(model, failure.kind).inc()
                if not failure.retryable:
                    raise BackendUnavailable(
                        f"{model}: {failure.detail}", attempts=attempt, elapsed_ms=_ms_since(started)
                    ) from exc
                if attempt < s.backend_attempts:
                    await asyncio.sleep(self._backoff(delay, failure.retry_after_s))
                    delay *= 2
                continue
            breaker.record(permit, Result.OK)
            first = choices[0]
            return Completion(first.text, first.finish_reason, tin, tout, first.logprobs, _ms_since(attempt_started),
                              attempt, choices if len(choices) > 1 else ())
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
                await self.client.get("/models", cast_to=httpx2.Response)
        except Exception as exc:  # noqa: BLE001
            log.warning("backend %s did not answer the warm-up request: %r", self.settings.backend_base_url, exc)

    async def close(self) -> None:
        await self.client.close()


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000

