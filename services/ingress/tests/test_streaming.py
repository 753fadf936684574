"""Server-sent events of a streamed query: live batches, then the outcome completes and ends the stream.

Every chunk is parsed with the official client's ``ChatCompletionChunk`` and the stream is folded the way a
client folds it, so "the caller got the whole answer" is checked as a client sees it.
"""

from __future__ import annotations

import json
from typing import Any

from modelyard_events import Choice, ChoiceDelta, ModelClass, ModelError, OutcomeStatus, QueryChunk, QueryOutcome
from modelyard_ingress.streaming import DONE, StreamRenderer
from openai.types.chat import ChatCompletionChunk

RUN = "run-1"
ANSWER = "Restart the router, then wait a minute."


def batch(seq: int, *deltas: ChoiceDelta, run: str = RUN) -> QueryChunk:
    return QueryChunk(tenant_id="acme", query_id="q-1", run=run, seq=seq, model="gpt-4o", model_class=ModelClass.LLM,
                      deltas=list(deltas))


def text(t: str, index: int = 0) -> ChoiceDelta:
    return ChoiceDelta(index=index, content=t)


def finished(answer: str = ANSWER, **fields: Any) -> QueryOutcome:
    return QueryOutcome(tenant_id="acme", query_id="q-1", status=OutcomeStatus.COMPLETED, answer=answer,
                        model_class=ModelClass.LLM, model="gpt-4o", input_tokens=11, output_tokens=9, cost_usd=0.0001,
                        **fields)


def parse(raw: bytes) -> tuple[list[ChatCompletionChunk], list[dict], bool]:
    """(chunks, error events, [DONE] seen) of an SSE byte stream."""
    chunks, errors, done = [], [], False
    for event in raw.split(b"\n\n"):
        if not event:
            continue
        assert event.startswith(b"data: ")
        data = event.removeprefix(b"data: ")
        if data == b"[DONE]":
            done = True
            continue
        doc = json.loads(data)
        if "error" in doc:
            errors.append(doc["error"])
        else:
            chunks.append(ChatCompletionChunk.model_validate(doc))
    return chunks, errors, done


def folded(chunks: list[ChatCompletionChunk]) -> dict[int, dict[str, Any]]:
    """Each choice as a client assembles it from the deltas."""
    out: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for c in chunk.choices:
            slot = out.setdefault(c.index, {"content": "", "calls": {}, "finish": None, "roles": 0})
            slot["roles"] += c.delta.role == "assistant"
            slot["content"] += c.delta.content or ""
            for call in c.delta.tool_calls or ():
                entry = slot["calls"].setdefault(call.index, {"id": None, "name": "", "arguments": ""})
                entry["id"] = call.id or entry["id"]
                entry["name"] += (call.function.name or "") if call.function else ""
                entry["arguments"] += (call.function.arguments or "") if call.function else ""
            slot["finish"] = c.finish_reason or slot["finish"]
    return out


def test_live_batches_are_sent_at_once_and_the_outcome_only_finishes():
    r = StreamRenderer("q-1", include_usage=False)
    parts = [r.chunk(batch(0, text("Restart the router,"))), r.chunk(batch(1, text(" then wait"), text(" a minute.")))]
    assert all(parts)  # every batch went out as it came
    end = r.finish(finished())
    chunks, errors, done = parse(b"".join(parts) + end)
    assert done and not errors
    [choice] = folded(chunks).values()
    assert choice == {"content": ANSWER, "calls": {}, "finish": "stop", "roles": 1}
    # Nothing of the answer was repeated by the end; the last chunk carries the modelyard object.
    end_chunks, _, _ = parse(end)
    assert all(not (c.choices and c.choices[0].delta.content) for c in end_chunks)
    assert chunks[-1].model_extra["modelyard"]["query_id"] == "q-1" and chunks[-1].model == "gpt-4o"


