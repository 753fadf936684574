"""Webhook endpoints: registered through the tenant API, read by the dispatcher.

``webhook_endpoints``: ``{_id, tenant_id, url, events, description, enabled, secrets, created_at,
updated_at, detached_at}``. ``secrets`` are sealed with the master key (``modelyard_core.secrets``) and
listed newest first; a rotated-out secret keeps an ``expires_at`` and signs until then.

When its tenant is deleted, an endpoint subscribed to ``tenant.deleted`` is *detached* instead of
deleted: the dispatcher still tells it about the deletion, then removes it; every other endpoint of
the tenant goes at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from modelyard_core.secrets import SecretBox
from modelyard_core.store import TenantScoped
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from .catalogue import WebhookType
from .deliveries import DELIVERIES
from .signing import new_secret

ENDPOINTS = "webhook_endpoints"


def signing_secrets(box: SecretBox, endpoint: dict, now: datetime) -> list[str]:
    """The endpoint's secrets that sign at ``now``, newest first."""
    return [box.open(s["sealed"]) for s in endpoint.get("secrets", []) if s.get("expires_at") is None or s["expires_at"] > now]


class Endpoints:
    def __init__(self, db: AsyncDatabase, box: SecretBox) -> None:
        self.collection = db[ENDPOINTS]
        self.deliveries = db[DELIVERIES]  # an endpoint's delivery log goes with it
        self.box = box

    def of(self, tenant_id: str) -> TenantScoped:
        return TenantScoped(self.collection, tenant_id)

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("tenant_id", ASCENDING), ("created_at", ASCENDING)])

    async def create(self, tenant_id: str, url: str, events: Sequence[WebhookType], description: str, now: datetime) -> tuple[dict, str]:
        """A new endpoint and its first secret (returned once; only its sealed form is stored)."""
        secret = new_secret()
        doc = {"_id": uuid.uuid4().hex, "url": url, "events": sorted({e.value for e in events}), "description": description,
               "enabled": True, "secrets": [{"sealed": self.box.seal(secret), "created_at": now, "expires_at": None}],
               "created_at": now, "updated_at": now, "detached_at": None}
        await self.of(tenant_id).insert(doc)
        return {**doc, "tenant_id": tenant_id}, secret

    async def count(self, tenant_id: str) -> int:
        return await self.of(tenant_id).count({"detached_at": None})

    async def get(self, tenant_id: str, endpoint_id: str) -> dict | None:
        return await self.of(tenant_id).find_one({"_id": endpoint_id, "detached_at": None})

    async def list(self, tenant_id: str, *, skip: int = 0, limit: int = 0) -> list[dict]:
        return await self.of(tenant_id).find({"detached_at": None}, skip=skip, limit=limit, sort=[("created_at", 1), ("_id", 1)])

    async def update(self, tenant_id: str, endpoint_id: str, changes: dict[str, Any], now: datetime) -> dict | None:
        if await self.of(tenant_id).update({"_id": endpoint_id, "detached_at": None}, {"$set": {**changes, "updated_at": now}}) == 0:
            return None
        return await self.get(tenant_id, endpoint_id)

    async def delete(self, tenant_id: str, endpoint_id: str) -> bool:
        if await self.of(tenant_id).delete({"_id": endpoint_id, "detached_at": None}) == 0:
            return False
        await self.deliveries.delete_many({"tenant_id": tenant_id, "endpoint_id": endpoint_id})
        return True

    async def rotate(self, tenant_id: str, endpoint_id: str, grace_s: float, now: datetime) -> str | None:
        """A new secret signs from now on; the current ones sign for ``grace_s`` more (older ones expire now)."""
        doc = await self.get(tenant_id, endpoint_id)
        if doc is None:
            return None
        secret = new_secret()
        until = now + timedelta(seconds=grace_s)
        kept = [{**s, "expires_at": min(s["expires_at"] or until, until)} for s in doc["secrets"]
                if s.get("expires_at") is None or s["expires_at"] > now]
        secrets = [{"sealed": self.box.seal(secret), "created_at": now, "expires_at": None}, *kept]
        await self.of(tenant_id).update({"_id": endpoint_id}, {"$set": {"secrets": secrets, "updated_at": now}})
        return secret

    async def subscribed(self, tenant_id: str, kind: WebhookType) -> list[dict]:
        """Enabled endpoints of the tenant that chose ``kind`` (detached ones only hear of the deletion)."""
        flt: dict[str, Any] = {"enabled": True, "events": kind.value}
        if kind is not WebhookType.TENANT_DELETED:
            flt["detached_at"] = None
        return await self.of(tenant_id).find(flt, sort=[("_id", 1)])

    async def find_any(self, endpoint_id: str) -> dict | None:
        """An endpoint by id, whatever its tenant (the dispatcher and the replay know only the id)."""
        return await self.collection.find_one({"_id": endpoint_id})

    async def detach_tenant(self, tenant_id: str, now: datetime) -> None:
        """The tenant is being deleted: keep only the endpoints that must hear of it, detached."""
        gone = [d["_id"] async for d in self.collection.find(
            {"tenant_id": tenant_id, "events": {"$ne": WebhookType.TENANT_DELETED.value}}, projection={"_id": 1})]
        await self.collection.delete_many({"tenant_id": tenant_id, "_id": {"$in": gone}})
        await self.deliveries.delete_many({"tenant_id": tenant_id, "endpoint_id": {"$in": gone}})
        await self.collection.update_many({"tenant_id": tenant_id, "detached_at": None}, {"$set": {"detached_at": now}})

    async def remove_detached(self, endpoint_id: str) -> None:
        if (await self.collection.delete_one({"_id": endpoint_id, "detached_at": {"$ne": None}})).deleted_count:
            await self.deliveries.delete_many({"endpoint_id": endpoint_id})

    async def reseal_all(self) -> int:
        """Re-encrypt every stored secret with the first master key (``modelyard secrets rotate``)."""
        n = 0
        async for doc in self.collection.find({}, projection={"secrets": 1}):
            secrets = [{**s, "sealed": self.box.reseal(s["sealed"])} for s in doc.get("secrets", [])]
            await self.collection.update_one({"_id": doc["_id"]}, {"$set": {"secrets": secrets}})
            n += len(secrets)
        return n
