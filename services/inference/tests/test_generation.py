"""Issue 19 in the worker, against the model simulator in-process (what each call's body holds is recorded
as the simulator received it): generation parameters reach every call unchanged, the model's 400 comes
back as its own error, tool calls and structured output are judged by their schemas, ``n`` choices and
images, and live streaming of final routes in batches to the asker's partition."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from modelyard_core.bus import Bus, Outgoing
from modelyard_core.pricing import load_pricing
from modelyard_events import (
    ComplexityLevel,
    Generation,
    ModelClass,
    OutcomeStatus,
    QueryChunk,
    QueryEscalated,
    QueryOutcome,
    QueryRequest,
    QueryRouted,
    RoutingDecision,
    StreamTo,
    UsageRecorded,
)
from modelyard_inference.backend import BackendRejected
from modelyard_inference.completions import request_body
from modelyard_inference.worker import Worker

from .conftest import fast_settings
from .test_worker import delivery, split

PRICING = load_pricing()
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
                   "required": ["city"], "additionalProperties": False}}}
ASK_WEATHER = "What is the weather in Paris today?"
ANSWER_SCHEMA = {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": {
    "type": "object", "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
    "required": ["answer", "confidence"], "additionalProperties": False}}}
EVERY_PARAMETER: dict[str, Any] = {
    "temperature": 0.0, "top_p": 0.9, "max_completion_tokens": 40, "stop": ["\n\n\n"], "seed": 11,
    "presence_penalty": 0.1, "frequency_penalty": 0.2, "logit_bias": {"50256": -100}, "user": "end-user-7",
    "reasoning_effort": "low",
}


class RecordingBus(Bus):
    """A bus whose sends are recorded and acknowledged at once (the worker's events are returned, not sent;
    only live stream batches are sent by the worker itself)."""

    def __init__(self, settings) -> None:
        super().__init__(settings, "inference")
        self.sent: list[Outgoing] = []

    async def send(self, out: Outgoing) -> asyncio.Future:
        self.sent.append(out)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def routed(text: str = ASK_WEATHER, *, model_class: ModelClass = ModelClass.SLM, model: str | None = None,
           can_escalate: bool = True, generation: Generation | None = None, messages: list | None = None,
           stream_to: StreamTo | None = None) -> QueryRouted:
    return QueryRouted(
        tenant_id="acme", query_id=str(uuid.uuid4()),
        request=QueryRequest(text=text, generation=generation, messages=messages, stream_to=stream_to),
        decision=RoutingDecision(complexity=ComplexityLevel.SIMPLE, score=0.0, model_class=model_class,
                                 model=model or PRICING.class_defaults[model_class]),
        submitted_at=datetime.now(UTC), can_escalate=can_escalate,
    )


def escalated_to_llm(e: QueryEscalated) -> QueryRouted:
    """What the router makes of an escalation: the same request, one class up."""
    return QueryRouted(tenant_id=e.tenant_id, query_id=e.query_id, request=e.request, submitted_at=e.submitted_at,
                       decision=e.decision.model_copy(update={"model_class": ModelClass.LLM, "model": "gpt-4o"}),
                       cascade=e.cascade, cascade_threshold=e.cascade_threshold, can_escalate=False,
                       best_answer=e.best_answer)


async def run(worker: Worker, q: QueryRouted) -> tuple[list[UsageRecorded], list]:
    return split(await worker.answer_all([delivery(q)]), q.query_id)


def worker_for(backend, **settings) -> Worker:
    s = fast_settings(**settings) if settings else backend.settings
    return Worker(s, RecordingBus(s), backend, PRICING)


# --- the body of a call ---------------------------------------------------------------------------------


def test_the_body_is_the_callers_parameters_with_the_workers_defaults_only_where_unset():
    g = Generation(**EVERY_PARAMETER, tools=[WEATHER], tool_choice="auto", n=2)
    body = request_body("gpt-4o", [{"role": "user", "content": "x"}], g, max_output_tokens=512, request_logprobs=True)
    assert body == {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], **g.body(), "logprobs": True}
    assert "max_tokens" not in body  # the caller set max_completion_tokens
    bare = request_body("gpt-4o", [], None, max_output_tokens=512, request_logprobs=True, stream=True)
    assert bare["max_tokens"] == 512 and bare["stream"] and bare["stream_options"] == {"include_usage": True}
    # A caller's own logprobs setting (or top_logprobs without it, which the model must judge) is left alone.
    assert request_body("m", [], Generation(logprobs=False), max_output_tokens=1, request_logprobs=True)["logprobs"] is False
    assert "logprobs" not in request_body("m", [], Generation(top_logprobs=2), max_output_tokens=1, request_logprobs=True)


async def test_generation_reaches_the_slm_call_and_the_escalation_unchanged(simulated_backend):
    bodies: list[dict] = []
    # Every structured answer of the small model is spoilt, so the query escalates to the large one.
    backend, _ = await simulated_backend(bodies=bodies, models={"gpt-4o-mini": {"invalid_json_rate": 1.0}})
    worker = worker_for(backend)
    g = Generation(**{**EVERY_PARAMETER, "max_completion_tokens": 200}, response_format=ANSWER_SCHEMA)
    q = routed("Answer in JSON: how do I reset my password?", generation=g)
    _, [escalation] = await run(worker, q)
    assert isinstance(escalation.event, QueryEscalated)
    assert any(r.startswith("json: ") and r.endswith("[hard]") for r in escalation.event.reasons), escalation.event.reasons
    _, [done] = await run(worker, escalated_to_llm(escalation.event))
    outcome = done.event
    assert outcome.status is OutcomeStatus.COMPLETED and outcome.model == "gpt-4o"
    assert json.loads(outcome.answer).keys() == {"answer", "confidence"}
    assert [b["model"] for b in bodies] == ["gpt-4o-mini", "gpt-4o"]
    for body in bodies:  # both calls carried exactly the caller's parameters
        assert {k: body[k] for k in g.body()} == g.body()


async def test_max_tokens_and_stop_shape_the_answer_and_its_finish_reason(simulated_backend):
    backend, _ = await simulated_backend()
    worker = worker_for(backend)
    _, [done] = await run(worker, routed("Explain how to reset a password", can_escalate=False,
                                         generation=Generation(max_tokens=5)))
    [choice] = done.event.choices
    assert choice.finish_reason == "length" and done.event.output_tokens == 5
    # The caller's own limit is not held against the answer; the pool's default limit is.
    assert not any("finish_reason length" in r for r in done.event.cascade[0].reasons)
    short, _ = await simulated_backend(fast_settings(max_output_tokens=5))
    _, [pool_cut] = await run(worker_for(short), routed("Explain how to reset a password", can_escalate=False))
    assert "truncation: finish_reason length [hard]" in pool_cut.event.cascade[0].reasons


async def test_the_models_400_fails_the_query_with_its_own_error_and_is_not_escalated(simulated_backend):
    backend, _ = await simulated_backend(fast_settings(backend_attempts=3))
    worker = worker_for(backend)
    bad = Generation(tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "no_such_tool"}})
    with pytest.raises(BackendRejected) as caught:
        await backend.complete("gpt-4o-mini", [{"role": "user", "content": ASK_WEATHER}], bad)
    assert caught.value.attempts == 1 and caught.value.error.param == "tool_choice"
    assert backend.breaker("gpt-4o-mini").consecutive == 0
    usage, [failed] = await run(worker, routed(generation=bad))  # may escalate, yet does not
    outcome = failed.event
    assert isinstance(outcome, QueryOutcome) and outcome.status is OutcomeStatus.FAILED
    assert outcome.error.status == 400 and outcome.error.param == "tool_choice" and outcome.error.message
    assert usage[0].error and usage[0].output_tokens == 0  # the refused call is metered as a failed call


# --- tools and structured output as cascade evidence -----------------------------------------------------


async def test_a_valid_tool_call_is_an_answer_with_its_calls(simulated_backend):
    backend, _ = await simulated_backend()
    _, [done] = await run(worker_for(backend), routed(generation=Generation(tools=[WEATHER], tool_choice="required")))
    outcome = done.event
    assert outcome.status is OutcomeStatus.COMPLETED and outcome.model == "gpt-4o-mini" and outcome.confidence == 1.0
    [choice] = outcome.choices
    assert choice.finish_reason == "tool_calls" and choice.content is None
    [call] = choice.tool_calls
    assert call["function"]["name"] == "get_weather" and "city" in json.loads(call["function"]["arguments"])


@pytest.mark.parametrize("legacy", [False, True])
async def test_tool_calls_whose_arguments_do_not_parse_or_fit_escalate(simulated_backend, legacy):
    backend, _ = await simulated_backend(models={"gpt-4o-mini": {"invalid_tool_args_rate": 1.0}})
    g = (Generation(functions=[WEATHER["function"]], function_call={"name": "get_weather"}) if legacy
         else Generation(tools=[WEATHER], tool_choice="required"))
    _, [escalation] = await run(worker_for(backend), routed(generation=g))
    e = escalation.event
    assert isinstance(e, QueryEscalated) and e.cascade[0].confidence == 0.0
    assert any(r.startswith("tool_call: get_weather: arguments do not") and r.endswith("[hard]") for r in e.reasons), e.reasons


async def test_a_tool_conversation_reaches_the_model_whole_and_is_answered_in_text(simulated_backend):
    bodies: list[dict] = []
    backend, _ = await simulated_backend(bodies=bodies)
    turns = [{"role": "user", "content": ASK_WEATHER},
             {"role": "assistant", "content": None, "tool_calls": [
                 {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
             {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature_c": 12, "sky": "cloudy"}'}]
    _, [done] = await run(worker_for(backend), routed(generation=Generation(tools=[WEATHER]), messages=turns,
                                                      can_escalate=False))
    assert bodies[0]["messages"] == turns and done.event.answer


async def test_n_choices_all_come_back_and_their_tokens_are_metered(simulated_backend):
    backend, _ = await simulated_backend()
    usage, [done] = await run(worker_for(backend), routed("How do I reset my password?", can_escalate=False,
                                                          generation=Generation(n=3, temperature=1.0, seed=3)))
    outcome = done.event
    assert [c.index for c in outcome.choices] == [0, 1, 2] and all(c.content for c in outcome.choices)
    one = await backend.complete("gpt-4o-mini", [{"role": "user", "content": "How do I reset my password?"}],
                                 Generation(temperature=1.0, seed=3))
    assert usage[0].output_tokens == outcome.output_tokens > one.output_tokens  # every choice is metered


# --- images ---------------------------------------------------------------------------------------------

IMAGE_TURN = [{"role": "user", "content": [{"type": "text", "text": "What is in this picture?"},
                                           {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]


async def test_a_model_without_vision_is_not_asked_about_images(simulated_backend):
    bodies: list[dict] = []
    backend, _ = await simulated_backend(bodies=bodies)
    worker = worker_for(backend)
    llama = dict(model="llama-3.1-8b-instruct", messages=IMAGE_TURN, text="What is in this picture?")
    usage, [up] = await run(worker, routed(**llama))
    assert usage == [] and isinstance(up.event, QueryEscalated) and "reads no images" in up.event.reasons[0]
    usage, [failed] = await run(worker, routed(**llama, can_escalate=False))
    assert usage == [] and bodies == []
    assert failed.event.error.status == 400 and failed.event.error.param == "messages[0].content[1].type"
    _, [seen] = await run(worker, routed(model="gpt-4o-mini", messages=IMAGE_TURN, text="What is in this picture?"))
    assert seen.event.status is OutcomeStatus.COMPLETED and bodies[0]["messages"] == IMAGE_TURN


# --- live streaming -------------------------------------------------------------------------------------


def batches(worker: Worker) -> list[Outgoing]:
    return [o for o in worker.bus.sent if isinstance(o.event, QueryChunk)]  # type: ignore[attr-defined]


async def test_a_final_route_streams_its_tokens_in_order_to_the_askers_partition(simulated_backend):
    backend, _ = await simulated_backend(models={"gpt-4o": {"stream_chunk_tokens": 1}})
    worker = worker_for(backend)
    q = routed("Summarise our refund policy", model_class=ModelClass.LLM, can_escalate=False,
               stream_to=StreamTo(partition=3, instance="i-1"))
    usage, [done] = await run(worker, q)
    sent = batches(worker)
    assert sent and all(o.partition == 3 and o.topic == "queries.streams" and o.key == "acme" for o in sent)
    chunks = [o.event for o in sent]
    assert len(chunks) >= 2 and [c.seq for c in chunks] == list(range(len(chunks))) and len({c.run for c in chunks}) == 1
    assert "".join(d.content or "" for c in chunks for d in c.deltas) == done.event.answer
    assert chunks[-1].done and usage[0].output_tokens == done.event.output_tokens > 0


async def test_an_answer_that_may_still_escalate_is_held_and_an_unsure_final_one_is_kept(simulated_backend):
    backend, _ = await simulated_backend(headers={"X-Simulator-Difficulty": "1"})
    worker = worker_for(backend)
    target = StreamTo(partition=0)
    _, [held] = await run(worker, routed("Analyze the root cause of the outage", stream_to=target))
    assert isinstance(held.event, QueryEscalated) and batches(worker) == []  # the SLM may escalate: nothing streamed
    _, [kept] = await run(worker, routed("Analyze the root cause of the outage", can_escalate=False, stream_to=target))
    assert batches(worker) and kept.event.status is OutcomeStatus.COMPLETED and kept.event.confidence < 0.6
    # The LLM pool streams even when llm_plus is above it: the answer is final once the caller has it.
    llm = worker_for(backend, pool="llm")
    _, [final] = await run(llm, routed("Analyze the root cause", model_class=ModelClass.LLM, stream_to=target))
    assert isinstance(final.event, QueryOutcome) and batches(llm)


async def test_batches_go_out_at_once_after_a_pause_and_together_under_load():
    settings = fast_settings()
    bus = RecordingBus(settings)
    from modelyard_inference.streams import ChunkStream
    from modelyard_events import ChoiceDelta

    q = routed(stream_to=StreamTo(partition=1))
    stream = ChunkStream(bus, delivery(q), flush_s=60.0, max_deltas=3)
    stream.add([ChoiceDelta(content="a")])  # the first goes at once
    await asyncio.sleep(0)
    assert len(bus.sent) == 1
    stream.add([ChoiceDelta(content="b")])
    stream.add([ChoiceDelta(content="c")])  # held: the last batch left less than flush_s ago
    await asyncio.sleep(0)
    assert len(bus.sent) == 1
    stream.add([ChoiceDelta(content="d")])  # three waiting: they go together
    stream.add([ChoiceDelta(content="e")])
    await stream.close()  # the rest, marked done
    contents = [[d.content for d in o.event.deltas] for o in bus.sent]
    assert contents == [["a"], ["b", "c", "d"], ["e"]] and [o.event.done for o in bus.sent] == [False, False, True]
