"""The envelope of every event on the bus: encoding an event into a record, decoding a record into an event.

A record's value is the event's JSON; its headers are binary-mode CloudEvents attributes plus the
W3C trace context. Decoding validates one record at a time and says why a record cannot be used
(``Rejected``), so that a bad record is dead-lettered and the rest of its batch goes on.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from aiokafka import ConsumerRecord
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider as _SdkTracerProvider
from opentelemetry.trace import Span, SpanKind
from pydantic import BaseModel, ValidationError

from modelyard_events import Model

tracer = trace.get_tracer("modelyard.bus")

E = TypeVar("E", bound=BaseModel)


def encode(event: Model, source: str) -> tuple[bytes, dict[str, str]]:
    """Serialise an event: JSON body plus binary-mode CloudEvents headers and W3C trace context."""
    body = event.model_dump_json().encode()
    headers = {"content-type": "application/json", "ce_specversion": "1.0", "ce_source": f"modelyard/{source}"}
    event_id = getattr(event, "event_id", None)
    if event_id:
        headers["ce_id"] = event_id
    event_type = getattr(event, "type", None)
    if event_type:
        headers["ce_type"] = event_type
    when = getattr(event, "time", None)
    if when is not None:
        headers["ce_time"] = when.isoformat()
    tenant_id = getattr(event, "tenant_id", None)
    if tenant_id:
        headers["ce_tenantid"] = tenant_id
    propagate.inject(headers)
    return body, headers


def record_headers(record: ConsumerRecord) -> dict[str, str]:
    return {k: (v.decode(errors="replace") if isinstance(v, bytes) else str(v)) for k, v in (record.headers or ())}


@dataclass(slots=True)
class Delivery(Generic[E]):
    """One decoded record. ``event`` is None only for a tombstone on a compacted topic."""

    event: E | None
    record: ConsumerRecord
    headers: dict[str, str]
    span: Span | None = field(default=None, repr=False)

    @property
    def key(self) -> str | None:
        k = self.record.key
        return k.decode(errors="replace") if isinstance(k, bytes) else k

    def activate(self):
        """Make this record's consumer span current: logs carry its trace id, publishes its context."""
        if self.span is None:
            return contextlib.nullcontext()
        return trace.use_span(self.span, end_on_exit=False)

    def context(self) -> otel_context.Context:
        """Trace context to publish follow-up events under: this record's consumer span or, with
        tracing off, the trace context the record arrived with (so it is forwarded unchanged)."""
        if self.span is None:
            return propagate.extract(self.headers)
        return trace.set_span_in_context(self.span)


@dataclass(slots=True)
class Outgoing:
    topic: str
    event: Model
    key: str | None = None
    cause: Delivery | None = None
    #: A partition chosen by the receiver (a stream's ``StreamTo``); None: the key's partition.
    partition: int | None = None


def tracing_enabled() -> bool:
    """True when an SDK tracer provider is installed (spans are recorded and exported)."""
    return isinstance(trace.get_tracer_provider(), _SdkTracerProvider)


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why a record cannot be processed: it belongs on the dead-letter topic."""

    error_type: str
    error: str


def decode_record(record: ConsumerRecord, model: type[E], *, service: str,
                  tombstones: bool = False) -> Delivery[E] | Rejected:
    """Validate one record into its event (with its consumer span when tracing is on), or say why not."""
    headers = record_headers(record)
    if record.value is None:
        if tombstones:
            return Delivery(None, record, headers)
        return Rejected("decode", "null value on a topic that does not carry tombstones")
    try:
        event = model.model_validate_json(record.value)
    except ValidationError as exc:
        kind = "decode" if any(e.get("type") == "json_invalid" for e in exc.errors()) else "schema"
        return Rejected(kind, f"not a valid {model.__name__}: {_describe_validation(exc)}")
    if not tracing_enabled():
        # No spans to record: publishes forward the caller's trace context unchanged (Delivery.context).
        return Delivery(event, record, headers)
    span = tracer.start_span(
        f"{record.topic} process",
        context=propagate.extract(headers),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": record.topic,
            "messaging.kafka.partition": record.partition,
            "messaging.kafka.offset": record.offset,
            "messaging.consumer.group.name": service,
            "modelyard.tenant_id": getattr(event, "tenant_id", "") or "",
            "modelyard.query_id": getattr(event, "query_id", "") or "",
        },
    )
    return Delivery(event, record, headers, span)


def _describe_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(body)"
        parts.append(f"{loc}: {err.get('msg')}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
