"""System test of the walking skeleton: queries through real Kafka, real services, real MongoDB protocol.

Everything here is real: the Kafka broker, FerretDB (or MongoDB), and every service as its own
`modelyard` process. Only the model is simulated (the model simulator, an OpenAI-compatible server).
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from pymongo import AsyncMongoClient

from modelyard_events import DeadLetter, OutcomeStatus, QuerySubmitted, RejectCode
from modelyard_harness import TopicReader, create_tenant, outcomes_by_query, produce_raw, publish_queries


pytestmark = pytest.mark.system



async def test_query_gets_outcome_and_usage_document(stack):
    tenant = await create_tenant(stack.api_url, "Skeleton Co", industry="tech", tier="basic")
    tenant_id = tenant["tenant_id"]
    simple = QuerySubmitted(tenant_id=tenant_id, query_id=str(uuid.uuid4()), text="What is the status of ticket #123?")
    hard = QuerySubmitted(tenant_id=tenant_id, query_id=str(uuid.uuid4()),
                          text="Analyze the root cause of the database outage and design a recovery strategy")
    async with TopicReader(stack.kafka, stack.topic("queries.outcomes")) as outcomes:
        await publish_queries(stack.kafka, stack.topic("queries.submitted"), [simple, hard])
        by_query = await outcomes.wait_for(
            lambda recs: (o := outcomes_by_query(recs)) and {simple.query_id, hard.query_id} <= o.keys() and o,
            60, "both outcomes")
    s, h = by_query[simple.query_id][0], by_query[hard.query_id][0]
    assert s.status is OutcomeStatus.COMPLETED and s.answer
    assert s.cascade[0].model_class.value == "slm"
    assert h.status is OutcomeStatus.COMPLETED and h.model_class.value in ("llm", "llm_plus")
    expected_calls = len(s.cascade) + len(h.cascade)

    mongo = AsyncMongoClient(stack.mongo_url)
    try:
        db = mongo[stack.database]

        async def metered() -> int:
            docs = [d async for d in db["usage_tenant_daily"].find({"tenant_id": tenant_id})]
            return sum(d.get("calls", 0) for d in docs)

        import time, asyncio
        deadline = time.monotonic() + 60
        while (calls := await metered()) < expected_calls and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert calls == expected_calls
        daily = [d async for d in db["usage_daily"].find({"tenant_id": tenant_id})]
        assert {d["model"] for d in daily} >= {s.cascade[0].model}
        assert sum(d["input_tokens"] for d in daily) == s.input_tokens + h.input_tokens
    finally:
        await mongo.close()


async def test_unknown_tenant_is_rejected(stack):
    q = QuerySubmitted(tenant_id="no-such-tenant", query_id=str(uuid.uuid4()), text="hello?")
    async with TopicReader(stack.kafka, stack.topic("queries.outcomes")) as outcomes:
        await publish_queries(stack.kafka, stack.topic("queries.submitted"), [q])
        by_query = await outcomes.wait_for(lambda r: (o := outcomes_by_query(r)).get(q.query_id) and o, 60, "rejection")
    o = by_query[q.query_id][0]
    assert o.status is OutcomeStatus.REJECTED and o.reject_code is RejectCode.UNKNOWN_TENANT


async def test_bad_messages_go_to_dead_letters_and_the_next_query_completes(stack):
    tenant = await create_tenant(stack.api_url, "Badinput Ltd")
    submitted = stack.topic("queries.submitted")
    good = QuerySubmitted(tenant_id=tenant["tenant_id"], query_id=str(uuid.uuid4()), text="How to reset my password?")
    not_json = b"{this is not json"
    invalid = json.dumps({"type": "modelyard.query.submitted.v1", "tenant_id": tenant["tenant_id"], "query_id": "x"}).encode()
    async with TopicReader(stack.kafka, stack.topic("deadletter.router")) as dlq, \
            TopicReader(stack.kafka, stack.topic("queries.outcomes")) as outcomes:
        await produce_raw(stack.kafka, submitted, [(b"k", not_json), (b"k", invalid)])
        await publish_queries(stack.kafka, submitted, [good])
        await outcomes.wait_for(lambda r: good.query_id in outcomes_by_query(r), 60, "the good query's outcome")
        letters = await dlq.wait_for(lambda r: len(r) >= 2 and r, 30, "two dead letters")
    parsed = [DeadLetter.model_validate_json(r.value) for r in letters]
    assert {base64.b64decode(p.value_base64) for p in parsed} == {not_json, invalid}
    by_value = {base64.b64decode(p.value_base64): p for p in parsed}
    assert by_value[not_json].error_type == "decode"
    assert by_value[invalid].error_type == "schema" and "text" in by_value[invalid].error
    assert all(p.source_topic == submitted and p.offset >= 0 for p in parsed)
