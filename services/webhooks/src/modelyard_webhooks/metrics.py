"""Prometheus metrics of the dispatcher (served on /metrics with the shared ones)."""

from prometheus_client import Counter, Histogram

ATTEMPTS = Counter("modelyard_webhook_attempts_total", "Webhook delivery attempts", ["outcome"])
PARKED = Counter("modelyard_webhooks_parked_total", "Webhook deliveries parked after the retry window")
#: From the moment the dispatcher created the delivery to the receiver's 2xx (first attempt or a retry).
DELIVERY_SECONDS = Histogram("modelyard_webhook_delivery_seconds", "Event received to delivered",
                             buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600))
