"""Live tokens: the deltas of a streamed model call, in batches, to the asker's partition of ``queries.streams``.

A query streams live only when its answer is final: it names a ``stream_to`` and either no higher class
may be tried (a pinned class or model, a policy without escalation, the top of the cascade) or it runs on
the LLM pool. An SLM answer that may still escalate is never streamed: the cascade judges it whole first.

Batching keeps the record count down without delaying the first token: a delta that arrives when the
last batch left more than ``flush_s`` ago goes out at once (always the first one); later ones are held
until ``flush_s`` after the last batch or until ``max_deltas`` are waiting. Batches are numbered
(``seq``) and sent in order. They are a fast path, not the record: a batch that cannot be sent is
logged and dropped, and the asker completes its stream from the query's outcome.
"""

from __future__ import annotations

import asyncio
import logging

from modelyard_core.bus import Bus, Delivery, Outgoing
from modelyard_events import ChoiceDelta, QueryChunk, QueryRouted, new_id

from . import metrics

log = logging.getLogger(__name__)


class ChunkStream:
    """The batches of one model call of one query."""

    def __init__(self, bus: Bus, d: Delivery[QueryRouted], *, flush_s: float, max_deltas: int) -> None:
        r = d.event
        assert r.request.stream_to is not None
        self.bus = bus
        self.cause = d
        self.query = r
        self.partition = r.request.stream_to.partition
        self.topic = bus.topics.name("streams")
        self.flush_s = flush_s
        self.max_deltas = max_deltas
        self.run = new_id()
        self.seq = 0
        self._buffer: list[ChoiceDelta] = []
        self._loop = asyncio.get_running_loop()
        self._last_flush = float("-inf")
        self._timer: asyncio.TimerHandle | None = None
        self._sending: asyncio.Task | None = None
        self._acks: list[asyncio.Future] = []

    @property
    def started(self) -> bool:
        """Some deltas went out: the asker has part of this call's answer."""
        return self.seq > 0

    def add(self, deltas: list[ChoiceDelta]) -> None:
        self._buffer.extend(deltas)
        due = self._last_flush + self.flush_s
        if len(self._buffer) >= self.max_deltas or self._loop.time() >= due:
            self._flush()
        elif self._timer is None:
            self._timer = self._loop.call_at(due, self._flush)

    def _flush(self, done: bool = False) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buffer and not (done and self.started):
            return
        r = self.query
        batch = QueryChunk(tenant_id=r.tenant_id, query_id=r.query_id, run=self.run, seq=self.seq,
                           model=r.decision.model, model_class=r.decision.model_class, deltas=self._buffer, done=done)
        self.seq += 1
        self._buffer = []
        self._last_flush = self._loop.time()
        metrics.STREAM_BATCHES.inc()
        self._sending = asyncio.ensure_future(self._send(self._sending, batch))

    async def _send(self, previous: asyncio.Task | None, batch: QueryChunk) -> None:
        if previous is not None:
            await previous  # in order: a batch is handed to the producer after the one before it
        try:
            out = Outgoing(self.topic, batch, key=batch.tenant_id, cause=self.cause, partition=self.partition)
            self._acks.append(await self.bus.send(out))
        except Exception as exc:  # noqa: BLE001 - the outcome still carries the whole answer
            log.warning("stream batch %d of query %s not sent: %r", batch.seq, batch.query_id, exc)

    async def close(self) -> None:
        """Send what is left (marked ``done``) and wait until the broker has every batch."""
        self._flush(done=True)
        if self._sending is not None:
            await self._sending
        for result in await asyncio.gather(*self._acks, return_exceptions=True):
            if isinstance(result, BaseException):
                log.warning("a stream batch of query %s was not acknowledged: %r", self.query.query_id, result)
