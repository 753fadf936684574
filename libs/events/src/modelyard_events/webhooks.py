"""A webhook delivery the dispatcher gave up on, parked for a replay.

``WebhookParked`` travels on ``webhooks.parked`` (key: the endpoint id) when a delivery kept failing
for the whole retry window. It carries what is needed to send it again — the endpoint, the webhook
event's id, type and exact body — but no secret: a replay signs with the endpoint's current secret.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from .base import ID_MAX, Event


class WebhookParked(Event):
    TYPE: ClassVar[str] = "modelyard.webhook.parked.v1"
    type: Literal["modelyard.webhook.parked.v1"] = "modelyard.webhook.parked.v1"

    endpoint_id: str = Field(max_length=ID_MAX)
    delivery_id: str = Field(max_length=2 * ID_MAX + 1)
    webhook_id: str = Field(max_length=2 * ID_MAX, description="The `webhook-id` the receiver de-duplicates on.")
    webhook_type: str = Field(max_length=64, description="E.g. quota.warning.")
    body: str = Field(max_length=256_000, description="The exact JSON body every attempt sent.")
    attempts: int = Field(ge=1)
    first_attempt_at: datetime
    last_error: str | None = Field(default=None, max_length=1_000)
