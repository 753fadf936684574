"""``MODELYARD_WEBHOOKS__*``: what the tenant API accepts and how the dispatcher delivers."""

from __future__ import annotations

from pydantic import BaseModel, Field


class WebhookSettings(BaseModel):
    #: Endpoints must be HTTPS; ``http://localhost`` (and 127.0.0.1, [::1]) only with this on: tests and
    #: local development, never production.
    allow_http_localhost: bool = False
    max_endpoints_per_tenant: int = Field(default=20, ge=1, le=1_000)
    #: How long the previous secret keeps signing after a rotation (both signatures are sent meanwhile).
    rotation_grace_s: float = Field(default=86_400.0, ge=0, le=30 * 86_400)
    #: Retries: the n-th retry waits retry_base_s * 2^(n-1), at most retry_max_delay_s, until retry_for_s
    #: after the first attempt; then the delivery is parked on webhooks.parked.
    retry_base_s: float = Field(default=10.0, gt=0)
    retry_max_delay_s: float = Field(default=3_600.0, gt=0)
    retry_for_s: float = Field(default=86_400.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0, le=120, description="One attempt's connect-to-response time limit.")
    #: How often the dispatcher looks for deliveries that are due (it also wakes when an event arrives).
    poll_s: float = Field(default=1.0, gt=0)
    concurrency: int = Field(default=32, ge=1, le=1_000, description="Deliveries in flight per dispatcher.")
    #: A claimed attempt is another replica's to take over after this long (a crashed dispatcher).
    claim_lease_s: float = Field(default=120.0, gt=0)
