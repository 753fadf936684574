"""The ingress end to end: the official OpenAI client against the real stack (Kafka, FerretDB/MongoDB,
router, inference pools, metering, tenant API, simulator, ingress — each its own process)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import jwt
import openai
import pytest
from modelyard_events import TIER_LIMITS, Industry, OutcomeStatus, QuerySubmitted, TenantSnapshot, Tier
from modelyard_usage import TENANT_DAILY
from openai import AsyncOpenAI
from pymongo import AsyncMongoClient
from modelyard_harness import ADMIN, Stack, TopicReader, build_stack, create_tenant, outcomes_by_query, produce_raw, publish_queries, unique_prefix, wait_until


pytestmark = pytest.mark.system

TIMEOUT_HEADER = "X-Modelyard-Timeout"


@dataclass
class Deployment:
    stack: Stack
    ingress_url: str

    def client(self, api_key: str, **kwargs) -> AsyncOpenAI:
        return AsyncOpenAI(base_url=f"{self.ingress_url}/v1", api_key=api_key, **kwargs)

    def topic(self, name: str) -> str:
        return self.stack.topic(name)


@pytest.fixture(scope="module")
def deployment(kafka: str, mongo_url: str) -> Iterator[Deployment]:
    prefix = unique_prefix("ingress")
    stack = build_stack(kafka, mongo_url, prefix)
    # ready = following the outcomes topic; it pauses after 1 s without a waiting request (5 s by
    # default), so the tests below also cover requests that arrive at a paused reader.
    ingress = stack.add("ingress", ["ingress"], "/readyz", MODELYARD_INGRESS_IDLE_PAUSE_S="1")
    stack.start(*stack.processes)
    try:
        yield Deployment(stack, ingress.ready_url.removesuffix("/readyz"))
    finally:
        stack.stop()


@pytest.fixture(scope="module")
async def tenant(deployment: Deployment) -> dict:
    return await create_tenant(deployment.stack.api_url, "Ingress Answers Inc", tier="basic")


async def test_openai_client_gets_an_answer_with_usage_and_modelyard_details(deployment, tenant):
    client = deployment.client(tenant["api_key"])
    async with TopicReader(deployment.stack.kafka, deployment.topic("queries.submitted")) as submitted:
        resp = await client.chat.completions.create(
            model="auto",
            messages=[{"role": "system", "content": "You are a helpdesk."}, {"role": "user", "content": "How do I reset my password?"}],
            metadata={"ticket": "T-1"},
            extra_body={"user_role": "engineer", "tenant_id": "someone-else"},
        )
        query_id = resp.id.removeprefix("chatcmpl-")
        events = await submitted.wait_for(
            lambda recs: [q for q in (QuerySubmitted.model_validate_json(r.value) for r in recs) if q.query_id == query_id],
            30, "the submitted query")
    answer = resp.choices[0].message.content
    assert answer and resp.choices[0].finish_reason == "stop"
    extra = resp.model_extra["modelyard"]
    assert extra["query_id"] == query_id and extra["status"] == "completed"
    assert extra["model_class"] in ("slm", "llm", "llm_plus") and resp.model == extra["model"]
    assert len(extra["cascade"]) >= 1 and extra["cascade"][-1]["model"] == resp.model
    assert resp.usage.prompt_tokens == sum(s["input_tokens"] for s in extra["cascade"]) > 0
    assert resp.usage.completion_tokens == sum(s["output_tokens"] for s in extra["cascade"]) > 0
    assert extra["cost_usd"] == pytest.approx(sum(s["cost_usd"] for s in extra["cascade"])) and extra["cost_usd"] > 0

    # It went over the bus, as the key's tenant (a tenant named in the body changes nothing).
    [event] = events
    assert event.tenant_id == tenant["tenant_id"]
    assert event.text == "How do I reset my password?" and [m.role for m in event.history] == ["system"]
    assert event.user_role == "engineer" and event.metadata == {"ticket": "T-1"}
    record = next(r for r in submitted.records if QuerySubmitted.model_validate_json(r.value).query_id == query_id)
    assert record.key == tenant["tenant_id"].encode()


def following_outcomes(deployment: Deployment, gauge: str = "modelyard_ingress_following_outcomes") -> float | None:
    """The ingress's ``modelyard_ingress_following_outcomes`` gauge, or another (None until it is exported)."""
    text = httpx.get(f"{deployment.ingress_url}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(f"{gauge} "):
            return float(line.split()[1])
    return None


async def wait_for_gauge(deployment: Deployment, value: float, timeout_s: float,
                         gauge: str = "modelyard_ingress_following_outcomes") -> None:
    await asyncio.to_thread(wait_until, lambda: following_outcomes(deployment, gauge) == value, timeout_s,
                            f"{gauge} == {value}", 0.1)


async def test_an_idle_ingress_stops_reading_outcomes_and_the_next_request_still_gets_its_answer(deployment, tenant):
    client = deployment.client(tenant["api_key"])
    await wait_for_gauge(deployment, 0.0, 30)  # nobody waiting: paused
    # Outcomes of Kafka-native queries keep coming while it is paused; the reader skips past them.
    native = [QuerySubmitted(tenant_id=tenant["tenant_id"], query_id=str(uuid.uuid4()), text="Where is my invoice?")
              for _ in range(5)]
    async with TopicReader(deployment.stack.kafka, deployment.topic("queries.outcomes")) as outcomes:
        await publish_queries(deployment.stack.kafka, deployment.topic("queries.submitted"), native)
        await outcomes.wait_for(lambda recs: {q.query_id for q in native} <= outcomes_by_query(recs).keys(), 60,
                                "the Kafka-native outcomes")
    # A request at the paused reader: it resumes at the topic's end before publishing, so the answer arrives.
    resp = await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "What are your opening hours?"}])
    assert resp.choices[0].message.content and resp.model_extra["modelyard"]["status"] == "completed"
    await wait_for_gauge(deployment, 0.0, 30)  # and it pauses again once nobody waits


