"""The HTTP layer in-process with the official OpenAI client: statuses, error shapes, timeout, capacity.

The bus and the credential store are replaced by small stand-ins here (these tests are about HTTP,
not delivery); the system tests run the same routes against the real broker, database and services.
"""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest
from fastapi import FastAPI
from modelyard_core.pricing import load_pricing
from modelyard_events import (
    ChoiceDelta,
    ModelClass,
    ModelError,
    OutcomeStatus,
    QueryChunk,
    QueryOutcome,
    QuerySubmitted,
    RejectCode,
    StreamTo,
)
from modelyard_ingress.api import router
from modelyard_core.limits import BodySizeLimit
from modelyard_ingress.errors import install_error_handlers
from modelyard_ingress.limits import MessageLimits
from modelyard_ingress.replies import PendingOutcomes
from modelyard_ingress.service import Ingress
from modelyard_tenancy import Principal, Role, Unauthenticated
from openai import AsyncOpenAI

KEY = "my_live_test-key"


class Keys:
    async def authenticate(self, token: str) -> Principal:
        if token == KEY:
            return Principal(Role.SERVICE, "acme", "key-1", "api_key")
        if token == "admin":
            return Principal(Role.PLATFORM_ADMIN, None, "platform-admin", "admin_token")
        raise Unauthenticated()


class ScriptedBus:
    """Answers each submitted query with ``reply(event)`` (None: never answers; a list: live batches, then
    the outcome, one every 10 ms), as the pipeline would."""

    def __init__(self, pending: PendingOutcomes, reply, spacing_s: float = 0.01) -> None:
        self.pending = pending
        self.reply = reply
        self.spacing_s = spacing_s
        self.submitted: list[tuple[str, QuerySubmitted, str]] = []

    async def publish_one(self, topic: str, event: QuerySubmitted, key: str) -> None:
        self.submitted.append((topic, event, key))
        replies = self.reply(event)
        for n, item in enumerate(replies if isinstance(replies, list) else [replies] if replies else []):
            offer = self.pending.offer_chunk if isinstance(item, QueryChunk) else self.pending.offer
            asyncio.get_running_loop().call_later(self.spacing_s * (n + 1), offer, item.model_dump_json().encode())


def completed(q: QuerySubmitted) -> QueryOutcome:
    return QueryOutcome(tenant_id=q.tenant_id, query_id=q.query_id, status=OutcomeStatus.COMPLETED, answer=f"echo: {q.text}",
                        model_class=ModelClass.SLM, model="gpt-4o-mini", confidence=0.9, input_tokens=7, output_tokens=3, cost_usd=0.0001)


def make(reply, *, capacity: int = 8, timeout_s: float = 5.0,
         spacing_s: float = 0.01) -> tuple[AsyncOpenAI, ScriptedBus, httpx.AsyncClient]:
    pending = PendingOutcomes(capacity)
    bus = ScriptedBus(pending, reply, spacing_s)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.state.authenticator = Keys()
    app.state.limits = MessageLimits(max_messages=4, max_message_chars=100)
    app.add_middleware(BodySizeLimit, max_bytes=4096, render=lambda limit: {"error": {"param": "body", "limit": limit}})
    app.state.ingress = Ingress(bus, pending, load_pricing(), "p.queries.submitted", timeout_s,  # type: ignore[arg-type]
                                stream_to=StreamTo(partition=1, instance="ingress-test"))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingress")
    return AsyncOpenAI(base_url="http://ingress/v1", api_key=KEY, http_client=http, max_retries=0), bus, http


USER = [{"role": "user", "content": "ping"}]


async def test_answer_is_published_keyed_by_tenant_and_returned_in_openai_shape():
    client, bus, _ = make(completed)
    resp = await client.chat.completions.create(model="slm", messages=USER)
    [(topic, event, key)] = bus.submitted
    assert (topic, key, event.tenant_id, event.requested_class) == ("p.queries.submitted", "acme", "acme", ModelClass.SLM)
    assert resp.id == f"chatcmpl-{event.query_id}" and resp.choices[0].message.content == "echo: ping"
    assert resp.usage.total_tokens == 10 and resp.model_extra["modelyard"]["model_class"] == "slm"


