"""Fixtures of the metering tests: the real MongoDB-protocol server (and Kafka, for system tests).

``infra`` (endpoints from MODELYARD_TEST_KAFKA / MODELYARD_TEST_MONGO_URL, or testcontainers) and the
process stack come from the repository's ``tests`` package.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:  # the repository root, for the shared `tests` package
    sys.path.insert(0, str(REPO))

from tests.conftest import Infra, infra  # noqa: E402,F401 - re-exported fixture


@pytest.fixture
async def db(infra: Infra) -> AsyncIterator[AsyncDatabase]:
    """A database of its own for one test, dropped afterwards."""
    client = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    name = f"t_metering_{uuid.uuid4().hex[:10]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()