async def test_a_streamed_request_at_a_paused_stream_reader_still_gets_its_tokens_live(deployment, tenant):
    client = deployment.client(tenant["api_key"])
    await wait_for_gauge(deployment, 0.0, 30, "modelyard_ingress_following_streams")  # nobody streaming: paused
    stream = await client.chat.completions.create(model="llm", messages=[{"role": "user", "content": "Explain DNS caching"}],
                                                  stream=True)
    content = [c.choices[0].delta.content for c in [c async for c in stream] if c.choices and c.choices[0].delta.content]
    # A pinned class is a final route: live batches (the first token alone, then the rest), not one held chunk.
    assert len(content) >= 2 and "".join(content)
    await wait_for_gauge(deployment, 0.0, 30, "modelyard_ingress_following_streams")


async def test_model_pins_the_class_or_the_model_and_streams_and_jwts_work(deployment, tenant):
    client = deployment.client(tenant["api_key"])
    ids = {m.id async for m in client.models.list()}
    assert {"auto", "slm", "llm", "llm_plus", "gpt-4o-mini"} <= ids

    pinned_class = await client.chat.completions.create(model="llm", messages=[{"role": "user", "content": "What are your support hours?"}])
    assert pinned_class.model_extra["modelyard"]["cascade"][0]["model_class"] == "llm"
    pinned_model = await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "What are your support hours?"}])
    assert pinned_model.model_extra["modelyard"]["cascade"][0]["model"] == "gpt-4o"

    async with httpx.AsyncClient(base_url=deployment.stack.api_url, timeout=10) as http:
        token = (await http.post("/v1/auth/token", headers={"Authorization": f"Bearer {tenant['api_key']}"})).raise_for_status().json()
    stream = await deployment.client(token["access_token"]).chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Where is my invoice?"}], stream=True, stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


async def test_unknown_foreign_or_missing_credentials_are_denied(deployment, tenant):
    chat = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}
    foreign_jwt = jwt.encode({"iss": "modelyard-tenant", "sub": "k", "tenant_id": tenant["tenant_id"], "role": "tenant_admin",
                              "iat": int(time.time()), "exp": int(time.time()) + 600}, "another-deployment's-secret-0123456789abcdef")
    for key in ("my_live_" + "x" * 40, foreign_jwt, "not-a-key"):
        with pytest.raises(openai.AuthenticationError) as info:
            await deployment.client(key, max_retries=0).chat.completions.create(**chat)
        assert info.value.status_code == 401 and info.value.code == "invalid_api_key"
    async with httpx.AsyncClient(base_url=deployment.ingress_url, timeout=10) as http:
        missing = await http.post("/v1/chat/completions", json=chat)
        assert missing.status_code == 401 and missing.json()["error"]["type"] == "invalid_request_error"
        assert (await http.get("/v1/models")).status_code == 401
    # The platform administrator has no tenant to bill: refused rather than attributed to anyone.
    with pytest.raises(openai.PermissionDeniedError) as denied:
        await deployment.client(ADMIN["Authorization"].removeprefix("Bearer "), max_retries=0).chat.completions.create(**chat)
    assert denied.value.code == "tenant_required"


