"""Inference pool service: composition root."""

from __future__ import annotations

import logging

from faststream import FastStream

from modelyard_core.app import stream_app
from modelyard_core.bus import Bus
from modelyard_core.pricing import load_pricing
from modelyard_core.views import CompactedTopicView
from modelyard_core.secrets import SecretBox
from modelyard_events import AgentSnapshot, QueryRouted, TenantSnapshot

from .backend import Backend
from .pipeline import PipelinedConsumer
from .settings import InferenceSettings
from .tenant_models import TenantModels
from .worker import Worker


def create_app(settings: InferenceSettings | None = None) -> FastStream:
    settings = settings or InferenceSettings()
    service = f"inference-{settings.pool}"
    # httpx2 logs every request at INFO: hundreds of lines a second that say nothing the metrics do not.
    logging.getLogger("httpx2").setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
    bus = Bus(settings, "inference", client_id=f"modelyard-{service}")
    topics = settings.topics
    # Agents supply system prompts; every worker needs all of them, so a full view, not a partition's share.
    agents = CompactedTopicView(settings, topics.name("tenant_agents"), AgentSnapshot, name=f"{service}-agents")
    backend = Backend(settings)
    # Tenants' own endpoints come with their snapshots (bring your own model).
    tenants = CompactedTopicView(settings, topics.name("tenant_snapshots"), TenantSnapshot, name=f"{service}-tenants")
    tenant_models = TenantModels(settings, tenants, SecretBox.from_setting(settings.master_keys))
    worker = Worker(settings, bus, backend, load_pricing(settings.pricing_file), agents, tenant_models)
    # Not bus.consume: a batch consumer would wait for the slowest model call of every batch (see pipeline).
    consumer = PipelinedConsumer(bus, topics.routed(settings.pool), QueryRouted, worker.answer_one,
                                 group_id=settings.group_id, concurrency=settings.concurrency,
                                 publish_together=settings.publish_together)

    async def stop_consuming() -> None:
        await consumer.stop(timeout_s=settings.shutdown_timeout_s)

    app = stream_app(settings, bus, startup=[agents.start, tenants.start, backend.warm_up],
                     shutdown=[agents.stop, tenants.stop, tenant_models.close, backend.close])
    # The consumer publishes through the broker: it starts once the broker is connected and stops
    # (finishing the queries in hand) before the broker disconnects.
    app.after_startup(consumer.start)
    app.on_shutdown(stop_consuming)
    return app
