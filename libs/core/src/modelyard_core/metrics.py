"""Prometheus metrics shared by every service (served on /metrics by ``modelyard_core.ops``)."""

from prometheus_client import Counter, Histogram

MESSAGES = Counter("modelyard_messages_total", "Messages handled by a consumer", ["service", "topic", "result"])
DEAD_LETTERS = Counter("modelyard_dead_letters_total", "Messages sent to a dead-letter topic", ["service", "topic", "error_type"])
HANDLER_SECONDS = Histogram(
    "modelyard_handler_seconds",
    "Time a batch handler took",
    ["service", "topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ROUTING_DECISIONS = Counter("modelyard_routing_decisions_total", "Router decisions", ["model_class", "complexity"])
CASCADES = Counter("modelyard_cascades_total", "Escalations from one model class to the next", ["from_class", "to_class"])
OUTCOMES = Counter("modelyard_outcomes_total", "Terminal outcomes published", ["service", "status"])
MODEL_CALLS = Counter("modelyard_model_calls_total", "Model calls made by inference workers", ["pool", "model", "result"])
COST_USD = Counter("modelyard_cost_usd_total", "Cost of model calls", ["model_class"])
STORE_SECONDS = Histogram(
    "modelyard_store_seconds",
    "Time of a service's own database operations on the query path",
    ["service", "operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
