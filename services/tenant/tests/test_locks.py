"""The per-tenant lease: one holder at a time across instances, takeover of an expired lease, timeout."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from modelyard_tenant.locks import LockTimeout, TenantLocks


@pytest.fixture
def locks_collection(mongo_db):
    return mongo_db["tenant_locks"]


async def test_one_holder_at_a_time_across_instances(locks_collection):
    replicas = [TenantLocks(locks_collection, lease_s=30, wait_s=20) for _ in range(3)]
    inside = 0
    most = 0
    counter = {"n": 0}

    async def work(i: int) -> None:
        nonlocal inside, most
        async with replicas[i % 3].hold("lock-test-tenant"):
            inside += 1
            most = max(most, inside)
            seen = counter["n"]
            await locks_collection.find_one({"_id": "tenant:lock-test-tenant"})  # a real await inside the lock
            counter["n"] = seen + 1
            inside -= 1

    await asyncio.gather(*(work(i) for i in range(30)))
    assert most == 1
    assert counter["n"] == 30
    assert await locks_collection.find_one({"_id": "tenant:lock-test-tenant"}) is None


async def test_expired_lease_is_taken_over(locks_collection):
    past = datetime.now(UTC) - timedelta(seconds=1)
    await locks_collection.insert_one({"_id": "tenant:crashed-holder", "token": "dead", "expires_at": past})
    async with TenantLocks(locks_collection, lease_s=30, wait_s=2).hold("crashed-holder"):
        held = await locks_collection.find_one({"_id": "tenant:crashed-holder"})
        assert held["token"] != "dead"


async def test_live_lease_of_another_replica_times_out(locks_collection):
    future = datetime.now(UTC) + timedelta(seconds=60)
    await locks_collection.insert_one({"_id": "tenant:busy", "token": "other", "expires_at": future})
    with pytest.raises(LockTimeout):
        async with TenantLocks(locks_collection, lease_s=30, wait_s=0.3).hold("busy"):
            pass
    await locks_collection.delete_one({"_id": "tenant:busy"})
