"""Metering service: composition root (the one place that wires the sink to MongoDB and the bus) and the usage handler."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from faststream import FastStream

from modelyard_core.app import stream_app
from modelyard_core.bus import Bus, Delivery, Outgoing
from modelyard_core.store import database, make_mongo
from modelyard_core.views import CompactedTopicView
from modelyard_events import TenantAlert, TenantSnapshot, UsageCounters, UsageRecorded

from .alerts import Scope, due_alerts
from .settings import MeteringSettings
from .mongo import MongoUsageStore
from .sink import UsageSink

log = logging.getLogger(__name__)


@dataclass
class Metering:
    bus: Bus
    sink: UsageSink
    tenants: CompactedTopicView[TenantSnapshot]
    tenant_sync_timeout_s: float = 2.0

    def alerts_for(self, tenant_id: str, scope: Scope, period: str, totals: UsageCounters,
                   already: Collection[str]) -> list[TenantAlert]:
        """The sink's alert policy: limits come from the tenant's latest snapshot."""
        tenant = self.tenants.get(tenant_id)
        return due_alerts(tenant, scope, period, totals, already) if tenant is not None else []

    async def on_usage(self, deliveries: list[Delivery[UsageRecorded]]) -> None:
        if any(self.tenants.get(d.event.tenant_id) is None for d in deliveries if d.event is not None):
            # A tenant created a moment ago may not be in the view yet; its limits decide its alerts.
            await self.tenants.sync(timeout_s=self.tenant_sync_timeout_s)
        started = time.perf_counter()
        result = await self.sink.apply(deliveries)
        applied = time.perf_counter()
        topics = self.bus.topics
        # Only now are the documents (and what they emit) durable; offsets are committed after this.
        await self.bus.publish(
            [Outgoing(topics.name("metering"), m) for m in result.usage]
            + [Outgoing(topics.name("tenant_alerts"), a) for a in result.alerts]
        )
        log.debug("flush of %d events: %d documents in %.0f ms, %d messages published in %.0f ms",
                  len(deliveries), result.documents, 1000 * (applied - started), len(result.usage) + len(result.alerts),
                  1000 * (time.perf_counter() - applied))
        if result.duplicates or result.replayed or result.republished:
            log.info("flush: %d counted, %d replayed, %d duplicates skipped, %d messages re-sent",
                     result.counted, result.replayed, result.duplicates, result.republished)
        await self.sink.maybe_prune()


def create_app(settings: MeteringSettings | None = None) -> FastStream:
    settings = settings or MeteringSettings()
    bus = Bus(settings, "metering")
    topics = settings.topics
    mongo = make_mongo(settings.mongo, app_name="modelyard-metering")
    store = MongoUsageStore(database(mongo, settings.mongo), write_chunk=settings.write_chunk,
                            retention=timedelta(days=settings.dedup_retention_days))
    sink = UsageSink(store, dedup_window=settings.dedup_window, doc_cache_size=settings.doc_cache_size,
                     prune_interval_s=settings.prune_interval_s)
    tenants = CompactedTopicView(settings, topics.name("tenant_snapshots"), TenantSnapshot, name="metering-tenants")
    metering = Metering(bus, sink, tenants, settings.tenant_sync_timeout_s)
    sink.alert_policy = metering.alerts_for
    # Flush at N events or T ms after the first: a lingering batch subscriber is exactly that buffer.
    bus.consume(topics.name("usage"), UsageRecorded, metering.on_usage, group_id=settings.group_id,
                max_records=settings.flush_events, linger_ms=settings.flush_ms,
                # A batch waits flush_ms anyway: fetch a few times within it, not once per usage record.
                fetch_wait_ms=max(1, min(500, settings.flush_ms // 4)),
                group_instance_id=settings.group_instance_id,
                description="Fold usage records into per-tenant usage documents, exactly once.")

    return stream_app(settings, bus, startup=[sink.ensure_indexes, tenants.start], shutdown=[tenants.stop], mongo=mongo)
