"""Metering service: composition root and the usage handler."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from faststream import FastStream

from modelyard_core.app import stream_app
from modelyard_core.bus import Bus, Delivery, Outgoing
from modelyard_core.store import database, make_mongo
from modelyard_core.views import CompactedTopicView
from modelyard_events import MeteringUsage, TenantSnapshot, UsageCounters, UsageRecorded, derived_id

from .alerts import daily_alerts, monthly_alerts
from .settings import MeteringSettings
from .sink import UsageSink

log = logging.getLogger(__name__)


@dataclass
class Metering:
    bus: Bus
    sink: UsageSink
    tenants: CompactedTopicView[TenantSnapshot]

    async def on_usage(self, deliveries: list[Delivery[UsageRecorded]]) -> None:
        result = await self.sink.apply(deliveries)
        topics = self.bus.topics
        flush = ",".join(f"{p}:{o}" for p, o in sorted(result.max_offsets.items()))
        out: list[Outgoing] = []
        month_deltas: dict[tuple[str, str], UsageCounters] = defaultdict(UsageCounters)
        for (tenant_id, day), (delta, totals) in result.tenant_days.items():
            out.append(Outgoing(topics.name("metering"), MeteringUsage(
                event_id=derived_id(tenant_id, day, "metering", flush),
                tenant_id=tenant_id, day=date.fromisoformat(day), delta=delta, totals=totals,
            )))
            key = (tenant_id, day[:7])
            prev = month_deltas[key]
            month_deltas[key] = UsageCounters(**{k: getattr(prev, k) + getattr(delta, k) for k in UsageCounters.model_fields})
            tenant = self.tenants.get(tenant_id)
            if tenant is not None:
                out.extend(Outgoing(topics.name("tenant_alerts"), a) for a in daily_alerts(tenant, day, delta, totals))
        for (tenant_id, month), totals in result.tenant_months.items():
            tenant = self.tenants.get(tenant_id)
            if tenant is not None:
                delta = month_deltas.get((tenant_id, month), UsageCounters())
                out.extend(Outgoing(topics.name("tenant_alerts"), a) for a in monthly_alerts(tenant, month, delta, totals))
        await self.bus.publish(out)
        if result.duplicates or result.replayed:
            log.info("flush: %d counted, %d replayed, %d duplicates skipped", result.counted, result.replayed, result.duplicates)


def create_app(settings: MeteringSettings | None = None) -> FastStream:
    settings = settings or MeteringSettings()
    bus = Bus(settings, "metering")
    topics = settings.topics
    mongo = make_mongo(settings.mongo, app_name="modelyard-metering")
    sink = UsageSink(database(mongo, settings.mongo), dedup_retention_days=settings.dedup_retention_days)
    tenants = CompactedTopicView(settings, topics.name("tenant_snapshots"), TenantSnapshot, name="metering-tenants")
    metering = Metering(bus, sink, tenants)
    # Flush at N events or T ms: a batch subscriber with those bounds is exactly that buffer.
    bus.consume(topics.name("usage"), UsageRecorded, metering.on_usage, group_id=settings.group_id,
                max_records=settings.flush_events, batch_timeout_ms=settings.flush_ms,
                description="Fold usage records into per-tenant usage documents, exactly once.")

    return stream_app(settings, bus, startup=[sink.ensure_indexes, tenants.start], shutdown=[tenants.stop], mongo=mongo)