async def ask_until(client: AsyncOpenAI, error: type[openai.APIStatusError], timeout_s: float = 30) -> openai.APIStatusError:
    """Ask until the answer is ``error``: the router learns of tenant changes from the snapshot topic,
    a moment after the tenant service publishes them. Answers before that are fine."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "One more, please?"}])
        except error as exc:
            return exc
        assert time.monotonic() < deadline, f"no {error.__name__} within {timeout_s:.0f} s"
        await asyncio.sleep(0.2)


async def test_a_tenant_over_its_daily_quota_gets_429(deployment):
    t = await create_tenant(deployment.stack.api_url, "Ingress Quota GmbH", tier="basic")
    # No tier sells fewer than 1,000 calls a day. So that the test need not spend them, it publishes the
    # snapshot the tenant service would publish for a plan of 0 calls a day (a newer version of this
    # tenant's snapshot, per the event contract); the router enforces whatever limit the snapshot says.
    snapshot = TenantSnapshot(
        tenant_id=t["tenant_id"], version=1_000_000, name=t["organization_name"], tier=Tier.BASIC, industry=Industry(t["industry"]),
        limits=TIER_LIMITS[Tier.BASIC].model_copy(update={"api_calls_per_day": 0}),
    )
    await produce_raw(deployment.stack.kafka, deployment.topic("tenants.snapshots"),
                      [(t["tenant_id"].encode(), snapshot.model_dump_json().encode())])

    client = deployment.client(t["api_key"])  # default max_retries: the 429 must say "do not retry"
    rejected = await ask_until(client, openai.RateLimitError)
    assert rejected.status_code == 429 and rejected.code == "quota" and "limit" in rejected.body["message"]
    assert rejected.response.request.headers["x-stainless-retry-count"] == "0"  # the client did not retry
    assert rejected.response.headers["x-should-retry"] == "false"
    query_id = rejected.body["query_id"]
    async with TopicReader(deployment.stack.kafka, deployment.topic("queries.outcomes")) as outcomes:
        [outcome] = await outcomes.wait_for(lambda recs: outcomes_by_query(recs).get(query_id), 30, "the rejection")
    assert outcome.status is OutcomeStatus.REJECTED and outcome.reason == rejected.body["message"]


async def test_a_suspended_tenant_gets_403(deployment):
    t = await create_tenant(deployment.stack.api_url, "Ingress Suspended SA", tier="basic")
    async with httpx.AsyncClient(base_url=deployment.stack.api_url, timeout=10) as http:
        (await http.patch(f"/v1/tenants/{t['tenant_id']}", headers=ADMIN, json={"status": "suspended"})).raise_for_status()
    denied = await ask_until(deployment.client(t["api_key"]), openai.PermissionDeniedError)
    assert denied.status_code == 403 and denied.code == "suspended"


async def test_no_outcome_within_the_timeout_is_504_and_the_late_answer_is_still_metered(deployment):
    t = await create_tenant(deployment.stack.api_url, "Ingress Patience Ltd", tier="basic")
    sim = httpx.AsyncClient(base_url=deployment.stack.simulator_url.removesuffix("/v1"), timeout=10)
    try:
        # Every model now takes 2.5 s; the request gives up after 1 s.
        (await sim.post("/admin/config", json={"all_models": {"latency_ms": 2500, "latency_distribution": "fixed"}})).raise_for_status()
        async with TopicReader(deployment.stack.kafka, deployment.topic("queries.outcomes")) as outcomes:
            started = time.monotonic()
            with pytest.raises(openai.InternalServerError) as info:
                await deployment.client(t["api_key"]).chat.completions.create(
                    model="auto", messages=[{"role": "user", "content": "What are your support hours?"}],
                    extra_headers={TIMEOUT_HEADER: "1"})
            waited = time.monotonic() - started
            assert info.value.status_code == 504 and info.value.code == "timeout"
            assert 1.0 <= waited < 2.5, waited  # answered at the deadline, not retried, not after the model
            query_id = info.value.body["query_id"]
            late = (await outcomes.wait_for(lambda recs: outcomes_by_query(recs).get(query_id), 30, "the late outcome"))[0]
    finally:
        await sim.post("/admin/reset", json={"stats": False})
        await sim.aclose()
    assert late.status is OutcomeStatus.COMPLETED and late.tenant_id == t["tenant_id"]

    mongo = AsyncMongoClient(deployment.stack.mongo_url)
    try:
        usage = mongo[deployment.stack.database][TENANT_DAILY]
        deadline = time.monotonic() + 30
        while (calls := sum([d.get("calls", 0) async for d in usage.find({"tenant_id": t["tenant_id"]})])) < len(late.cascade):
            assert time.monotonic() < deadline, f"metered {calls} of {len(late.cascade)} calls"
            await asyncio.sleep(0.1)
        assert calls == len(late.cascade)
    finally:
        await mongo.close()
