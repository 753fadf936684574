"""The ingress's one job: submit a chat request as a query, wait for its outcome (or stream it), return it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from modelyard_core.bus import Bus
from modelyard_core.pricing import PricingTable
from modelyard_events import QueryChunk, QueryOutcome, QuerySubmitted, StreamTo, new_id

from . import metrics
from .errors import OpenAIError, bad_request
from .protocol import ChatCompletionRequest, to_submitted
from .replies import PendingOutcomes, StreamItem, TooManyWaiting
from .responses import outcome_error, timeout_error
from .streaming import StreamRenderer, error_event

log = logging.getLogger(__name__)


async def _always_ready() -> None:
    """A reader that never pauses: nothing to wait for."""

TIMEOUT_HEADER = "x-modelyard-timeout"

#: Metric label of an answer by its HTTP status.
_RESULTS = {400: "invalid", 404: "invalid", 413: "invalid", 422: "invalid", 403: "rejected", 429: "rejected",
            502: "failed", 503: "unavailable", 504: "timeout"}


@dataclass
class _Ending:
    """How a stream ended, for the metrics: until it reaches its outcome, the caller went away."""

    result: str = "disconnected"
    closed: bool = False


@dataclass
class Stream:
    """A streamed answer whose first event has arrived (so the status is 200): its SSE bytes.

    ``close`` runs once, when the response ends for whatever reason (the outcome sent, a timeout, the
    caller gone): it forgets the waiter and counts the request."""

    first: bytes
    rest: AsyncIterator[bytes]
    close: Callable[[], None]

    async def events(self) -> AsyncIterator[bytes]:
        try:
            yield self.first
            async for part in self.rest:
                yield part
        finally:
            self.close()


@dataclass
class Ingress:
    bus: Bus
    pending: PendingOutcomes
    pricing: PricingTable
    submitted_topic: str
    timeout_s: float
    #: Awaited before a query is published: the outcome (and stream) readers are positioned to see its
    #: replies (``OutcomeListener.ready``: resumes a reader paused while nobody waited).
    outcomes_ready: Callable[[], Awaitable[None]] = _always_ready
    #: Where the workers stream the tokens of this instance's streamed queries (None: nothing streams
    #: live, a streamed request gets its answer when the outcome comes).
    stream_to: StreamTo | None = None

    def timeout_for(self, header: str | None) -> float:
        """The request's wait: ``X-Modelyard-Timeout`` seconds if given, never more than the setting."""
        if header is None:
            return self.timeout_s
        try:
            asked = float(header)
        except ValueError:
            asked = float("nan")
        if not asked > 0:
            raise bad_request("X-Modelyard-Timeout must be a positive number of seconds", param="X-Modelyard-Timeout")
        return min(asked, self.timeout_s)

    async def answer(self, body: ChatCompletionRequest, tenant_id: str, timeout_s: float) -> QueryOutcome:
        """Submit the request and return its completed outcome, or raise the ``OpenAIError`` to answer with."""
        started = time.perf_counter()
        result = "completed"
        try:
            event = to_submitted(body, tenant_id=tenant_id, query_id=new_id(), pricing=self.pricing)
            outcome = await self._submit_and_wait(event, timeout_s)
            error = outcome_error(outcome)
            if error is not None:
                raise error
            return outcome
        except OpenAIError as exc:
            result = _RESULTS.get(exc.status, "error")
            raise
        finally:
            _count(result, started)

    async def stream(self, body: ChatCompletionRequest, tenant_id: str, timeout_s: float) -> tuple[str, Stream]:
        """Submit a streamed request; return ``(query_id, stream)`` once its first event arrived (within
        ``timeout_s``), or raise the ``OpenAIError`` to answer with (a rejection, the model's 400, a timeout
        before anything came)."""
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            event = to_submitted(body, tenant_id=tenant_id, query_id=new_id(), pricing=self.pricing, stream_to=self.stream_to)
        except OpenAIError as exc:
            _count(_RESULTS.get(exc.status, "error"), started)
            raise
        query_id = event.query_id
        queue = self._register(query_id, stream=True)
        ending = _Ending()

        def close() -> None:
            if not ending.closed:
                ending.closed = True
                self._forget(query_id)
                _count(ending.result, started)

        try:
            await self._publish(event, deadline - loop.time())
            first = await _next(queue, deadline - loop.time())
        except TimeoutError:
            ending.result = "timeout"
            close()
            raise timeout_error(query_id, timeout_s) from None
        except OpenAIError as exc:
            ending.result = _RESULTS.get(exc.status, "error")
            close()
            raise
        except BaseException:
            close()
            raise
        if isinstance(first, QueryOutcome) and (error := outcome_error(first)) is not None:
            ending.result = _RESULTS.get(error.status, "error")
            close()
            raise error
        metrics.FIRST_CHUNK_SECONDS.observe(time.perf_counter() - started)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        renderer = StreamRenderer(query_id, include_usage=include_usage)
        rest = self._rest(renderer, queue, first, timeout_s, ending)
        return query_id, Stream(self._render(renderer, first), rest, close)

    @staticmethod
    def _render(renderer: StreamRenderer, item: StreamItem) -> bytes:
        return renderer.chunk(item) if isinstance(item, QueryChunk) else renderer.finish(item)

    async def _rest(self, renderer: StreamRenderer, queue: asyncio.Queue[StreamItem], item: StreamItem,
                    timeout_s: float, ending: _Ending) -> AsyncIterator[bytes]:
        """Everything after the first event, until the outcome ends the stream. The timeout now bounds each
        wait for the next event (a long answer may take longer than it to generate, a silent one may not).
        A caller that goes away ends it too; the query still completes, and is metered."""
        while not isinstance(item, QueryOutcome):
            try:
                item = await _next(queue, timeout_s)
            except TimeoutError:
                ending.result = "timeout"
                yield error_event(timeout_error(item.query_id, timeout_s))
                return
            if part := self._render(renderer, item):
                yield part
        ending.result = "completed" if outcome_error(item) is None else "failed"

    def _register(self, query_id: str, *, stream: bool) -> asyncio.Future[QueryOutcome] | asyncio.Queue[StreamItem]:
        """Before publishing: the outcome cannot arrive unexpected."""
        try:
            waiter = self.pending.expect_stream(query_id) if stream else self.pending.expect(query_id)
        except TooManyWaiting as exc:
            raise OpenAIError(503, f"the ingress is at capacity ({exc}); try again shortly", type="server_error",
                              code="overloaded", retry=True, headers={"Retry-After": "1"}) from None
        metrics.WAITING.inc()
        return waiter

    def _forget(self, query_id: str) -> None:
        self.pending.forget(query_id)
        metrics.WAITING.dec()

    async def _publish(self, event: QuerySubmitted, timeout_s: float) -> None:
        query_id = event.query_id
        try:
            async with asyncio.timeout(timeout_s):
                await self.outcomes_ready()
                await self.bus.publish_one(self.submitted_topic, event, key=event.tenant_id)
        except MessageSizeTooLargeError:
            raise OpenAIError(413, "the request is larger than a query may be on the message bus", code="payload_too_large",
                              param="messages", retry=False) from None
        except KafkaError as exc:
            log.warning("could not submit query %s: %r", query_id, exc)
            raise OpenAIError(503, "the query could not be submitted (message broker unavailable)",
                              type="server_error", code="unavailable", retry=False, query_id=query_id) from None

    async def _submit_and_wait(self, event: QuerySubmitted, timeout_s: float) -> QueryOutcome:
        query_id = event.query_id
        future = self._register(query_id, stream=False)
        try:
            async with asyncio.timeout(timeout_s):
                await self._publish(event, timeout_s)
                outcome = await future
        except TimeoutError:
            raise timeout_error(query_id, timeout_s) from None
        finally:
            self._forget(query_id)
        return outcome


async def _next(queue: asyncio.Queue[StreamItem], timeout_s: float) -> StreamItem:
    if timeout_s <= 0:
        raise TimeoutError
    async with asyncio.timeout(timeout_s):
        return await queue.get()


def _count(result: str, started: float) -> None:
    metrics.REQUESTS.labels(result).inc()
    metrics.SECONDS.labels(result).observe(time.perf_counter() - started)