async def test_rejection_and_failure_statuses():
    def rejected(q):
        return QueryOutcome(tenant_id=q.tenant_id, query_id=q.query_id, status=OutcomeStatus.REJECTED, reject_code=RejectCode.POLICY, reason="no")

    client, _, _ = make(rejected)
    with pytest.raises(openai.PermissionDeniedError) as info:
        await client.chat.completions.create(model="auto", messages=USER)
    assert info.value.code == "policy" and info.value.response.headers["x-should-retry"] == "false"

    client, _, _ = make(lambda q: QueryOutcome(tenant_id=q.tenant_id, query_id=q.query_id, status=OutcomeStatus.FAILED, reason="down"))
    with pytest.raises(openai.InternalServerError) as failed:
        await client.chat.completions.create(model="auto", messages=USER)
    assert failed.value.status_code == 502 and failed.value.code == "model_failed"


async def test_no_outcome_is_504_at_the_requested_timeout_and_frees_its_slot():
    client, bus, _ = make(lambda q: None, timeout_s=30)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(openai.InternalServerError) as info:
        await client.chat.completions.create(model="auto", messages=USER, extra_headers={"X-Modelyard-Timeout": "0.3"})
    assert info.value.status_code == 504 and 0.3 <= loop.time() - started < 5
    assert info.value.body["query_id"] == bus.submitted[0][1].query_id
    assert len(bus.pending) == 0  # the timed-out query no longer holds a slot


async def test_full_in_flight_map_is_503_that_may_be_retried():
    client, bus, _ = make(lambda q: None, capacity=1)
    first = asyncio.create_task(client.chat.completions.create(model="auto", messages=USER, extra_headers={"X-Modelyard-Timeout": "0.5"}))
    while not bus.submitted:
        await asyncio.sleep(0.01)
    with pytest.raises(openai.InternalServerError) as info:
        await client.chat.completions.create(model="auto", messages=USER)
    assert info.value.status_code == 503 and info.value.code == "overloaded"
    assert info.value.response.headers["x-should-retry"] == "true" and len(bus.submitted) == 1
    with pytest.raises(openai.InternalServerError):
        await first


async def test_bad_requests_and_credentials_in_openai_error_shape():
    client, bus, http = make(completed)
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(model="auto", messages=[])
    assert bad.value.param == "messages"
    with pytest.raises(openai.NotFoundError) as unknown:
        await client.chat.completions.create(model="no-such-model", messages=USER)
    assert unknown.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="auto", messages=USER, extra_headers={"X-Modelyard-Timeout": "soon"})
    with pytest.raises(openai.AuthenticationError):
        await client.with_options(api_key="my_live_wrong").chat.completions.create(model="auto", messages=USER)
    with pytest.raises(openai.PermissionDeniedError) as admin:
        await client.with_options(api_key="admin").chat.completions.create(model="auto", messages=USER)
    assert admin.value.code == "tenant_required"
    assert bus.submitted == []
    resp = await http.get("/v1/nowhere", headers={"Authorization": f"Bearer {KEY}"})
    assert resp.status_code == 404 and set(resp.json()["error"]) >= {"message", "type", "param", "code"}
    assert (await http.post("/v1/chat/completions", content=b"{not json", headers={"Authorization": f"Bearer {KEY}"})).status_code == 400


async def test_limits_refuse_too_many_messages_too_long_text_and_a_large_body_naming_the_field():
    client, bus, http = make(completed)
    with pytest.raises(openai.UnprocessableEntityError) as many:
        await client.chat.completions.create(model="slm", messages=USER * 5)
    assert many.value.body["param"] == "messages" and many.value.body["code"] == "limit_exceeded"
    with pytest.raises(openai.UnprocessableEntityError) as long:
        await client.chat.completions.create(model="slm", messages=[{"role": "user", "content": "x" * 101}])
    assert long.value.body["param"] == "messages.0.content"
    with pytest.raises(openai.UnprocessableEntityError) as parts:
        await client.chat.completions.create(
            model="slm", messages=[{"role": "user", "content": [{"type": "text", "text": "y" * 60}] * 2}])
    assert parts.value.body["param"] == "messages.0.content"
    # The body is refused from its declared length, before it is read ...
    big = await http.post("/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                          json={"model": "slm", "messages": [{"role": "user", "content": "z" * 5000}]})
    assert big.status_code == 413 and big.json()["error"]["param"] == "body"

    # ... and a chunked one (no declared length) as soon as it passes the limit.
    async def chunks():
        yield b'{"model": "slm", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"w" * 1000
        yield b'"}]}'

    streamed = await http.post("/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"}, content=chunks())
    assert streamed.status_code == 413 and "body" in streamed.json()["error"]["message"]
    assert bus.submitted == []  # nothing over a limit reached the bus
    # At the limits exactly, the request goes through.
    resp = await client.chat.completions.create(model="slm", messages=[{"role": "user", "content": "q" * 100}] * 4)
    assert resp.choices[0].message.content == "echo: " + "q" * 100


