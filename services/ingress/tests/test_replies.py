"""The in-flight map the reply consumer feeds, and the load generator's response reader."""

from __future__ import annotations

import asyncio

import pytest
from modelyard_events import OutcomeStatus, QueryOutcome
from modelyard_ingress.loadgen import encode_post, read_response
from modelyard_ingress.replies import PendingOutcomes, TooManyWaiting


def raw(query_id: str, **fields) -> bytes:
    return QueryOutcome(tenant_id="t", query_id=query_id, status=OutcomeStatus.COMPLETED, answer="ok", **fields).model_dump_json().encode()


async def test_an_outcome_resolves_exactly_its_waiter():
    pending = PendingOutcomes(capacity=4)
    a, b = pending.expect("a"), pending.expect("b")
    assert pending.offer(raw("b")) is True
    assert b.done() and b.result().query_id == "b" and not a.done()
    assert pending.offer(raw("b")) is False  # a duplicate (redelivery) finds nobody
    assert len(pending) == 1


async def test_outcomes_nobody_waits_for_and_garbage_are_skipped():
    pending = PendingOutcomes(capacity=4)
    waiter = pending.expect("a")
    assert pending.offer(raw("someone-else")) is False
    assert pending.offer(b"{not json") is False
    assert pending.offer(b'"a"') is False
    assert pending.offer(None) is False
    assert pending.offer(b'{"query_id": "a", "status": "no-such-status"}') is False  # invalid: left to the timeout
    assert not waiter.done()


async def test_capacity_is_bounded_and_forgetting_frees_a_slot():
    pending = PendingOutcomes(capacity=2)
    pending.expect("a")
    pending.expect("b")
    with pytest.raises(TooManyWaiting):
        pending.expect("c")
    pending.forget("a")
    pending.expect("c")
    assert pending.offer(raw("a")) is False  # a forgotten (timed-out) query's late outcome is ignored


async def test_response_reader_handles_content_length_and_chunked_bodies():
    reader = asyncio.StreamReader()
    reader.feed_data(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
                     b"HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
                     b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    assert await read_response(reader) == (200, b"hello", True)
    assert await read_response(reader) == (429, b"abcde", True)
    assert await read_response(reader) == (200, b"ok", False)


def test_encoded_post_carries_the_body_and_headers():
    host, port, data = encode_post("http://127.0.0.1:8081/v1/chat/completions", b'{"a":1}', {"Authorization": "Bearer k"})
    head, _, body = data.partition(b"\r\n\r\n")
    assert (host, port, body) == ("127.0.0.1", 8081, b'{"a":1}')
    assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 7\r\n" in head and b"\r\nAuthorization: Bearer k" in head
