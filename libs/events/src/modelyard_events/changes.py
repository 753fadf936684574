"""What happened to a tenant, for systems outside modelyard (the webhook dispatcher tells tenants).

``TenantChanged`` travels on ``tenants.events`` (key: tenant id), published by the tenant service
through its outbox after the change is stored, so a change is announced once it happened and only
then. Events of one tenant keep their order on the topic.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field

from .base import ID_MAX, Event
from .domain import Tier


class Change(StrEnum):
    TIER_CHANGED = "tier_changed"
    KEY_CREATED = "key_created"
    KEY_REVOKED = "key_revoked"
    EXPORTED = "exported"
    DELETED = "deleted"


class TenantChanged(Event):
    """A tier change, an API key created or revoked, the tenant exported or deleted."""

    TYPE: ClassVar[str] = "modelyard.tenant.changed.v1"
    type: Literal["modelyard.tenant.changed.v1"] = "modelyard.tenant.changed.v1"

    change: Change
    version: int | None = Field(default=None, ge=0, description="The tenant's version after a tier change.")
    from_tier: Tier | None = None
    to_tier: Tier | None = None
    key_id: str | None = Field(default=None, max_length=ID_MAX, description="The API key's id (never the key).")
    key_name: str | None = Field(default=None, max_length=200)
    key_role: str | None = Field(default=None, max_length=32)
