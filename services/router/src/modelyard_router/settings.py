from pydantic import Field

from modelyard_core.settings import Settings


class RouterSettings(Settings):
    group_id: str = "modelyard-router"
    #: Model calls one query may make in total (first answer plus escalations).
    max_attempts: int = Field(default=3, ge=1, le=5)
    #: How long to wait for the tenant view to catch up before calling a tenant unknown.
    tenant_sync_timeout_s: float = 2.0
