"""Webhooks, the parts the tenant API and the webhook dispatcher share.

* ``catalogue`` — the webhook event types and how each is made from an event on the bus;
* ``signing`` — Standard-Webhooks signatures (HMAC-SHA256 over id, timestamp and body);
* ``urls`` — which endpoint URLs are accepted;
* ``endpoints`` — registered endpoints and their sealed secrets (rotation with a grace period);
* ``deliveries`` — one document per (endpoint, event): the delivery log, claims, ordering, backoff.
"""

from .catalogue import WebhookEvent, WebhookType, webhook_event
from .deliveries import Deliveries, Status, backoff, delivery_id, new_delivery
from .endpoints import Endpoints, signing_secrets
from .settings import WebhookSettings
from .signing import new_secret, signed_headers, signature, verify
from .urls import BadUrl, check_endpoint_url

__all__ = [
    "BadUrl",
    "Deliveries",
    "Endpoints",
    "Status",
    "WebhookEvent",
    "WebhookSettings",
    "WebhookType",
    "backoff",
    "check_endpoint_url",
    "delivery_id",
    "new_delivery",
    "new_secret",
    "signature",
    "signed_headers",
    "signing_secrets",
    "verify",
    "webhook_event",
]
