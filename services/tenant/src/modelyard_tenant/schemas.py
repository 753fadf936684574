"""Request and response bodies of the tenant API.

Request models forbid unknown fields, so a typo is a 422 rather than a silently ignored setting.
Update models give every field a ``None`` default without making it nullable: a field left out is
unchanged, a field sent as ``null`` is a 422 (except where null means "clear", e.g. branding).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

from modelyard_events import (
    Industry,
    ModelClass,
    RoutingPolicy,
    RoutingPreference,
    SelfConsistency,
    TenantBudget,
    TenantStatus,
    Tier,
    TierLimits,
)
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
EXPORT_FORMAT = "modelyard.tenant-export.v1"
MAX_DOCUMENT_CONTENT = 1_000_000  # characters; larger blobs live elsewhere and are declared by size_bytes

Label = Annotated[str, Field(min_length=1, max_length=64)]
Permission = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.:*-]{0,63}$")]
MetadataKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]  # no "$" or "." (field names in MongoDB)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------------------
# Organisations


class TenantSettings(Strict):
    timezone: str = Field(default="UTC", min_length=1, max_length=64)
    locale: str = Field(default="en", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    data_retention_days: int = Field(default=365, ge=1, le=3650)
    compliance: list[Label] = Field(default_factory=list, max_length=20, description="Compliance regimes (the industry preset fills it).")


class SettingsPatch(Strict):
    timezone: str = Field(default=None, min_length=1, max_length=64)
    locale: str = Field(default=None, pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    data_retention_days: int = Field(default=None, ge=1, le=3650)
    compliance: list[Label] = Field(default=None, max_length=20)


class Branding(Strict):
    """White-label settings; ``null`` clears a field."""

    display_name: str | None = Field(default=None, max_length=200)
    logo_url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://\S+$")
    primary_color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")


class PolicyPatch(Strict):
    """Overrides of the routing policy (fields of ``RoutingPolicy``); ``null`` clears min/max class, and a
    ``null`` cascade_threshold makes it follow the preference again (``CASCADE_THRESHOLDS``)."""

    preference: RoutingPreference = Field(default=None)
    cascade_threshold: float | None = Field(default=None, ge=0, le=1)
    self_consistency: SelfConsistency = Field(default=None)
    class_models: dict[ModelClass, Annotated[str, Field(min_length=1, max_length=128)]] = Field(default=None)
    min_class: ModelClass | None = None
    max_class: ModelClass | None = None
    router_model: str | None = Field(default=None, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    shadow_share: float = Field(default=None, ge=0, le=0.2)


class TenantCreate(Strict):
    organization_name: str = Field(min_length=1, max_length=200)
    admin_email: str = Field(max_length=254, pattern=EMAIL_PATTERN)
    industry: Industry
    subscription_tier: Tier
    branding: Branding = Field(default_factory=Branding)


class TenantPatch(Strict):
    organization_name: str = Field(default=None, min_length=1, max_length=200)
    admin_email: str = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)
    subscription_tier: Tier = Field(default=None, description="Upgrade or downgrade; a downgrade below current usage is refused (409).")
    status: TenantStatus = Field(default=None, description="Platform administrator only.")
    settings: SettingsPatch = Field(default=None)
    branding: Branding = Field(default=None)
    policy: PolicyPatch = Field(default=None)
    budget: TenantBudget = Field(default=None)


class TierChangeRecord(Strict):
    """From ``since`` on, the tenant was on ``tier`` (billing prorates base prices by it)."""

    tier: Tier
    since: AwareDatetime


class TenantRecord(Strict):
    """A tenant as stored and exported."""

    tenant_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    organization_name: str = Field(min_length=1, max_length=200)
    admin_email: str = Field(max_length=254, pattern=EMAIL_PATTERN)
    industry: Industry
    subscription_tier: Tier
    status: TenantStatus = TenantStatus.ACTIVE
    settings: TenantSettings = Field(default_factory=TenantSettings)
    branding: Branding = Field(default_factory=Branding)
    policy: RoutingPolicy = Field(default_factory=RoutingPolicy)
    budget: TenantBudget = Field(default_factory=TenantBudget)
    version: int = Field(ge=0)
    created_at: AwareDatetime
    updated_at: AwareDatetime
    tier_history: list[TierChangeRecord] = Field(default_factory=list, max_length=10_000, description="Every tier the "
                                                 "tenant was on and since when, oldest first: the creation's tier, then "
                                                 "each change (empty for tenants from before it was kept).")


class Features(BaseModel):
    support_level: str
    advanced_analytics: bool
    custom_models: bool
    sso: bool
    dedicated_infrastructure: bool


class PresetOut(BaseModel):
    routing_preference: RoutingPreference
    compliance: list[str]
    features: list[str]


class TenantOut(TenantRecord):
    model_config = ConfigDict(extra="ignore")

    limits: TierLimits
    features: Features
    industry_preset: PresetOut


class TenantCreated(TenantOut):
    api_key: str = Field(description="The first tenant_admin API key. Shown once; only its hash is stored.")
    api_key_id: str


class QuotaLine(BaseModel):
    limit: str
    current: int
    allowed: int
    unit: str
    period: str | None = Field(default=None, description="What a counted limit counts over: the UTC day (YYYY-MM-DD) "
                               "or month (YYYY-MM); none for a level (agents, storage).")


class QuotasOut(BaseModel):
    tenant_id: str
    subscription_tier: Tier
    period: str = Field(description="Month the ticket limit counts (YYYY-MM, UTC).")
    quotas: list[QuotaLine]


# --------------------------------------------------------------------------------------------------
# Tenant-scoped resources


class AgentCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    agent_type: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", examples=["incident_specialist"])
    system_prompt: str = Field(default="", max_length=16_000)
    use_model_router: bool = True
    description: str = Field(default="", max_length=2_000)


class AgentUpdate(Strict):
    name: str = Field(default=None, min_length=1, max_length=200)
    agent_type: str = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,63}$")
    system_prompt: str = Field(default=None, max_length=16_000)
    use_model_router: bool = Field(default=None)
    description: str = Field(default=None, max_length=2_000)


class RoleCreate(Strict):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2_000)
    permissions: list[Permission] = Field(default_factory=list, max_length=100)


class RoleUpdate(Strict):
    name: str = Field(default=None, min_length=1, max_length=100)
    description: str = Field(default=None, max_length=2_000)
    permissions: list[Permission] = Field(default=None, max_length=100)


class TicketPriority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class TicketStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


class TicketCreate(Strict):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=20_000)
    priority: TicketPriority = TicketPriority.MEDIUM
    status: TicketStatus = TicketStatus.OPEN
    assigned_agent_id: str | None = Field(default=None, max_length=128, description="An agent of the same tenant.")
    tags: list[Label] = Field(default_factory=list, max_length=20)


class TicketUpdate(Strict):
    title: str = Field(default=None, min_length=1, max_length=200)
    description: str = Field(default=None, max_length=20_000)
    priority: TicketPriority = Field(default=None)
    status: TicketStatus = Field(default=None)
    assigned_agent_id: str | None = Field(default=None, max_length=128)
    tags: list[Label] = Field(default=None, max_length=20)


def content_size(content: str) -> int:
    return len(content.encode())


class DocumentCreate(Strict):
    """A document's size counts against the tier's storage: the UTF-8 length of ``content``, or
    ``size_bytes`` declared for a blob kept elsewhere (``uri``)."""

    title: str = Field(min_length=1, max_length=200)
    content: str | None = Field(default=None, max_length=MAX_DOCUMENT_CONTENT)
    content_type: str = Field(default="text/plain", min_length=1, max_length=100)
    size_bytes: int | None = Field(default=None, ge=0, le=1 << 40)
    uri: str | None = Field(default=None, max_length=2048)
    metadata: dict[MetadataKey, Annotated[str, Field(max_length=1024)]] = Field(default_factory=dict, max_length=50)

    @model_validator(mode="after")
    def _size_known(self) -> DocumentCreate:
        if self.content is None and self.size_bytes is None:
            raise ValueError("give content or size_bytes")
        if self.content is not None and self.size_bytes is not None and self.size_bytes != content_size(self.content):
            raise ValueError("size_bytes must equal the UTF-8 length of content")
        return self


class DocumentUpdate(Strict):
    title: str = Field(default=None, min_length=1, max_length=200)
    content: str | None = Field(default=None, max_length=MAX_DOCUMENT_CONTENT)
    content_type: str = Field(default=None, min_length=1, max_length=100)
    size_bytes: int = Field(default=None, ge=0, le=1 << 40)
    uri: str | None = Field(default=None, max_length=2048)
    metadata: dict[MetadataKey, Annotated[str, Field(max_length=1024)]] = Field(default=None, max_length=50)


class Stamped(BaseModel):
    tenant_id: str
    created_at: AwareDatetime
    updated_at: AwareDatetime


class AgentOut(Stamped, AgentCreate):
    agent_id: str = Field(max_length=128)


class RoleOut(Stamped, RoleCreate):
    role_id: str = Field(max_length=128)


class TicketOut(Stamped, TicketCreate):
    ticket_id: str = Field(max_length=128)


class DocumentOut(Stamped, DocumentCreate):
    document_id: str = Field(max_length=128)
    size_bytes: int = Field(ge=0)  # type: ignore[assignment]  # always known once stored


# --------------------------------------------------------------------------------------------------
# API keys and tokens


class KeyCreate(Strict):
    name: str = Field(default="", max_length=100)
    role: Literal["tenant_admin", "member", "service"] = "member"


class KeyOut(BaseModel):
    key_id: str
    tenant_id: str
    name: str
    role: str
    prefix: str = Field(description="The key's visible beginning, e.g. my_live_ab12cd34.")
    created_at: datetime
    revoked_at: datetime | None = None


class KeyCreated(KeyOut):
    api_key: str = Field(description="The key itself. Shown once; only its hash is stored.")


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    tenant_id: str
    role: str


class WhoAmI(BaseModel):
    role: str
    tenant_id: str | None = Field(description="None for the platform administrator.")
    via: Literal["admin_token", "api_key", "jwt"]


# --------------------------------------------------------------------------------------------------
# Paging, export

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class TenantExport(Strict):
    format: Literal["modelyard.tenant-export.v1"] = EXPORT_FORMAT
    exported_at: datetime
    tenant: TenantRecord
    agents: list[AgentOut] = Field(default_factory=list)
    roles: list[RoleOut] = Field(default_factory=list)
    tickets: list[TicketOut] = Field(default_factory=list)
    documents: list[DocumentOut] = Field(default_factory=list)
    usage: dict[str, list[dict[str, Any]]] = Field(
        default_factory=dict, description="Metering's usage documents by collection (MongoDB relaxed extended JSON)."
    )


class ImportResult(BaseModel):
    tenant: TenantOut
    api_key: str = Field(description="A new tenant_admin key (keys are never exported). Shown once.")
    api_key_id: str
    imported: dict[str, int] = Field(description="Documents imported per resource kind and usage collection.")
