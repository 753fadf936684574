"""Issue 19: an application written against OpenAI's API works against modelyard by changing the base URL
and key. The official ``openai`` SDK, sync and async, streamed and not, against the real stack (Kafka,
FerretDB, router, both inference pools, metering, tenant API, ingress, and the model simulator, which
honours every parameter as a model would). docs/openai-compatibility.md names the test behind each field.

Simulator settings of this deployment: gpt-4o streams at 150 tokens/s after its first token (so live
streaming is visible); everything else is the simulator's default.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from aiokafka import TopicPartition
from modelyard_core.kafka_clients import make_consumer
from modelyard_core.settings import KafkaSettings
from modelyard_events import Generation, QueryChunk, QueryOutcome, QuerySubmitted, StreamTo
from modelyard_harness import Stack, TopicReader, build_stack, create_tenant, outcomes_by_query, publish_queries, unique_prefix
from openai import AsyncOpenAI, OpenAI

pytestmark = pytest.mark.system

STREAM_RATE = 150  # tokens/s of gpt-4o in this deployment
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
                   "required": ["city"], "additionalProperties": False}}}
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris today?"}]
PERSON = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
          "required": ["name", "age"], "additionalProperties": False}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "person", "strict": True, "schema": PERSON}}
IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/router.png", "detail": "high"}}
LOOK = [{"role": "user", "content": [{"type": "text", "text": "What is wrong with the router in this photo?"}, IMAGE]}]


@dataclass
class Deployment:
    stack: Stack
    url: str
    key: str
    tenant_id: str

    def sync(self, **kwargs: Any) -> OpenAI:
        return OpenAI(base_url=f"{self.url}/v1", api_key=self.key, **kwargs)

    def client(self, **kwargs: Any) -> AsyncOpenAI:
        return AsyncOpenAI(base_url=f"{self.url}/v1", api_key=self.key, **kwargs)

    async def knobs(self, models: dict[str, dict[str, Any]]) -> None:
        """Patch the simulator's models (POST /admin/config)."""
        async with httpx.AsyncClient(base_url=self.stack.simulator_url.removesuffix("/v1"), timeout=10) as sim:
            (await sim.post("/admin/config", json={"models": models})).raise_for_status()


@pytest.fixture(scope="module")
def deployment(kafka: str, mongo_url: str) -> Iterator[Deployment]:
    stack = build_stack(kafka, mongo_url, unique_prefix("openai"), simulator_env={
        "MODELYARD_SIMULATOR_MODELS": json.dumps({"gpt-4o": {"stream_tokens_per_s": STREAM_RATE}})})
    ingress = stack.add("ingress", ["ingress"], "/readyz")
    stack.start(*stack.processes)
    try:
        tenant = asyncio.run(create_tenant(stack.api_url, "OpenAI Drop-in Ltd", tier="enterprise"))
        yield Deployment(stack, ingress.ready_url.removesuffix("/readyz"), tenant["api_key"], tenant["tenant_id"])
    finally:
        stack.stop()


def extension(resp: Any) -> dict[str, Any]:
    return resp.model_extra["modelyard"]


# --- /v1/models and errors ------------------------------------------------------------------------------


def test_models_are_listed_and_retrieved_and_errors_keep_openais_shape(deployment):
    client = deployment.sync(max_retries=0)
    ids = [m.id for m in client.models.list()]
    assert ids[:4] == ["auto", "slm", "llm", "llm_plus"] and {"gpt-4o", "gpt-4o-mini", "llama-3.1-8b-instruct"} <= set(ids)
    assert client.models.retrieve("gpt-4o").owned_by == "modelyard"
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("gpt-17")
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="auto", messages=ASK_WEATHER, temperature=3)
    assert bad.value.param == "temperature" and bad.value.type == "invalid_request_error"
    with pytest.raises(openai.AuthenticationError) as denied:
        OpenAI(base_url=f"{deployment.url}/v1", api_key="my_live_" + "x" * 40, max_retries=0).models.list()
    assert denied.value.code == "invalid_api_key" and set(denied.value.body) >= {"message", "type", "param", "code"}


