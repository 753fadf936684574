"""Webhook signatures in the Standard Webhooks scheme, so receivers can use its libraries to verify.

Each delivery carries three headers:

* ``webhook-id`` — the event's id (the same on every attempt: the receiver's de-duplication key);
* ``webhook-timestamp`` — Unix seconds of this attempt (receivers refuse old ones: replay protection);
* ``webhook-signature`` — ``v1,<base64 HMAC-SHA256>`` of ``"{id}.{timestamp}.{body}"`` under the
  endpoint's secret, one per valid secret, space-separated: during a rotation both the new and the
  previous secret sign, so a receiver holding either verifies.

A secret is ``whsec_`` + base64 of 24 random bytes; the HMAC key is those bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"
TOLERANCE_S = 300


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    mac = hmac.new(_key(secret), f"{webhook_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_headers(signing_secrets: Sequence[str], webhook_id: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": " ".join(signature(s, webhook_id, ts, body) for s in signing_secrets),
        "content-type": "application/json",
    }


def verify(secret: str, headers: Mapping[str, str], body: str, *, now: float | None = None, tolerance_s: int = TOLERANCE_S) -> bool:
    """Whether one of ``headers``' signatures is ``secret``'s over ``body``, within the time tolerance
    (what a receiver does; modelyard's own tests and the docs' example use it)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        ts = int(lowered["webhook-timestamp"])
        expected = signature(secret, lowered["webhook-id"], ts, body)
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance_s:
        return False
    return any(hmac.compare_digest(expected, candidate) for candidate in lowered.get("webhook-signature", "").split())
