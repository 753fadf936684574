"""The audit trail, read: every platform call for the platform administrator, a tenant's own calls
for that tenant's administrators. Newest first; filters: time range, action, outcome; paging."""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from modelyard_events import AuditOutcome, AuditRecorded

from ..audit import AuditTrail
from ..errors import InvalidField
from ..permissions import Action
from ..schemas import Page
from .deps import Paging, TenantAccess, paging, platform_admin, tenant_access

router = APIRouter(tags=["audit"])


@dataclass(frozen=True)
class AuditFilter:
    since: datetime | None
    until: datetime | None
    action: str | None
    outcome: AuditOutcome | None

    def query(self) -> dict[str, Any]:
        flt: dict[str, Any] = {}
        if self.since or self.until:
            flt["time"] = {**({"$gte": self.since} if self.since else {}), **({"$lt": self.until} if self.until else {})}
        if self.action:
            flt["action"] = self.action
        if self.outcome:
            flt["outcome"] = self.outcome.value
        return flt


def audit_filter(
    since: Annotated[datetime | None, Query(description="Only calls at or after this time (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Only calls before this time (ISO 8601).")] = None,
    action: Annotated[str | None, Query(max_length=64, description="Only this operation, e.g. revoke_key.")] = None,
    outcome: Annotated[AuditOutcome | None, Query(description="Only successes or only failures.")] = None,
) -> AuditFilter:
    if since and until and since >= until:
        raise InvalidField([{"loc": ["query", "since"], "msg": "since is not before until", "type": "value_error"}])
    return AuditFilter(since, until, action, outcome)


def get_trail(request: Request) -> AuditTrail:
    return request.app.state.audit


Filter = Annotated[AuditFilter, Depends(audit_filter)]
Trail = Annotated[AuditTrail, Depends(get_trail)]
Pages = Annotated[Paging, Depends(paging)]


@router.get("/v1/audit", dependencies=[Depends(platform_admin)])
async def platform_audit(
    flt: Filter, trail: Trail, page: Pages,
    tenant_id: Annotated[str | None, Query(max_length=128, description="Only calls on this tenant.")] = None,
) -> Page[AuditRecorded]:
    """Every audited call (platform administrator)."""
    query = flt.query() | ({"tenant_id": tenant_id} if tenant_id else {})
    items, total = await trail.query(query, offset=page.offset, limit=page.limit)
    return Page[AuditRecorded](items=items, total=total, offset=page.offset, limit=page.limit)


@router.get("/v1/tenants/{tenant_id}/audit")
async def tenant_audit(
    access: Annotated[TenantAccess, Depends(tenant_access(Action.MANAGE_TENANT))], flt: Filter, trail: Trail, page: Pages,
) -> Page[AuditRecorded]:
    """The calls made on this tenant (its administrators and the platform administrator)."""
    items, total = await trail.query(flt.query() | {"tenant_id": access.tenant_id}, offset=page.offset, limit=page.limit)
    return Page[AuditRecorded](items=items, total=total, offset=page.offset, limit=page.limit)
