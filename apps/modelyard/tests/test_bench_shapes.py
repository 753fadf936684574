"""The benchmarks that need no server: the shape of what they report (speed is measured by running
them, never asserted in a test), and the load generator's HTTP/1.1 request encoder and response reader."""

from __future__ import annotations

import asyncio

from modelyard.bench.classifier import bench_classifier, bench_queries
from modelyard.bench.loadgen import encode_post, read_response


def test_bench_classifier_reports_rate_and_percentiles():
    report = bench_classifier(n=300)
    assert report["decisions"] == 300
    assert report["decisions_per_s"] > 0 and report["decisions_per_cpu_s"] > 0
    assert 0 < report["p50_ms"] <= report["p99_ms"] <= report["max_ms"]
    learned = report["with_model"]
    assert learned["decisions"] == 300 and learned["router_model"].startswith("helpdesk@")
    assert 0 < learned["p50_ms"] <= learned["p99_ms"] and learned["goal"]["p99_ms"] == 0.2
    assert "with_model" not in bench_classifier(n=300, router_model=None)


def test_bench_queries_are_valid_classify_input():
    queries = bench_queries()
    assert len(queries) >= 20
    assert all(request.text for request, _ in queries)


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