def streamed(q: QuerySubmitted) -> list:
    """Two live batches of the answer, then the outcome (a final route)."""
    def chunk(seq: int, text: str) -> QueryChunk:
        return QueryChunk(tenant_id=q.tenant_id, query_id=q.query_id, run="r", seq=seq, model="gpt-4o",
                          model_class=ModelClass.LLM, deltas=[ChoiceDelta(content=text)])
    return [chunk(0, "echo: "), chunk(1, q.text), completed(q).model_copy(update={"model": "gpt-4o", "model_class": ModelClass.LLM})]


async def test_a_streamed_request_names_this_instances_partition_and_gets_the_live_tokens_then_the_finish():
    client, bus, _ = make(streamed)
    stream = await client.chat.completions.create(model="llm", messages=USER, stream=True, stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    [(_, event, _)] = bus.submitted
    assert event.stream_to == StreamTo(partition=1, instance="ingress-test")
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: ping"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.total_tokens == 10 and chunks[-1].model_extra["modelyard"]["query_id"] == event.query_id
    assert len(bus.pending) == 0 and bus.pending.streams == 0  # the waiter is gone once the stream ended


async def test_a_streamed_request_that_fails_before_any_token_gets_the_error_status_not_a_stream():
    def refused(q):
        return QueryOutcome(tenant_id=q.tenant_id, query_id=q.query_id, status=OutcomeStatus.FAILED, reason="refused",
                            error=ModelError(status=400, message="'stop' is too long", param="stop", code="invalid_value"))

    client, bus, _ = make(refused)
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="llm", messages=USER, stream=True)
    assert info.value.param == "stop" and info.value.body["query_id"] == bus.submitted[0][1].query_id
    client, _, _ = make(lambda q: None)
    with pytest.raises(openai.InternalServerError) as timed_out:
        await client.chat.completions.create(model="llm", messages=USER, stream=True, extra_headers={"X-Modelyard-Timeout": "0.2"})
    assert timed_out.value.status_code == 504


async def test_the_models_refusal_is_its_400_and_impossible_values_are_refused_here_naming_the_field():
    def refused(q):
        return QueryOutcome(tenant_id=q.tenant_id, query_id=q.query_id, status=OutcomeStatus.FAILED, reason="refused",
                            error=ModelError(status=400, message="tool_choice names no tool", param="tool_choice"))

    client, bus, _ = make(refused)
    with pytest.raises(openai.BadRequestError) as model_says:
        await client.chat.completions.create(model="auto", messages=USER)
    assert model_says.value.param == "tool_choice" and model_says.value.status_code == 400
    with pytest.raises(openai.BadRequestError) as here:
        await client.chat.completions.create(model="auto", messages=USER, temperature=3)
    assert here.value.param == "temperature" and len(bus.submitted) == 1  # refused before the bus


def long_stream(q: QuerySubmitted) -> list:
    """Eight batches and the outcome, one every 0.1 s: 0.9 s in all."""
    chunks = [QueryChunk(tenant_id=q.tenant_id, query_id=q.query_id, run="r", seq=n, model="gpt-4o",
                         model_class=ModelClass.LLM, deltas=[ChoiceDelta(content=f"w{n} ")]) for n in range(8)]
    final = completed(q).model_copy(update={"answer": "".join(f"w{n} " for n in range(8))})
    return [*chunks, final]


async def test_a_stream_may_take_longer_than_the_timeout_but_not_fall_silent_for_longer():
    client, bus, _ = make(long_stream, spacing_s=0.1)
    slow = await client.chat.completions.create(model="llm", messages=USER, stream=True,
                                                extra_headers={"X-Modelyard-Timeout": "0.5"})
    text = "".join([c.choices[0].delta.content or "" async for c in slow if c.choices])
    assert text == "".join(f"w{n} " for n in range(8))  # 0.9 s in all, never 0.5 s without a batch
    client, bus, _ = make(lambda q: long_stream(q)[:2])  # two batches, then nothing
    silent = await client.chat.completions.create(model="llm", messages=USER, stream=True,
                                                  extra_headers={"X-Modelyard-Timeout": "0.3"})
    with pytest.raises(openai.APIError) as ended:
        [c async for c in silent]
    assert ended.value.body["code"] == "timeout" and len(bus.pending) == 0
