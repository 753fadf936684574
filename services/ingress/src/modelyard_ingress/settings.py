"""Settings of the ingress (``MODELYARD_<NAME>``, on top of the shared ones)."""

from __future__ import annotations

import os
import socket

from modelyard_tenancy import AuthSettings
from pydantic import Field


class IngressSettings(AuthSettings):
    """The ingress's settings; ``admin_token`` and ``jwt_secret`` are the tenant service's variables
    (``AuthSettings``), so a JWT minted by the tenant API is accepted here."""

    ingress_host: str = "0.0.0.0"
    ingress_port: int = Field(default=8081, ge=0, le=65535, description="HTTP port of the ingress (MODELYARD_INGRESS_PORT).")
    #: How long a request waits for its outcome; a client may ask for less with ``X-Modelyard-Timeout``.
    ingress_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    #: Requests waiting for an outcome at once in this process; beyond it the ingress answers 503.
    ingress_max_in_flight: int = Field(default=2048, ge=1)
    #: With no request waiting for this long, stop reading the outcomes topic (0: always read it); the
    #: next request first moves to the topic's end (one offsets request, a few milliseconds).
    ingress_idle_pause_s: float = Field(default=5.0, ge=0)
    #: How long a resolved API key or JWT is remembered (0: every request reads MongoDB). A revoked
    #: key therefore stops working here at most this long after revocation.
    ingress_auth_cache_s: float = Field(default=10.0, ge=0, le=300)
    #: Hostile-input limits (413 for the body, 422 naming the field for the rest).
    ingress_max_body_bytes: int = Field(default=2**20, ge=1024, description="Largest request body accepted.")
    ingress_max_messages: int = Field(default=64, ge=1, le=101, description="Messages per request (the contract "
                                      "carries at most 100 earlier turns).")
    ingress_max_message_chars: int = Field(default=32_000, ge=1, le=32_000, description="Characters of one message's "
                                           "text (the contract's limit is 32,000).")
    #: Who this replica is (streamed queries name it in ``stream_to``; logs say it): the pod's name by default.
    ingress_instance_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}", max_length=128)
    #: The partition of ``queries.streams`` this replica reads live tokens from (default: one picked at
    #: random at start; replicas that pick the same one each skip the other's batches).
    ingress_stream_partition: int | None = Field(default=None, ge=0)
