"""Organisations: create, list, read, change (settings, branding, policy, budget, tier, status),
delete with cascade, quotas, export and import."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from modelyard_events import TenantStatus, Tier
from modelyard_usage import read

from ..errors import Forbidden, NotFound
from ..permissions import Action
from ..plans import ENFORCED, capacity
from ..portability import export_tenant, import_tenant
from ..schemas import ImportResult, Page, QuotaLine, QuotasOut, TenantCreate, TenantCreated, TenantExport, TenantOut, TenantPatch
from ..service import month_start, utcnow
from .deps import Caller, Paging, Service, TenantAccess, TenantId, paging, platform_admin, tenant_access
from .views import tenant_view

router = APIRouter(prefix="/v1/tenants", tags=["organisations"])
Admin = Depends(platform_admin)


@router.post("", status_code=status.HTTP_201_CREATED, dependencies=[Admin])
async def create_tenant(body: TenantCreate, service: Service) -> TenantCreated:
    """Create an organisation with its industry preset; returns its first tenant_admin API key (shown once)."""
    doc, key_doc, key = await service.create_tenant(body)
    return TenantCreated.model_validate({**tenant_view(doc).model_dump(), "api_key": key.secret, "api_key_id": key_doc["_id"]})


@router.get("", dependencies=[Admin])
async def list_tenants(
    service: Service,
    page: Annotated[Paging, Depends(paging)],
    tier: Annotated[Tier | None, Query(description="Only this tier.")] = None,
    status_: Annotated[TenantStatus | None, Query(alias="status", description="Only this status.")] = None,
) -> Page[TenantOut]:
    docs, total = await service.list_tenants(offset=page.offset, limit=page.limit, tier=tier, status=status_)
    return Page[TenantOut](items=[tenant_view(d) for d in docs], total=total, offset=page.offset, limit=page.limit)


@router.post("/import", status_code=status.HTTP_201_CREATED, dependencies=[Admin])
async def import_organisation(body: TenantExport, service: Service) -> ImportResult:
    """Re-create a tenant from its export under the same id; issues a new tenant_admin key."""
    doc, key_doc, key, counts = await import_tenant(service, body)
    return ImportResult(tenant=tenant_view(doc), api_key=key.secret, api_key_id=key_doc["_id"], imported=counts)


@router.get("/{tenant_id}")
async def get_tenant(access: Annotated[TenantAccess, Depends(tenant_access(Action.READ))]) -> TenantOut:
    return tenant_view(access.tenant)


@router.patch("/{tenant_id}")
async def update_tenant(
    body: TenantPatch, access: Annotated[TenantAccess, Depends(tenant_access(Action.MANAGE_TENANT))], service: Service
) -> TenantOut:
    """Change settings, branding, policy overrides, budget or tier (a downgrade below usage is 409); status is the platform administrator's."""
    return tenant_view(await service.update_tenant(access.tenant_id, body, access.principal))


@router.delete("/{tenant_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_tenant(tenant_id: TenantId, principal: Caller, service: Service) -> Response:
    """Delete the tenant and every document it owns (platform administrator); its keys stop working;
    tombstones are published. Also removes what an interrupted import or deletion left behind."""
    if not principal.is_platform_admin:
        if not principal.can_see(tenant_id):
            raise NotFound("no such tenant")
        raise Forbidden("platform administrator only", action=Action.ADMINISTER.value)
    await service.delete_tenant(tenant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{tenant_id}/quotas")
async def get_quotas(access: Annotated[TenantAccess, Depends(tenant_access(Action.READ))], service: Service) -> QuotasOut:
    """Current use of every limit of the tier: the three the tenant service enforces, and today's API
    calls as metered (the router admits against the same limit; metering alerts at 80% and 100%)."""
    now = utcnow()
    usage = await service.resource_usage(service.data(access.tenant_id), now)
    tier = Tier(access.tenant["subscription_tier"])
    month = month_start(now).strftime("%Y-%m")
    lines = [
        QuotaLine(limit=limit, current=usage.amount(limit), allowed=capacity(tier, limit), unit="bytes" if limit == "storage_mb" else "count",
                  period=month if limit == "tickets_per_month" else None)
        for limit in ENFORCED
    ]
    today = now.date()
    metered = await read.routing_stats(service.db, access.tenant_id, today, today)
    lines.append(QuotaLine(limit="api_calls_per_day", current=metered["queries"], allowed=capacity(tier, "api_calls_per_day"),
                           unit="count", period=today.isoformat()))
    return QuotasOut(tenant_id=access.tenant_id, subscription_tier=tier, period=month, quotas=lines)


@router.get("/{tenant_id}/export")
async def export_organisation(access: Annotated[TenantAccess, Depends(tenant_access(Action.MANAGE_TENANT))], service: Service) -> TenantExport:
    """The tenant, its resources and its usage documents as one JSON document (API keys excluded)."""
    return await export_tenant(service, access.tenant_id)