# --- generation parameters ------------------------------------------------------------------------------


def test_generation_parameters_reach_the_model_sync(deployment):
    client = deployment.sync()
    cut = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Explain VPN split tunnelling"}],
                                         max_tokens=7)
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 7
    full = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Explain VPN split tunnelling"}],
                                          seed=5, temperature=0)
    words = full.choices[0].message.content.split()
    stop = " ".join(words[3:5])
    stopped = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Explain VPN split tunnelling"}],
                                             seed=5, temperature=0, stop=[stop])
    assert stopped.choices[0].finish_reason == "stop" and stop not in stopped.choices[0].message.content
    assert full.choices[0].message.content.startswith(stopped.choices[0].message.content)
    again = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Explain VPN split tunnelling"}],
                                           seed=5, temperature=0, top_p=0.5, presence_penalty=0.5, frequency_penalty=0.5,
                                           logit_bias={"50256": -100}, user="end-user-1",
                                           extra_body={"top_k": 4, "store": False})  # unknown fields: accepted, ignored
    assert again.choices[0].message.content == full.choices[0].message.content  # seed at temperature 0 repeats
    logged = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Say hello"}],
                                            logprobs=True, top_logprobs=2, max_completion_tokens=20)
    entries = logged.choices[0].logprobs.content
    assert entries and all(len(e.top_logprobs) == 2 for e in entries)
    plain = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Say hello"}])
    assert plain.choices[0].logprobs is None  # the worker reads them for judging; the caller did not ask


async def test_parameters_reach_the_escalation_too_and_a_schema_failure_escalates(deployment):
    client = deployment.client()
    await deployment.knobs({"gpt-4o-mini": {"invalid_json_rate": 1.0}})  # every structured answer spoilt
    try:
        resp = await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "Extract the person in JSON: Ada Lovelace, 36"}],
            response_format=JSON_SCHEMA, n=2, max_completion_tokens=200, temperature=0.5, seed=9)
    finally:
        await deployment.knobs({"gpt-4o-mini": {"invalid_json_rate": 0.0}})
    ext = extension(resp)
    assert ext["escalated"] and [s["model"] for s in ext["cascade"]] == ["gpt-4o-mini", "gpt-4o"]
    assert any("json: " in r for r in ext["cascade"][0]["reasons"]), ext["cascade"][0]["reasons"]
    assert len(resp.choices) == 2  # n reached the escalated call
    for choice in resp.choices:
        jsonschema.validate(json.loads(choice.message.content), PERSON)


async def test_a_kafka_native_publisher_sets_parameters_and_streams_too(deployment):
    """No HTTP: a QuerySubmitted with generation and stream_to; the chunks come to the named partition."""
    stack = deployment.stack
    q = QuerySubmitted(tenant_id=deployment.tenant_id, query_id=str(uuid.uuid4()), text="Explain what a subnet mask does",
                       requested_model="gpt-4o", generation=Generation(max_tokens=12, seed=1),
                       stream_to=StreamTo(partition=0, instance="kafka-native"))
    consumer = make_consumer(KafkaSettings(bootstrap_servers=stack.kafka), group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(stack.topic("queries.streams"), 0)])
        async with TopicReader(stack.kafka, stack.topic("queries.outcomes")) as outcomes:
            await publish_queries(stack.kafka, stack.topic("queries.submitted"), [q])
            [outcome] = await outcomes.wait_for(lambda recs: outcomes_by_query(recs).get(q.query_id), 60, "the outcome")
        chunks: list[QueryChunk] = []
        deadline = time.monotonic() + 30
        while not any(c.done for c in chunks) and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                chunks += [c for r in records if (c := QueryChunk.model_validate_json(r.value)).query_id == q.query_id]
    finally:
        await consumer.stop()
    assert isinstance(outcome, QueryOutcome) and outcome.choices[0].finish_reason == "length" and outcome.output_tokens == 12
    assert chunks and "".join(d.content or "" for c in chunks for d in c.deltas) == outcome.answer


