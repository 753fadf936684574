"""Rate limits end to end (issue 20): 429 with Retry-After at the OpenAI-compatible ingress, a rejected
outcome naming the limit and the wait for Kafka-native publishers, exact across router replicas.

The whole pipeline as processes with two routers in one consumer group and the basic tier's rate
lowered to 3 requests a minute (``MODELYARD_RATE_LIMITS__TIERS__BASIC__REQUESTS_PER_MINUTE``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import openai
import pytest
from modelyard_events import OutcomeStatus, QuerySubmitted, RejectCode
from modelyard_harness import Stack, TopicReader, build_stack, create_tenant, outcomes_by_query, publish_queries, unique_prefix

pytestmark = pytest.mark.system

RPM = 3


@pytest.fixture(scope="module")
def limited(kafka: str, mongo_url: str) -> Iterator[Stack]:
    s = build_stack(kafka, mongo_url, unique_prefix("ratelimits"),
                    extra_env={"MODELYARD_RATE_LIMITS__TIERS__BASIC__REQUESTS_PER_MINUTE": str(RPM)})
    s.add("router-2", ["router"], "/readyz")  # a second replica in the same group
    s.add("ingress", ["ingress"], "/readyz")
    with s.running():
        yield s


async def test_over_its_rate_a_tenant_gets_429_with_retry_after(limited):
    tenant = await create_tenant(limited.api_url, "Hasty Basic", tier="basic")
    ingress = limited.processes["ingress"].ready_url.removesuffix("/readyz")
    body = {"model": "auto", "messages": [{"role": "user", "content": "What is the status of ticket #42?"}]}
    async with httpx.AsyncClient(base_url=ingress, timeout=60, headers={"Authorization": f"Bearer {tenant['api_key']}"}) as http:
        answers = []
        for _ in range(RPM + 2):  # one after the other: the first RPM pass, then the rate binds
            answers.append(await http.post("/v1/chat/completions", json=body))
    assert [a.status_code for a in answers] == [200] * RPM + [429, 429], [a.text for a in answers]
    refused = answers[RPM]
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert error["message"].startswith(f"rate limit of {RPM} requests per minute (basic tier) exceeded; retry after ")
    assert 0 < int(refused.headers["Retry-After"]) <= 60 and refused.headers["x-should-retry"] == "true"

    # The official client sees its usual exception, with the same wait.
    client = openai.AsyncOpenAI(base_url=f"{ingress}/v1", api_key=tenant["api_key"], max_retries=0)
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="auto", messages=body["messages"])
    assert caught.value.response.headers["retry-after"]
    await client.close()


async def test_kafka_publishers_get_a_rejection_naming_the_limit_exactly_across_replicas(limited):
    tenant_id = (await create_tenant(limited.api_url, "Hasty Upstream", tier="basic"))["tenant_id"]
    t0 = datetime.now(UTC)

    def wave(n: int, at: datetime) -> list[QuerySubmitted]:
        return [QuerySubmitted(tenant_id=tenant_id, query_id=str(uuid.uuid4()), text="Is ticket #7 closed?", time=at)
                for _ in range(n)]

    first, second = wave(5, t0), wave(4, t0 + timedelta(seconds=1))
    async with TopicReader(limited.kafka, limited.topic("queries.outcomes")) as outcomes:
        await publish_queries(limited.kafka, limited.topic("queries.submitted"), first)
        await outcomes.wait_for(lambda recs: {q.query_id for q in first} <= outcomes_by_query(recs).keys(), 90, "first wave")
        # One replica goes away; the other continues the partition's state from the admission log.
        limited.processes["router"].stop()
        await publish_queries(limited.kafka, limited.topic("queries.submitted"), second)
        done = await outcomes.wait_for(lambda recs: {q.query_id for q in first + second} <= (o := outcomes_by_query(recs)).keys() and o,
                                       120, "second wave")
    limited.restart("router")
    verdicts = [done[q.query_id][0] for q in first + second]
    admitted = [o for o in verdicts if o.status is not OutcomeStatus.REJECTED]
    rejected = [o for o in verdicts if o.status is OutcomeStatus.REJECTED]
    assert len(admitted) == RPM and [o.query_id for o in admitted] == [q.query_id for q in first[:RPM]]
    assert {o.reject_code for o in rejected} == {RejectCode.RATE_LIMITED}
    assert {o.reason for o in rejected} == {f"rate limit of {RPM} requests per minute (basic tier) exceeded"}
    # One request every 20 s from t0 + 60 s of burst: the wait shrinks as the submission times move on.
    assert [o.retry_after_s for o in rejected] == [20.0, 20.0, 19.0, 19.0, 19.0, 19.0]
