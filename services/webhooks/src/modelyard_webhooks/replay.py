"""`modelyard webhooks replay`: send parked deliveries again.

Reads ``webhooks.parked`` from its beginning to its current end (without a consumer group: a replay
commits nothing and can be repeated), keeps the deliveries the filters select, and makes each pending
again with a fresh retry window; the running dispatcher sends them. A delivery that was delivered
meanwhile (an earlier replay) is skipped, so replaying twice sends nothing twice; one whose endpoint
was deleted is skipped and counted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from modelyard_core.kafka_clients import make_consumer
from modelyard_core.store import database, make_mongo
from modelyard_events import WebhookParked
from modelyard_hooks import Deliveries, Status
from modelyard_hooks.endpoints import ENDPOINTS
from pydantic import ValidationError

from .sender import utcnow
from .settings import DispatcherSettings


@dataclass
class ReplayFilter:
    endpoint_id: str | None = None
    tenant_id: str | None = None
    delivery_id: str | None = None
    since: datetime | None = None  # parked at or after

    def wants(self, p: WebhookParked) -> bool:
        return ((self.endpoint_id is None or p.endpoint_id == self.endpoint_id)
                and (self.tenant_id is None or p.tenant_id == self.tenant_id)
                and (self.delivery_id is None or p.delivery_id == self.delivery_id)
                and (self.since is None or p.time >= self.since))


@dataclass
class ReplayResult:
    parked: int = 0
    selected: int = 0
    requeued: list[str] = field(default_factory=list)
    already_delivered: int = 0
    endpoint_gone: int = 0

    def summary(self) -> dict:
        return {"parked": self.parked, "selected": self.selected, "requeued": len(self.requeued),
                "already_delivered": self.already_delivered, "endpoint_gone": self.endpoint_gone}


async def read_parked(settings: DispatcherSettings, timeout_s: float = 30.0) -> list[WebhookParked]:
    """Every parked delivery on the topic now (the newest record per delivery)."""
    topic = settings.topics.name("webhooks_parked")
    consumer = make_consumer(settings.kafka, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.subscribe([topic])  # without a group: every partition, from the beginning
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        latest: dict[str, WebhookParked] = {}
        batch = await consumer.getmany(timeout_ms=200)
        while not consumer.assignment():
            if loop.time() > deadline:
                return []  # no such topic yet: nothing was ever parked
            batch = await consumer.getmany(timeout_ms=200)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while True:
            for records in batch.values():
                for r in records:
                    try:
                        parked = WebhookParked.model_validate_json(r.value)
                    except (ValidationError, TypeError):
                        continue
                    latest[parked.delivery_id] = parked
            if all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                return list(latest.values())
            if loop.time() > deadline:
                raise TimeoutError(f"could not read {topic} to its end within {timeout_s:.0f} s")
            batch = await consumer.getmany(timeout_ms=200)
    finally:
        await consumer.stop()


async def replay(settings: DispatcherSettings, flt: ReplayFilter, *, dry_run: bool = False) -> ReplayResult:
    result = ReplayResult()
    parked = await read_parked(settings)
    result.parked = len(parked)
    mongo = make_mongo(settings.mongo, app_name="modelyard-webhooks-replay")
    try:
        db = database(mongo, settings.mongo)
        deliveries = Deliveries(db)
        now = utcnow()
        for p in (p for p in parked if flt.wants(p)):
            result.selected += 1
            current = await deliveries.collection.find_one({"_id": p.delivery_id})
            if current is not None and current["status"] == Status.DELIVERED.value:
                result.already_delivered += 1
                continue
            if await db[ENDPOINTS].find_one({"_id": p.endpoint_id}, projection={"_id": 1}) is None:
                result.endpoint_gone += 1
                continue
            result.requeued.append(p.delivery_id)
            if not dry_run:
                await deliveries.requeue(current or _rebuilt(p, now), now)
        return result
    finally:
        await mongo.close()


def _rebuilt(p: WebhookParked, now: datetime) -> dict:
    """A delivery document from its parked record (the original was removed); replayed out of order."""
    return {"_id": p.delivery_id, "tenant_id": p.tenant_id, "endpoint_id": p.endpoint_id, "webhook_id": p.webhook_id,
            "type": p.webhook_type, "body": p.body, "ordering_key": None, "source": {"topic": "replay", "partition": 0, "offset": 0},
            "order": 0, "status": Status.PENDING.value, "attempt_count": p.attempts, "attempts": [], "created_at": now,
            "first_attempt_at": None, "next_attempt_at": now, "delivered_at": None, "last_status_code": None,
            "last_error": p.last_error}