# --- streaming ------------------------------------------------------------------------------------------


async def test_a_final_route_streams_tokens_as_they_are_generated(deployment):
    client = deployment.client()
    started = time.monotonic()
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Describe how to rotate the API keys of a service"}],
        stream=True, stream_options={"include_usage": True})
    arrivals, chunks = [], []
    async for chunk in stream:
        chunks.append(chunk)
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    tokens = chunks[-1].usage.completion_tokens
    # Streamed at the model's pace, not at once: the content spans most of the generation time.
    assert len(arrivals) >= 5 and arrivals[-1] - arrivals[0] >= 0.5 * (tokens - 1) / STREAM_RATE
    assert chunks[-1].choices == [] and extension(chunks[-1])["model"] == "gpt-4o" and len(text) > 20
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert all(c.usage is None for c in chunks[:-1])


def test_a_held_slm_answer_streams_once_accepted_sync(deployment):
    client = deployment.sync()
    chunks = list(client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "What are your opening hours?"}],
                                                 stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    ext = extension(chunks[-1])
    assert text and ext["model_class"] == "slm" and ext["status"] == "completed" and not ext["escalated"]
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[0].choices[0].delta.role == "assistant"


async def test_streamed_requests_the_model_refuses_get_its_400_before_any_chunk(deployment):
    client = deployment.client(max_retries=0)
    with pytest.raises(openai.BadRequestError) as no_json_word:  # json_object needs the word JSON in the messages
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Name a colour"}],
                                             response_format={"type": "json_object"}, stream=True)
    assert no_json_word.value.param == "messages" and no_json_word.value.body["query_id"]
    with pytest.raises(openai.BadRequestError) as unknown_tool:
        await client.chat.completions.create(model="auto", messages=ASK_WEATHER, tools=[WEATHER],
                                             tool_choice={"type": "function", "function": {"name": "book_flight"}})
    assert unknown_tool.value.param == "tool_choice"
    assert extension_of_error(unknown_tool.value)["status"] == "failed"


def extension_of_error(exc: openai.APIStatusError) -> dict[str, Any]:
    return exc.body["modelyard"]


# --- tools ----------------------------------------------------------------------------------------------


async def test_tools_round_trip_async(deployment):
    client = deployment.client()
    first = await client.chat.completions.create(model="auto", messages=ASK_WEATHER, tools=[WEATHER],
                                                 tool_choice="auto", parallel_tool_calls=False)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])
    follow_up = [*ASK_WEATHER, choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 12, "sky": "cloudy"})}]
    answer = await client.chat.completions.create(model="auto", messages=follow_up, tools=[WEATHER])
    assert answer.choices[0].finish_reason == "stop" and answer.choices[0].message.content


async def test_tool_calls_stream_live_and_held(deployment):
    client = deployment.client()
    for model in ("gpt-4o", "auto"):  # a final route (live) and an SLM answer the cascade checks first (held)
        stream = await client.chat.completions.create(model=model, messages=ASK_WEATHER, tools=[WEATHER],
                                                      tool_choice="required", stream=True)
        calls: dict[int, dict[str, str]] = {}
        finish = None
        async for chunk in stream:
            for c in chunk.choices:
                for delta in c.delta.tool_calls or ():
                    entry = calls.setdefault(delta.index, {"name": "", "arguments": "", "id": ""})
                    entry["id"] += delta.id or ""
                    entry["name"] += (delta.function.name or "") if delta.function else ""
                    entry["arguments"] += (delta.function.arguments or "") if delta.function else ""
                finish = c.finish_reason or finish
        assert finish == "tool_calls" and calls, model
        for entry in calls.values():
            assert entry["name"] == "get_weather" and entry["id"].startswith("call_")
            jsonschema.validate(json.loads(entry["arguments"]), WEATHER["function"]["parameters"])


