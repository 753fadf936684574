"""Security events of the tenant service: revoked credentials and the audit trail.

``KeyRevoked`` travels on the compacted ``tenants.revocations`` topic (key: the API key id). Every
service that accepts JWTs reads it as a view and refuses a token minted from a key on it, without a
database read. ``AuditRecorded`` travels on ``audit.events`` (key: tenant id): one per mutating API
call, successful or not. Neither ever carries a secret: a key is named by its id, never its value.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field

from .base import ID_MAX, Event

#: ``tenant_id`` of an audit event about no tenant in particular (e.g. a refused platform call).
PLATFORM_TENANT = "_platform"


class RevocationReason(StrEnum):
    REVOKED = "revoked"  # DELETE /v1/tenants/{id}/api-keys/{key_id}
    TENANT_DELETED = "tenant_deleted"  # the tenant and every key of it were deleted


class KeyRevoked(Event):
    """An API key that no longer authenticates, nor do the JWTs minted from it (key: ``key_id``)."""

    TYPE: ClassVar[str] = "modelyard.key.revoked.v1"
    type: Literal["modelyard.key.revoked.v1"] = "modelyard.key.revoked.v1"

    key_id: str = Field(min_length=1, max_length=ID_MAX, description="The key's id (the JWT's `sub`), never the key.")
    revoked_at: datetime = Field(description="When the key was revoked (UTC).")
    reason: RevocationReason = RevocationReason.REVOKED


class AuditOutcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


class AuditRecorded(Event):
    """Who did what to which tenant resource, from where, and whether it worked (key: ``tenant_id``)."""

    TYPE: ClassVar[str] = "modelyard.audit.recorded.v1"
    type: Literal["modelyard.audit.recorded.v1"] = "modelyard.audit.recorded.v1"

    service: str = Field(max_length=64, description="The API that served the call (e.g. tenant).")
    actor: str = Field(max_length=ID_MAX, description="The caller: an API key id, `platform-admin`, or `anonymous`.")
    role: str | None = Field(default=None, max_length=32, description="The caller's role; null when unauthenticated.")
    action: str = Field(max_length=64, description="What was attempted, e.g. `api_key.revoke`.")
    method: str = Field(max_length=16)
    target: str = Field(max_length=512, description="The resource acted on: the request path, plus a created id.")
    request_id: str = Field(max_length=ID_MAX, description="The request's id (`X-Request-ID`, generated when absent).")
    source_address: str | None = Field(default=None, max_length=64, description="The caller's network address.")
    outcome: AuditOutcome
    status_code: int = Field(ge=100, le=599)
    reason: str | None = Field(default=None, max_length=300, description="Why a failure failed (the error code).")
