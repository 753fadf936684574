"""The ingress's one job: submit a chat request as a query, wait for its outcome, return it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka.errors import KafkaError
from modelyard_core.bus import Bus
from modelyard_core.pricing import PricingTable
from modelyard_events import QueryOutcome, QuerySubmitted, new_id

from . import metrics
from .errors import OpenAIError, bad_request
from .protocol import ChatCompletionRequest, outcome_error, timeout_error, to_submitted
from .replies import PendingOutcomes, TooManyWaiting

log = logging.getLogger(__name__)


async def _always_ready() -> None:
    """A reader that never pauses: nothing to wait for."""

TIMEOUT_HEADER = "x-modelyard-timeout"

#: Metric label of an answer by its HTTP status.
_RESULTS = {400: "invalid", 404: "invalid", 403: "rejected", 429: "rejected", 502: "failed", 503: "unavailable", 504: "timeout"}


@dataclass
class Ingress:
    bus: Bus
    pending: PendingOutcomes
    pricing: PricingTable
    submitted_topic: str
    timeout_s: float
    #: Awaited before a query is published: the outcome reader is positioned to see its outcome
    #: (``OutcomeListener.ready``: resumes a reader paused while nobody waited).
    outcomes_ready: Callable[[], Awaitable[None]] = _always_ready

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
            metrics.REQUESTS.labels(result).inc()
            metrics.SECONDS.labels(result).observe(time.perf_counter() - started)

    async def _submit_and_wait(self, event: QuerySubmitted, timeout_s: float) -> QueryOutcome:
        query_id = event.query_id
        try:
            future = self.pending.expect(query_id)  # before publishing: the outcome cannot arrive unexpected
        except TooManyWaiting as exc:
            raise OpenAIError(503, f"the ingress is at capacity ({exc}); try again shortly", type="server_error",
                              code="overloaded", retry=True, headers={"Retry-After": "1"}) from None
        metrics.WAITING.inc()
        try:
            async with asyncio.timeout(timeout_s):
                try:
                    await self.outcomes_ready()
                    await self.bus.publish_one(self.submitted_topic, event, key=event.tenant_id)
                except KafkaError as exc:
                    log.warning("could not submit query %s: %r", query_id, exc)
                    raise OpenAIError(503, "the query could not be submitted (message broker unavailable)",
                                      type="server_error", code="unavailable", retry=False, query_id=query_id) from None
                outcome = await future
        except TimeoutError:
            raise timeout_error(query_id, timeout_s) from None
        finally:
            self.pending.forget(query_id)
            metrics.WAITING.dec()
        return outcome
