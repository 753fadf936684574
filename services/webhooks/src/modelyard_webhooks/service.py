"""Webhook dispatcher: composition root and the fan-out of bus events into deliveries.

It consumes ``tenants.alerts``, ``tenants.events`` and ``billing.statements`` in its own consumer
group. For each event it finds the tenant's endpoints subscribed to the event's webhook type and
inserts one delivery per endpoint (``modelyard_hooks.deliveries``); only then are the offsets
committed, so no event is lost between the bus and the delivery log. The ``Sender`` does the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from faststream import FastStream
from modelyard_core.app import stream_app
from modelyard_core.bus import Bus, Delivery
from modelyard_core.secrets import SecretBox
from modelyard_core.store import database, make_mongo
from modelyard_events import Event, MonthClosed, TenantAlert, TenantChanged
from modelyard_hooks import Deliveries, Endpoints, new_delivery, webhook_event

from .sender import Sender, utcnow
from .settings import DispatcherSettings

log = logging.getLogger(__name__)
SERVICE = "webhooks"
SOURCES = {"tenant_alerts": TenantAlert, "tenant_events": TenantChanged, "billing_statements": MonthClosed}


class Fanout:
    def __init__(self, endpoints: Endpoints, deliveries: Deliveries, sender: Sender) -> None:
        self.endpoints = endpoints
        self.deliveries = deliveries
        self.sender = sender

    async def on_events(self, batch: list[Delivery[Event]]) -> None:
        docs = []
        now = utcnow()
        for d in batch:
            if d.event is None:
                continue
            hook = webhook_event(d.event)
            if hook is None:
                continue
            source = (d.record.topic, d.record.partition, d.record.offset)
            for endpoint in await self.endpoints.subscribed(hook.tenant_id, hook.type):
                docs.append(new_delivery(endpoint, hook, source, now))
        if docs and await self.deliveries.enqueue(docs):
            self.sender.wake()


def create_app(settings: DispatcherSettings | None = None) -> FastStream:
    settings = settings or DispatcherSettings()
    bus = Bus(settings, SERVICE)
    mongo = make_mongo(settings.mongo, app_name="modelyard-webhooks")
    db = database(mongo, settings.mongo)
    box = SecretBox.from_setting(settings.master_keys)
    endpoints, deliveries = Endpoints(db, box), Deliveries(db)
    sender = Sender(endpoints, deliveries, box, settings.webhooks, bus)
    fanout = Fanout(endpoints, deliveries, sender)
    for topic, model in SOURCES.items():
        bus.consume(settings.topics.name(topic), model, fanout.on_events, group_id=settings.group_id,
                    group_instance_id=f"{settings.group_instance_id}-{topic}" if settings.group_instance_id else None,
                    description=f"Webhook deliveries for {model.__name__} events.")
    running: list[asyncio.Task] = []

    async def start() -> None:
        await endpoints.ensure_indexes()
        await deliveries.ensure_indexes()
        running.append(asyncio.create_task(sender.run(), name="webhook-sender"))

    async def stop() -> None:
        for task in running:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await sender.close()

    return stream_app(settings, bus, startup=[start], shutdown=[stop], mongo=mongo)
