"""The backend against the model simulator: what is retried, what is not, the circuit, the answer parsed."""

from __future__ import annotations

import httpx2
import openai
import pytest
from modelyard_inference.backend import (
    BackendUnavailable,
    MalformedResponse,
    _retry_after,
    classify,
    parse_completion,
)

from .conftest import fast_settings

ASK = [{"role": "user", "content": "How do I reset my password?"}]
REQUEST = httpx2.Request("POST", "http://backend/v1/chat/completions")


def status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    response = httpx2.Response(status, request=REQUEST, headers=headers, json={"error": {"message": f"status {status}"}})
    client = openai.AsyncOpenAI(base_url="http://backend/v1", api_key="x")
    return client._make_status_error_from_response(response)


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status: int) -> None:
    failure = classify(status_error(status))
    assert failure.retryable and failure.backend_fault


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_request_errors_are_not_retried_and_do_not_count_against_the_backend(status: int) -> None:
    failure = classify(status_error(status))
    assert not failure.retryable and not failure.backend_fault
    assert f"HTTP {status}" in failure.detail


def test_timeouts_and_connection_errors_are_retried() -> None:
    assert classify(TimeoutError()).kind == "timeout"
    assert classify(openai.APITimeoutError(request=REQUEST)).retryable
    assert classify(openai.APIConnectionError(request=REQUEST)).retryable
    assert classify(KeyError("a bug of ours")) is None


def test_retry_after_is_read_in_seconds_or_milliseconds() -> None:
    assert classify(status_error(429, {"retry-after": "2"})).retry_after_s == 2.0
    assert _retry_after(httpx2.Response(503, headers={"retry-after-ms": "250"}).headers) == 0.25
    assert _retry_after(httpx2.Response(503, headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}).headers) is None


def test_parse_completion_reads_text_usage_and_logprobs_and_rejects_garbage() -> None:
    raw = (b'{"choices": [{"message": {"content": "Hi"}, "finish_reason": "stop", '
           b'"logprobs": {"content": [{"token": "Hi", "logprob": -0.1}]}}], '
           b'"usage": {"prompt_tokens": 7, "completion_tokens": 1}}')
    c = parse_completion(raw)
    assert (c.text, c.finish_reason, c.input_tokens, c.output_tokens, c.logprobs) == ("Hi", "stop", 7, 1, [-0.1])
    assert c.choices[0].logprobs is None  # the worker asked for them, the caller did not
    assert parse_completion(raw, keep_logprobs=True).choices[0].logprobs == {"content": [{"token": "Hi", "logprob": -0.1}]}
    empty = parse_completion(b'{"choices": [{"message": {"content": null}}]}')
    assert (empty.text, empty.finish_reason, empty.input_tokens, empty.output_tokens, empty.logprobs) == ("", None, 0, 0, None)
    several = parse_completion(b'{"choices": [{"index": 1, "message": {"content": "B"}, "finish_reason": "length"}, '
                               b'{"index": 0, "message": {"content": "A"}, "finish_reason": "stop"}], "usage": {"completion_tokens": 9}}')
    assert [(s.text, s.finish_reason) for s in several.samples] == [("A", "stop"), ("B", "length")]
    assert several.output_tokens == 9  # every choice's tokens
    for garbage in (b"<html>", b"{}", b'{"choices": []}', b'{"choices": [{"logprobs": {"content": [{}]}}]}'):
        with pytest.raises(MalformedResponse):
            parse_completion(garbage)


async def test_an_answer_comes_back_with_tokens_and_logprobs(simulated_backend) -> None:
    backend, _ = await simulated_backend()
    c = await backend.complete("gpt-4o-mini", ASK)
    assert c.text and c.finish_reason == "stop" and c.attempts == 1
    assert c.input_tokens > 0 and c.output_tokens == len(c.logprobs) > 0


async def test_backend_models_map_the_priced_name_to_the_served_one(simulated_backend) -> None:
    backend, admin = await simulated_backend(fast_settings(backend_models={"gpt-4o-mini": "llama-3-8b"}),
                                             models={"llama-3-8b": {"kind": "slm"}})
    await backend.complete("gpt-4o-mini", ASK)
    assert set((await admin.get("/admin/stats")).json()["models"]) == {"llama-3-8b"}


