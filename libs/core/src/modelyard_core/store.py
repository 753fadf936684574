"""MongoDB access through PyMongo's async API, and the tenant-scoped repository.

PyMongo's ``AsyncMongoClient`` is the official async driver; Motor is deprecated in its favour.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from .settings import MongoSettings


def make_mongo(settings: MongoSettings, *, app_name: str = "modelyard") -> AsyncMongoClient:
    return AsyncMongoClient(
        settings.url,
        appname=app_name,
        serverSelectionTimeoutMS=settings.timeout_ms,
        connectTimeoutMS=settings.timeout_ms,
        tz_aware=True,
    )


def database(client: AsyncMongoClient, settings: MongoSettings) -> AsyncDatabase:
    return client[settings.database]


class MissingTenant(ValueError):
    pass


class TenantScoped:
    """A collection that cannot be read or written without a tenant id.

    Every filter gets ``tenant_id`` added, every inserted document gets it set, so a query that
    forgets the tenant cannot be expressed (tenant isolation by construction).
    """

    def __init__(self, collection: AsyncCollection, tenant_id: str) -> None:
        if not tenant_id:
            raise MissingTenant("a tenant id is required for every read and write")
        self.collection = collection
        self.tenant_id = tenant_id

    def _scope(self, flt: Mapping[str, Any] | None) -> dict[str, Any]:
        scoped = dict(flt or {})
        if "tenant_id" in scoped and scoped["tenant_id"] != self.tenant_id:
            raise MissingTenant("filter names another tenant")
        scoped["tenant_id"] = self.tenant_id
        return scoped

    async def find_one(self, flt: Mapping[str, Any] | None = None, **kw: Any) -> dict | None:
        return await self.collection.find_one(self._scope(flt), **kw)

    async def find(self, flt: Mapping[str, Any] | None = None, *, skip: int = 0, limit: int = 0, sort: Any = None) -> list[dict]:
        cursor = self.collection.find(self._scope(flt), skip=skip, limit=limit, sort=sort)
        return [doc async for doc in cursor]

    async def count(self, flt: Mapping[str, Any] | None = None) -> int:
        return await self.collection.count_documents(self._scope(flt))

    async def insert(self, doc: Mapping[str, Any]) -> None:
        await self.collection.insert_one({**doc, "tenant_id": self.tenant_id})

    async def update(self, flt: Mapping[str, Any], update: Mapping[str, Any], *, upsert: bool = False) -> int:
        res = await self.collection.update_one(self._scope(flt), update, upsert=upsert)
        return res.matched_count

    async def delete(self, flt: Mapping[str, Any] | None = None) -> int:
        res = await self.collection.delete_one(self._scope(flt))
        return res.deleted_count

    async def delete_all(self) -> int:
        res = await self.collection.delete_many(self._scope(None))
        return res.deleted_count
