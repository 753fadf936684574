"""Prometheus metrics of the inference pools (served on /metrics with the shared ones)."""

from prometheus_client import Counter, Gauge

IN_FLIGHT = Gauge("modelyard_inference_in_flight", "Model calls of this worker in flight now", ["pool"])
IN_FLIGHT_PEAK = Gauge("modelyard_inference_in_flight_peak", "Most model calls this worker has had in flight at once", ["pool"])
IN_PROGRESS = Gauge("modelyard_inference_records_in_progress", "Records taken from Kafka and not finished yet", ["topic"])
ATTEMPT_FAILURES = Counter(
    "modelyard_inference_attempt_failures_total", "Failed attempts of model calls (before retries)", ["model", "kind"]
)
#: 0 closed, 1 open, 2 half-open
BREAKER_STATE = Gauge("modelyard_inference_breaker_state", "Circuit state per model: 0 closed, 1 open, 2 half-open", ["model"])
SHADOW_COMPARISONS = Counter(
    "modelyard_inference_shadow_comparisons_total", "Shadow evaluation: accepted small answers compared with the large "
    "model's", ["result"]
)
STREAM_BATCHES = Counter("modelyard_inference_stream_batches_total",
                         "Batches of live tokens sent to queries.streams (final routes of streamed requests)")
