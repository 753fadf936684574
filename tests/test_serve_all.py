"""System test of `modelyard serve --all`: router, both pools and metering in one process, on the real
broker and MongoDB-protocol server, take a query end to end, meter it once, and stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from pymongo import AsyncMongoClient

from modelyard_events import OutcomeStatus, QuerySubmitted
from modelyard_harness import Stack, TopicReader, build_stack, create_tenant, outcomes_by_query, publish_queries, unique_prefix

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def single(kafka: str, mongo_url: str) -> Iterator[Stack]:
    s = build_stack(kafka, mongo_url, unique_prefix("serve-all"), single_process=True)
    with s.running():
        yield s


async def test_one_process_answers_a_query_end_to_end_and_meters_it_once(single: Stack) -> None:
    assert set(single.processes) == {"simulator", "serve-all", "tenant"}
    tenant = await create_tenant(single.api_url, "Single Process Co", tier="basic")
    simple = QuerySubmitted(tenant_id=tenant["tenant_id"], query_id=str(uuid.uuid4()), text="How do I reset my password?")
    hard = QuerySubmitted(tenant_id=tenant["tenant_id"], query_id=str(uuid.uuid4()),
                          text="Analyze the root cause of the payments outage and design a remediation strategy")
    async with TopicReader(single.kafka, single.topic("queries.outcomes")) as outcomes:
        await publish_queries(single.kafka, single.topic("queries.submitted"), [simple, hard])
        by_query = await outcomes.wait_for(
            lambda recs: (o := outcomes_by_query(recs)) and {simple.query_id, hard.query_id} <= o.keys() and o,
            30, "both outcomes")
    s, h = by_query[simple.query_id], by_query[hard.query_id]
    assert len(s) == len(h) == 1  # one outcome each
    assert s[0].status is OutcomeStatus.COMPLETED and s[0].answer and s[0].cascade[0].model_class.value == "slm"
    assert h[0].status is OutcomeStatus.COMPLETED and h[0].model_class.value in ("llm", "llm_plus")
    calls = len(s[0].cascade) + len(h[0].cascade)

    mongo = AsyncMongoClient(single.mongo_url)
    try:
        db = mongo[single.database]

        async def metered() -> tuple[int, int]:
            docs = [d async for d in db["usage_tenant_daily"].find({"tenant_id": tenant["tenant_id"]})]
            return sum(d.get("calls", 0) for d in docs), sum(d.get("input_tokens", 0) for d in docs)

        deadline = time.monotonic() + 30
        while (got := await metered())[0] < calls and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert got == (calls, s[0].input_tokens + h[0].input_tokens)  # every model call metered once
    finally:
        await mongo.close()

    # SIGTERM: the four roles stop in order and the process exits cleanly
    assert single.processes["serve-all"].stop(timeout_s=30) == 0