async def test_a_tool_call_with_invalid_arguments_escalates(deployment):
    client = deployment.client()
    await deployment.knobs({"gpt-4o-mini": {"invalid_tool_args_rate": 1.0}})
    try:
        resp = await client.chat.completions.create(model="auto", messages=ASK_WEATHER, tools=[WEATHER], tool_choice="required")
    finally:
        await deployment.knobs({"gpt-4o-mini": {"invalid_tool_args_rate": 0.0}})
    ext = extension(resp)
    assert [s["model"] for s in ext["cascade"]] == ["gpt-4o-mini", "gpt-4o"]
    assert any(r.startswith("tool_call: get_weather: arguments do not") for r in ext["cascade"][0]["reasons"])
    jsonschema.validate(json.loads(resp.choices[0].message.tool_calls[0].function.arguments), WEATHER["function"]["parameters"])


def test_the_deprecated_functions_form_sync(deployment):
    resp = deployment.sync().chat.completions.create(model="auto", messages=ASK_WEATHER, functions=[WEATHER["function"]],
                                                     function_call={"name": "get_weather"})
    choice = resp.choices[0]
    assert choice.finish_reason == "function_call" and choice.message.function_call.name == "get_weather"
    jsonschema.validate(json.loads(choice.message.function_call.arguments), WEATHER["function"]["parameters"])


# --- structured output, n, images -----------------------------------------------------------------------


def test_structured_output_json_object_and_json_schema_sync_and_streamed(deployment):
    client = deployment.sync()
    obj = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "Reply in JSON: what is DNS?"}],
                                         response_format={"type": "json_object"})
    assert isinstance(json.loads(obj.choices[0].message.content), dict)
    doc = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "Extract: Grace Hopper, 85"}],
                                         response_format=JSON_SCHEMA).choices[0].message.content
    jsonschema.validate(json.loads(doc), PERSON)
    streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Extract: Alan Turing, 41"}], response_format=JSON_SCHEMA,
        stream=True) if c.choices)
    jsonschema.validate(json.loads(streamed), PERSON)


async def test_n_choices_are_returned_and_metered_streamed_or_not(deployment):
    client = deployment.client()
    resp = await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Name a firewall rule"}],
                                                n=3, temperature=1.0)
    assert [c.index for c in resp.choices] == [0, 1, 2] and all(c.message.content for c in resp.choices)
    assert resp.usage.completion_tokens == extension(resp)["cascade"][-1]["output_tokens"]
    assert resp.usage.completion_tokens > max(len(c.message.content.split()) for c in resp.choices)
    stream = await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Name a port"}],
                                                  n=2, stream=True, stream_options={"include_usage": True})
    texts: dict[int, str] = {}
    finishes: dict[int, str] = {}
    last = None
    async for chunk in stream:
        last = chunk
        for c in chunk.choices:
            texts[c.index] = texts.get(c.index, "") + (c.delta.content or "")
            if c.finish_reason:
                finishes[c.index] = c.finish_reason
    assert set(texts) == {0, 1} and all(texts.values()) and finishes == {0: "stop", 1: "stop"}
    assert last.usage.completion_tokens >= 2


async def test_images_reach_models_that_read_them_and_others_get_a_400(deployment):
    client = deployment.client(max_retries=0)
    seen = await client.chat.completions.create(model="gpt-4o", messages=LOOK)
    assert seen.choices[0].message.content and seen.usage.prompt_tokens > 765  # a high-detail image counts 765
    auto = await client.chat.completions.create(model="auto", messages=LOOK)
    assert auto.choices[0].message.content and extension(auto)["model"] == "gpt-4o-mini"  # it reads images too
    with pytest.raises(openai.BadRequestError) as blind:
        await client.chat.completions.create(model="llama-3.1-8b-instruct", messages=LOOK)
    assert blind.value.param == "messages[0].content[1].type"
