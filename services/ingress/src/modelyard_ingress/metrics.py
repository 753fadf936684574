"""Prometheus metrics of the ingress (served on its own /metrics)."""

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("modelyard_ingress_requests_total", "Chat requests by result", ["result"])
SECONDS = Histogram(
    "modelyard_ingress_request_seconds",
    "Time from a chat request to its answer (publish, routing, model calls, outcome)",
    ["result"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
WAITING = Gauge("modelyard_ingress_waiting", "Requests waiting for their outcome")
FOLLOWING = Gauge("modelyard_ingress_following_outcomes",
                  "1 while the outcomes topic is read, 0 while paused because no request is waiting")
FOLLOWING_STREAMS = Gauge("modelyard_ingress_following_streams",
                          "1 while this instance's partition of queries.streams is read, 0 while paused (no stream waiting)")
FIRST_CHUNK_SECONDS = Histogram(
    "modelyard_ingress_first_chunk_seconds",
    "Time from a streamed request to its first chunk (live tokens or, for a held answer, the outcome)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