@pytest.mark.parametrize("fault", ["429", "500", "502", "503"])
async def test_transient_http_faults_are_retried_up_to_the_attempt_limit(simulated_backend, fault: str) -> None:
    backend, admin = await simulated_backend(fast_settings(backend_attempts=3), headers={"X-Simulator-Fault": fault})
    with pytest.raises(BackendUnavailable, match=f"after 3 attempts.*HTTP {fault}") as caught:
        await backend.complete("gpt-4o-mini", ASK)
    assert caught.value.attempts == 3 and not caught.value.circuit_open
    assert (await admin.get("/admin/stats")).json()["models"]["gpt-4o-mini"]["requests"] == 3


async def test_a_hung_backend_times_out_each_attempt_and_is_retried(simulated_backend) -> None:
    backend, admin = await simulated_backend(fast_settings(backend_attempts=2, backend_timeout_s=0.2),
                                             headers={"X-Simulator-Fault": "timeout"})
    with pytest.raises(BackendUnavailable, match="after 2 attempts.*timed out") as caught:
        await backend.complete("gpt-4o-mini", ASK)
    assert caught.value.elapsed_ms >= 400
    assert (await admin.get("/admin/stats")).json()["models"]["gpt-4o-mini"]["timeouts_injected"] == 2


async def test_a_backend_that_gives_up_first_answers_504_and_is_retried(simulated_backend) -> None:
    # the simulator's hang (50 ms) is shorter than our deadline (2 s): its 504 is a transient 5xx
    backend, admin = await simulated_backend(
        fast_settings(backend_attempts=2), models={"gpt-4o-mini": {"timeout_rate": 1.0, "timeout_s": 0.05}})
    with pytest.raises(BackendUnavailable, match="after 2 attempts.*HTTP 504"):
        await backend.complete("gpt-4o-mini", ASK)
    assert (await admin.get("/admin/stats")).json()["models"]["gpt-4o-mini"]["timeouts_injected"] == 2


async def test_a_retry_can_succeed(simulated_backend) -> None:
    # seed 0 and a 50 % error rate: some of these calls fail first and succeed on a retry
    backend, admin = await simulated_backend(fast_settings(backend_attempts=10),
                                             models={"gpt-4o-mini": {"error_rate": 0.5}})
    results = [await backend.complete("gpt-4o-mini", ASK) for _ in range(20)]
    stats = (await admin.get("/admin/stats")).json()["models"]["gpt-4o-mini"]
    assert stats["errors_injected_total"] > 0 and stats["completed"] == 20
    assert sum(c.attempts for c in results) == stats["requests"]


@pytest.mark.parametrize(("model", "messages", "status"), [
    ("gpt-4o-mini", [{"role": "robot", "content": "hi"}], 400),
    ("no-such-model", ASK, 404),
])
async def test_request_errors_fail_at_once(simulated_backend, model, messages, status) -> None:
    backend, _ = await simulated_backend(fast_settings(backend_attempts=3))
    with pytest.raises(BackendUnavailable, match=f"HTTP {status}") as caught:
        await backend.complete(model, messages)
    assert caught.value.attempts == 1  # (the simulator counts only requests it accepted)
    assert backend.breaker(model).consecutive == 0  # the backend is up; the request was wrong


async def test_the_circuit_opens_and_then_fails_fast_without_calling(simulated_backend) -> None:
    settings = fast_settings(backend_attempts=2, breaker_failures=4, breaker_reset_s=60)
    backend, admin = await simulated_backend(settings, headers={"X-Simulator-Fault": "503"})
    for _ in range(2):
        with pytest.raises(BackendUnavailable):
            await backend.complete("gpt-4o-mini", ASK)
    assert backend.breaker("gpt-4o-mini").is_open
    with pytest.raises(BackendUnavailable, match="circuit open") as caught:
        await backend.complete("gpt-4o-mini", ASK)
    assert caught.value.circuit_open and caught.value.attempts == 0
    assert (await admin.get("/admin/stats")).json()["requests"] == 4
    # one circuit per model: the others still answer
    assert not backend.breaker("gpt-4o").is_open
