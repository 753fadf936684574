"""Inference pool service: composition root."""

from __future__ import annotations

from faststream import FastStream

from modelyard_core.app import stream_app
from modelyard_core.bus import Bus
from modelyard_core.pricing import load_pricing
from modelyard_core.views import CompactedTopicView
from modelyard_events import AgentSnapshot, QueryRouted

from .backend import Backend
from .settings import InferenceSettings
from .worker import Worker


def create_app(settings: InferenceSettings | None = None) -> FastStream:
    settings = settings or InferenceSettings()
    service = f"inference-{settings.pool}"
    bus = Bus(settings, "inference", client_id=f"modelyard-{service}")
    topics = settings.topics
    agents = CompactedTopicView(settings, topics.name("tenant_agents"), AgentSnapshot, name=f"{service}-agents")
    backend = Backend(settings)
    worker = Worker(settings, bus, backend, load_pricing(settings.pricing_file), agents)
    bus.consume(
        topics.routed(settings.pool), QueryRouted, worker.on_routed, group_id=settings.group_id,
        max_records=settings.concurrency,
        description=f"Answer queries routed to the {settings.pool.upper()} pool; meter each call; finish or escalate.",
    )

    return stream_app(settings, bus, startup=[agents.start], shutdown=[agents.stop, backend.close])
