"""One writer per tenant at a time, across replicas, without transactions.

FerretDB v1 has no transactions and does not apply concurrent ``$inc`` updates atomically (measured:
30 concurrent increments of one field left it at 4), but it does refuse a second insert of the same
``_id``. So a tenant's lock is a lease document inserted under ``tenant:<id>``: whoever inserts it
holds the tenant until it deletes the document or the lease expires (a crashed holder). Inside the
lock, quota checks count the real documents, so limits are exact and no counter can drift.

An ``asyncio.Lock`` per tenant queues this process's own writers before they poll the database.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

log = logging.getLogger(__name__)


class LockTimeout(Exception):
    pass


class TenantLocks:
    def __init__(self, collection: AsyncCollection, *, lease_s: float, wait_s: float) -> None:
        self.collection = collection
        self.lease = timedelta(seconds=lease_s)
        self.wait_s = wait_s
        self.owner = f"{uuid.uuid4().hex[:12]}"
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, tenant_id: str) -> AsyncIterator[None]:
        lock = self._enter(tenant_id)
        try:
            async with asyncio.timeout(self.wait_s):
                await lock.acquire()
        except TimeoutError:
            self._leave(tenant_id)
            raise LockTimeout(f"tenant {tenant_id} is busy") from None
        try:
            token = await self._acquire_lease(tenant_id)
            try:
                yield
            finally:
                await self.collection.delete_one({"_id": self._lease_id(tenant_id), "token": token})
        finally:
            lock.release()
            self._leave(tenant_id)

    def _enter(self, tenant_id: str) -> asyncio.Lock:
        lock, users = self._local.get(tenant_id, (asyncio.Lock(), 0))
        self._local[tenant_id] = (lock, users + 1)
        return lock

    def _leave(self, tenant_id: str) -> None:
        lock, users = self._local[tenant_id]
        if users <= 1:
            del self._local[tenant_id]  # nobody waits: forget the tenant
        else:
            self._local[tenant_id] = (lock, users - 1)

    @staticmethod
    def _lease_id(tenant_id: str) -> str:
        return f"tenant:{tenant_id}"

    async def _acquire_lease(self, tenant_id: str) -> str:
        lease_id = self._lease_id(tenant_id)
        token = f"{self.owner}:{uuid.uuid4().hex}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        pause = 0.005
        while True:
            now = datetime.now(UTC)
            try:
                await self.collection.insert_one({"_id": lease_id, "token": token, "expires_at": now + self.lease})
                return token
            except DuplicateKeyError:
                pass
            held = await self.collection.find_one({"_id": lease_id})
            if held is not None and held["expires_at"] <= now:
                # The holder crashed (or overran its lease): take the tenant over.
                log.warning("lease on tenant %s expired (holder %s); taking it over", tenant_id, held.get("token"))
                await self.collection.delete_one({"_id": lease_id, "token": held["token"]})
                continue
            if loop.time() >= deadline:
                raise LockTimeout(f"tenant {tenant_id} is busy")
            await asyncio.sleep(pause * (1 + random.random()))  # another replica holds it: back off
            pause = min(pause * 2, 0.1)