def test_a_held_answer_arrives_whole_with_usage_last_when_asked():
    r = StreamRenderer("q-1", include_usage=True)
    chunks, errors, done = parse(r.finish(finished()))
    assert done and not errors
    assert folded(chunks)[0]["content"] == ANSWER and folded(chunks)[0]["finish"] == "stop"
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 20 and "modelyard" in chunks[-1].model_extra


def test_a_missing_batch_stops_the_live_stream_and_the_outcome_completes_it():
    r = StreamRenderer("q-1", include_usage=False)
    raw = r.chunk(batch(0, text("Restart the router,")))
    assert r.chunk(batch(2, text(" a minute."))) == b""  # seq 1 never came
    assert r.chunk(batch(3, text(" more"))) == b""
    chunks, errors, _ = parse(raw + r.finish(finished()))
    assert not errors and folded(chunks)[0]["content"] == ANSWER


def test_duplicates_and_batches_of_another_run_are_not_sent():
    r = StreamRenderer("q-1", include_usage=False)
    raw = r.chunk(batch(0, text("Restart")))
    assert r.chunk(batch(0, text("Restart"))) == b""  # redelivered
    assert r.chunk(batch(1, text("Reboot"), run="run-2")) == b""  # the call restarted after a crash
    chunks, errors, _ = parse(raw + r.chunk(batch(1, text(" the router,"))) + r.finish(finished()))
    assert not errors and folded(chunks)[0]["content"] == ANSWER


def test_a_stream_that_cannot_be_completed_ends_with_an_error_event():
    r = StreamRenderer("q-1", include_usage=False)
    raw = r.chunk(batch(0, text("Reboot everything")))
    chunks, errors, done = parse(raw + r.finish(finished()))
    assert not done and errors[0]["code"] == "stream_interrupted" and errors[0]["query_id"] == "q-1"


def test_a_failed_outcome_after_live_tokens_is_an_error_event_with_the_models_words():
    r = StreamRenderer("q-1", include_usage=False)
    r.chunk(batch(0, text("Restart")))
    failed = QueryOutcome(tenant_id="acme", query_id="q-1", status=OutcomeStatus.FAILED, reason="the stream broke",
                          error=None)
    _, errors, done = parse(r.finish(failed))
    assert not done and errors[0]["code"] == "model_failed"
    refused = failed.model_copy(update={"error": ModelError(status=400, message="bad stop", param="stop")})
    assert parse(StreamRenderer("q-1", include_usage=False).finish(refused))[1][0]["param"] == "stop"


def test_tool_calls_stream_live_and_the_rest_comes_from_the_outcome():
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    r = StreamRenderer("q-1", include_usage=False)
    live = r.chunk(batch(0, ChoiceDelta(index=0, tool_calls=[
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]),
        ChoiceDelta(index=0, tool_calls=[{"index": 0, "function": {"arguments": '{"city": '}}])))
    outcome = finished("", choices=[Choice(index=0, content=None, tool_calls=[call], finish_reason="tool_calls")])
    chunks, errors, done = parse(live + r.finish(outcome))
    assert done and not errors
    choice = folded(chunks)[0]
    assert choice["calls"] == {0: {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}}
    assert choice["finish"] == "tool_calls" and choice["roles"] == 1


def test_several_choices_each_get_their_text_and_their_finish():
    r = StreamRenderer("q-1", include_usage=False)
    live = r.chunk(batch(0, text("One", 0), text("Two", 1), text(" more", 0)))
    outcome = finished("One more", choices=[Choice(index=0, content="One more", finish_reason="stop"),
                                            Choice(index=1, content="Two words", finish_reason="length")])
    chunks, errors, _ = parse(live + r.finish(outcome))
    got = folded(chunks)
    assert not errors and (got[0]["content"], got[0]["finish"]) == ("One more", "stop")
    assert (got[1]["content"], got[1]["finish"]) == ("Two words", "length") and got[1]["roles"] == 1
    assert chunks[-1].model_extra.get("modelyard") is not None


def test_the_stream_ends_with_done():
    assert StreamRenderer("q-1", include_usage=False).finish(finished()).endswith(DONE)
