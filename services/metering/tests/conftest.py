"""Fixtures of the metering tests: a database of its own per test on the real MongoDB-protocol server
(``mongo_url`` comes from the modelyard plugin, so every test that uses ``db`` is a system test)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase


@pytest.fixture
async def db(mongo_url: str) -> AsyncIterator[AsyncDatabase]:
    """A database of its own for one test, dropped afterwards."""
    client = AsyncMongoClient(mongo_url, tz_aware=True)
    name = f"t_metering_{uuid.uuid4().hex[:10]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()
