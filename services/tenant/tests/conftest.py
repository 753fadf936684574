"""Fixtures of the tenant service tests: the app in-process on the real Kafka and FerretDB/MongoDB.

``kafka`` and ``mongo_url`` come from the modelyard plugin, so every test that uses the app is a system
test. Each test session gets its own database (dropped afterwards) and its own topic prefix (topics
deleted afterwards).
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from fastapi import FastAPI
from modelyard_harness import drop_topics
from modelyard_tenant import TenantServiceSettings, create_app
from pymongo import AsyncMongoClient

RUN = uuid.uuid4().hex[:8]


def make_settings(kafka: str, mongo_url: str, **overrides: object) -> TenantServiceSettings:
    fields: dict = {
        "kafka": {"bootstrap_servers": kafka, "partitions": 1},
        "mongo": {"url": mongo_url, "database": f"test_tenant_{RUN}"},
        "topics": {"prefix": f"test-tenant-{RUN}."},
        "admin_token": f"test-admin-{RUN}",
        "jwt_secret": f"test-jwt-secret-{RUN}-0123456789abcdef",
        "outbox_sweeper": False,  # tests call service.sweep() themselves
        "log_format": "console",
    }
    fields.update(overrides)
    return TenantServiceSettings(**fields)


@pytest.fixture(scope="session")
def settings(kafka: str, mongo_url: str) -> TenantServiceSettings:
    return make_settings(kafka, mongo_url)


@pytest.fixture(scope="session")
async def app(settings: TenantServiceSettings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    try:
        async with application.router.lifespan_context(application):
            yield application
    finally:
        mongo = AsyncMongoClient(settings.mongo.url)
        await mongo.drop_database(settings.mongo.database)
        await mongo.close()
        await drop_topics(settings.kafka.bootstrap_servers, settings.topics.prefix)


def client_for(application: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://tenant")


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


@pytest.fixture(scope="session")
def admin(settings: TenantServiceSettings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.admin_token}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Tenant:
    tenant_id: str
    api_key: str
    body: dict

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.api_key)

    def path(self, suffix: str = "") -> str:
        return f"/v1/tenants/{self.tenant_id}{suffix}"


@pytest.fixture
def new_tenant(client: httpx.AsyncClient, admin: dict[str, str]) -> Callable:
    """Factory: create an organisation through the API (as the platform administrator)."""

    async def make(tier: str = "basic", industry: str = "tech", name: str | None = None) -> Tenant:
        body = {
            "organization_name": name or f"Org {uuid.uuid4().hex[:6]}",
            "admin_email": "admin@example.com",
            "industry": industry,
            "subscription_tier": tier,
        }
        resp = await client.post("/v1/tenants", json=body, headers=admin)
        assert resp.status_code == 201, resp.text
        created = resp.json()
        return Tenant(created["tenant_id"], created["api_key"], created)

    return make


async def read_topic(
    kafka: str, topic: str, done: Callable[[list[ConsumerRecord]], bool], *, timeout_s: float = 30.0
) -> list[ConsumerRecord]:
    """Read ``topic`` from the beginning until ``done(records)`` holds; fail after ``timeout_s``."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        async with asyncio.timeout(timeout_s):
            while not done(records):
                batch = await consumer.getmany(timeout_ms=200)
                for part in batch.values():
                    records.extend(part)
    except TimeoutError:
        pytest.fail(f"condition not met on {topic} within {timeout_s}s; saw {len(records)} records")
    finally:
        await consumer.stop()
    return records


@pytest.fixture
def topic_reader(kafka: str) -> Callable:
    """``await topic_reader(topic, done, timeout_s=...)``: ``read_topic`` on the test broker."""
    return functools.partial(read_topic, kafka)


@pytest.fixture
def mongo_db(app: FastAPI):
    """The service's own database handle (for asserting on stored documents)."""
    return app.state.db


@pytest.fixture
async def second_replica(settings: TenantServiceSettings) -> AsyncIterator[httpx.AsyncClient]:
    """A second app instance on the same database and topics, as a second replica would be."""
    other = create_app(settings)
    async with other.router.lifespan_context(other), client_for(other) as c:
        yield c


@pytest.fixture
def record_usage(app: FastAPI) -> Callable:
    """Write usage documents the way metering does: its sink applied to ``UsageRecorded`` events.

    (The one place a tenant test imports another service: what the tenant API reads is what metering
    writes, so the documents come from metering's own writer, not from a copy of its format.)"""
    from aiokafka.structs import ConsumerRecord
    from modelyard_core.bus import Delivery
    from modelyard_metering.sink import UsageSink

    sink = UsageSink(app.state.db)
    offsets = iter(range(10**9))

    async def record(events: list) -> None:
        deliveries = []
        for event in events:
            rec = ConsumerRecord(f"test-usage-{RUN}", 0, next(offsets), 0, 0, None, b"", None, 0, 0, ())
            deliveries.append(Delivery(event, rec, {}))
        await sink.apply(deliveries)

    return record
