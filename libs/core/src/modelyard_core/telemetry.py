"""OpenTelemetry tracing set-up, configured by the standard ``OTEL_*`` environment variables.

* ``OTEL_TRACES_EXPORTER=otlp`` (with ``OTEL_EXPORTER_OTLP_ENDPOINT``) sends spans to a collector;
  ``console`` prints them; unset or ``none`` keeps tracing off (context still propagates).
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter


def setup_tracing(service: str, exporter: SpanExporter | None = None) -> TracerProvider | None:
    """Install a tracer provider for ``service``; returns None when tracing is off."""
    kind = os.environ.get("OTEL_TRACES_EXPORTER", "none").lower()
    if exporter is None:
        if kind == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        elif kind == "console":
            exporter = ConsoleSpanExporter()
        else:
            return None
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", f"modelyard-{service}")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider
