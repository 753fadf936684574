"""The tenant service's collections.

Everything a tenant owns is reached through ``TenantData``, a set of ``TenantScoped`` repositories
built for one tenant id: a read or write without a tenant id cannot be expressed. The few reads that
must cross tenants (find an API key by its hash before the caller is known, list organisations for
the platform administrator, find unpublished snapshots) are the methods of ``Platform``, and only
those; authentication's read of an API key by its hash is ``modelyard_tenancy.key_by_hash``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from modelyard_core.store import TenantScoped
from modelyard_tenancy import API_KEYS
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

TENANTS = "tenants"
AGENTS = "agents"
ROLES = "roles"
TICKETS = "tickets"
DOCUMENTS = "documents"
OUTBOX = "tenant_outbox"
COUNTERS = "tenant_counters"
LOCKS = "tenant_locks"

#: Tenant-owned resource collections (served under /v1/tenants/{id}/<name>).
RESOURCE_COLLECTIONS = (AGENTS, ROLES, TICKETS, DOCUMENTS)

#: Lifecycle of a tenant document; only ``ready`` tenants are visible through the API.
READY, IMPORTING, DELETING = "ready", "importing", "deleting"

ORDER = [("created_at", ASCENDING), ("_id", ASCENDING)]


class Scoped(TenantScoped):
    """``TenantScoped`` plus the few operations this service needs (still always scoped)."""

    async def sum(self, field: str, flt: Mapping[str, Any] | None = None) -> int:
        cursor = await self.collection.aggregate([{"$match": self._scope(flt)}, {"$group": {"_id": None, "total": {"$sum": f"${field}"}}}])
        rows = [row async for row in cursor]
        return int(rows[0]["total"]) if rows else 0

    async def put(self, doc_id: str, doc: Mapping[str, Any]) -> None:
        """Insert or replace the document ``doc_id`` (idempotent: imports and outbox records)."""
        await self.collection.replace_one(self._scope({"_id": doc_id}), {**doc, "_id": doc_id, "tenant_id": self.tenant_id}, upsert=True)

    async def update_where(self, flt: Mapping[str, Any], update: Mapping[str, Any]) -> int:
        res = await self.collection.update_many(self._scope(flt), update)
        return res.modified_count

    async def delete_where(self, flt: Mapping[str, Any]) -> int:
        res = await self.collection.delete_many(self._scope(flt))
        return res.deleted_count


class TenantData:
    """Every collection of one tenant, scoped to it."""

    def __init__(self, db: AsyncDatabase, tenant_id: str, *, usage_collections: tuple[str, ...]) -> None:
        self.tenant_id = tenant_id
        self.tenant = Scoped(db[TENANTS], tenant_id)  # the tenant document itself: tenant_id == _id
        self.agents = Scoped(db[AGENTS], tenant_id)
        self.roles = Scoped(db[ROLES], tenant_id)
        self.tickets = Scoped(db[TICKETS], tenant_id)
        self.documents = Scoped(db[DOCUMENTS], tenant_id)
        self.api_keys = Scoped(db[API_KEYS], tenant_id)
        self.outbox = Scoped(db[OUTBOX], tenant_id)
        self.counters = Scoped(db[COUNTERS], tenant_id)  # written only under the tenant's lock
        # Metering's documents, by collection: exported, imported and deleted with the tenant.
        self.usage = {name: Scoped(db[name], tenant_id) for name in usage_collections}

    def resources(self, name: str) -> Scoped:
        return {AGENTS: self.agents, ROLES: self.roles, TICKETS: self.tickets, DOCUMENTS: self.documents}[name]

    def everything(self) -> list[Scoped]:
        """Every collection holding the tenant's documents, the tenant document last (cascade order)."""
        return [self.api_keys, self.agents, self.roles, self.tickets, self.documents, self.counters, *self.usage.values(), self.tenant]


class Platform:
    """The only cross-tenant operations of the tenant service (platform administration, the outbox sweeper)."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db

    async def list_tenants(self, flt: Mapping[str, Any], *, skip: int, limit: int) -> tuple[list[dict], int]:
        query = {**flt, "lifecycle": READY}
        docs = [d async for d in self.db[TENANTS].find(query, skip=skip, limit=limit, sort=ORDER)]
        return docs, await self.db[TENANTS].count_documents(query)

    async def tenant_ids(self, *, lifecycle: str | None = None) -> list[str]:
        flt = {"lifecycle": lifecycle} if lifecycle else {}
        return [d["_id"] async for d in self.db[TENANTS].find(flt, projection={"_id": 1})]

    async def tenants_with_pending_events(self, recorded_before: datetime) -> list[str]:
        ids = {d["tenant_id"] async for d in self.db[OUTBOX].find({"recorded_at": {"$lt": recorded_before}}, projection={"tenant_id": 1})}
        return sorted(ids)


async def ensure_indexes(db: AsyncDatabase) -> None:
    await db[API_KEYS].create_index("key_hash", unique=True)
    for name in (*RESOURCE_COLLECTIONS, API_KEYS):
        await db[name].create_index([("tenant_id", ASCENDING), ("created_at", ASCENDING)])
    await db[TENANTS].create_index([("lifecycle", ASCENDING), ("created_at", ASCENDING)])
    await db[OUTBOX].create_index("recorded_at")
