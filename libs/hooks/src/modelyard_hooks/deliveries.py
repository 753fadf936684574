"""Webhook deliveries: one document per (endpoint, event), its attempts, and who may make the next one.

``webhook_deliveries``: ``_id = "<endpoint_id>|<webhook_id>"``. The dispatcher inserts it when the
event arrives (before committing the event's offset: at-least-once), so a redelivered event finds it
and adds nothing. It holds the exact body, the status (``pending`` → ``delivered`` or ``parked``), every
attempt (time, HTTP status or error, duration) and when the next one is due: it *is* the delivery log
the tenant API shows.

``webhook_claims``: before an attempt, the dispatcher inserts ``"<delivery_id>#<attempt>"``; the
replica whose insert succeeds makes that attempt (FerretDB refuses a second insert of an ``_id``; it
has no transactions to do it otherwise). A claim older than its lease belongs to a crashed replica and
is taken over.

Ordering: a delivery with an ``ordering_key`` waits while an earlier delivery (lower source offset; the
same key always comes from one tenant-keyed partition) to the same endpoint with the same key is
still pending — so a `quota.exceeded` never overtakes its `quota.warning`, nor a key's revocation its
creation — while deliveries of other keys, and other endpoints, go on.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from modelyard_core.store import TenantScoped
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from .catalogue import WebhookEvent

DELIVERIES = "webhook_deliveries"
CLAIMS = "webhook_claims"


class Status(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    PARKED = "parked"


def delivery_id(endpoint_id: str, webhook_id: str) -> str:
    return f"{endpoint_id}|{webhook_id}"


def new_delivery(endpoint: dict, event: WebhookEvent, source: tuple[str, int, int], now: datetime) -> dict[str, Any]:
    topic, partition, offset = source
    return {
        "_id": delivery_id(endpoint["_id"], event.webhook_id), "tenant_id": event.tenant_id, "endpoint_id": endpoint["_id"],
        "webhook_id": event.webhook_id, "type": event.type.value, "body": event.body(), "ordering_key": event.ordering_key,
        "source": {"topic": topic, "partition": partition, "offset": offset}, "order": offset,
        "status": Status.PENDING.value, "attempt_count": 0, "attempts": [], "created_at": now, "first_attempt_at": None,
        "next_attempt_at": now, "delivered_at": None, "last_status_code": None, "last_error": None,
    }


def backoff(attempts_made: int, base_s: float, max_delay_s: float) -> float:
    """Seconds to wait after the ``attempts_made``-th failed attempt: base, 2 base, 4 base, ... capped."""
    return min(base_s * 2 ** (attempts_made - 1), max_delay_s)


class Deliveries:
    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db[DELIVERIES]
        self.claims = db[CLAIMS]

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self.collection.create_index([("endpoint_id", ASCENDING), ("created_at", ASCENDING)])

    async def enqueue(self, docs: list[dict]) -> int:
        """Insert new deliveries; one that exists (a redelivered event) is left as it is. How many were new."""
        new = 0
        for doc in docs:
            try:
                await self.collection.insert_one(doc)
                new += 1
            except DuplicateKeyError:
                continue
        return new

    async def due(self, now: datetime, limit: int) -> list[dict]:
        cursor = self.collection.find({"status": Status.PENDING.value, "next_attempt_at": {"$lte": now}},
                                      sort=[("next_attempt_at", 1), ("order", 1)], limit=limit)
        return [d async for d in cursor]

    async def blocked(self, doc: dict) -> bool:
        """Whether an earlier delivery with the same ordering key to the same endpoint is still pending."""
        if doc.get("ordering_key") is None:
            return False
        return await self.collection.count_documents({
            "endpoint_id": doc["endpoint_id"], "ordering_key": doc["ordering_key"], "status": Status.PENDING.value,
            "source.topic": doc["source"]["topic"], "order": {"$lt": doc["order"]}}, limit=1) > 0

    async def claim(self, doc: dict, owner: str, lease_s: float, now: datetime) -> str | None:
        """The claim on ``doc``'s next attempt (its id), or None when another replica holds it."""
        claim_id = f"{doc['_id']}#{doc['attempt_count'] + 1}"
        for _ in range(2):
            try:
                await self.claims.insert_one({"_id": claim_id, "owner": owner, "expires_at": now + timedelta(seconds=lease_s)})
                return claim_id
            except DuplicateKeyError:
                held = await self.claims.find_one({"_id": claim_id})
                if held is None or held["expires_at"] > now:
                    return None
                await self.claims.delete_one({"_id": claim_id, "owner": held["owner"]})  # a crashed replica's
        return None

    async def release(self, claim_id: str) -> None:
        await self.claims.delete_one({"_id": claim_id})

    async def record(self, doc: dict, attempt: dict, changes: dict[str, Any]) -> bool:
        """Append ``attempt`` and apply ``changes`` (status, next attempt), unless someone else recorded it first."""
        n = doc["attempt_count"]
        res = await self.collection.update_one({"_id": doc["_id"], "attempt_count": n},
                                               {"$set": {**changes, "attempt_count": n + 1}, "$push": {"attempts": attempt}})
        return res.modified_count == 1

    async def log(self, tenant_id: str, endpoint_id: str, *, skip: int, limit: int) -> tuple[list[dict], int]:
        scoped = TenantScoped(self.collection, tenant_id)
        flt = {"endpoint_id": endpoint_id}
        return await scoped.find(flt, skip=skip, limit=limit, sort=[("created_at", -1), ("_id", 1)]), await scoped.count(flt)

    async def requeue(self, doc: dict, now: datetime) -> None:
        """Make a parked delivery pending again with a fresh retry window (its attempts stay in the log);
        re-create it from ``doc`` if it was removed meanwhile."""
        fresh = {"status": Status.PENDING.value, "next_attempt_at": now, "first_attempt_at": None}
        if (await self.collection.update_one({"_id": doc["_id"]}, {"$set": fresh})).matched_count == 0:
            await self.enqueue([{**doc, **fresh}])
