"""Helpers system tests share: talk to the tenant API and read and write topics directly."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from modelyard_core.bus import produce_raw
from modelyard_events import QueryOutcome, QuerySubmitted

ADMIN = {"Authorization": "Bearer dev-admin-token"}


async def create_tenant(api_url: str, name: str, *, industry: str = "tech", tier: str = "basic") -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as http:
        resp = await http.post("/v1/tenants", headers=ADMIN, json={
            "organization_name": name, "admin_email": f"admin@{name.lower().replace(' ', '')}.example",
            "industry": industry, "subscription_tier": tier,
        })
        resp.raise_for_status()
        return resp.json()


class TopicReader:
    """Reads a topic from its beginning without a consumer group, keeping every decoded record."""

    def __init__(self, kafka: str, topic: str) -> None:
        self.kafka = kafka
        self.topic = topic
        self.records: list = []
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> TopicReader:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.kafka, enable_auto_commit=False, group_id=None,
                                          auto_offset_reset="earliest")
        await self._consumer.start()
        # No group: the subscription is assigned every partition, read from the beginning.
        self._consumer.subscribe([self.topic])
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=100)
            for records in batch.values():
                self.records.extend(records)

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
        if self._consumer:
            await self._consumer.stop()

    async def wait_for(self, predicate, timeout_s: float, what: str):
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate(self.records)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what} on {self.topic} "
                                   f"({len(self.records)} records read)")
            await asyncio.sleep(0.05)


def outcomes_by_query(records: list) -> dict[str, list[QueryOutcome]]:
    out: dict[str, list[QueryOutcome]] = defaultdict(list)
    for r in records:
        o = QueryOutcome.model_validate_json(r.value)
        out[o.query_id].append(o)
    return out


async def publish_raw(kafka: str, topic: str, values: list[tuple[bytes | None, bytes | None]]) -> None:
    await produce_raw(kafka, topic, values)


async def publish_queries(kafka: str, topic: str, queries: list[QuerySubmitted]) -> None:
    await publish_raw(kafka, topic, [(q.tenant_id.encode(), q.model_dump_json().encode()) for q in queries])
