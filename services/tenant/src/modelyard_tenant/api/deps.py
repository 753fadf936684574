"""Dependencies every route shares: the caller, the tenant it may act on, paging.

``tenant_access`` is the one gate for tenant routes, in this order: a tenant the caller cannot see
is 404 (whether or not it exists), then a missing tenant is 404, then an action the role does not
grant is 403, then a write to a suspended tenant is 403 (the platform administrator excepted).
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from modelyard_tenancy import Principal, current_principal

from ..errors import Forbidden, NotFound
from ..permissions import Action, allowed
from ..resources import Resources
from ..service import TenantService

TenantId = Annotated[str, Path(min_length=1, max_length=128, description="The tenant (organisation) id.")]
ResourceId = Annotated[str, Path(min_length=1, max_length=128)]
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_service(request: Request) -> TenantService:
    return request.app.state.service


def get_resources(request: Request) -> Resources:
    return request.app.state.resources


Service = Annotated[TenantService, Depends(get_service)]
Caller = Annotated[Principal, Depends(current_principal)]


@dataclass(frozen=True)
class TenantAccess:
    principal: Principal
    tenant_id: str
    tenant: dict


def tenant_access(action: Action):
    async def dependency(request: Request, tenant_id: TenantId, principal: Caller, service: Service) -> TenantAccess:
        if not principal.can_see(tenant_id):
            raise NotFound("no such tenant")
        tenant = await service.get_tenant(tenant_id)
        if tenant is None:
            raise NotFound("no such tenant")
        if not allowed(principal, action):
            raise Forbidden(f"the {principal.role.value} role may not {action.value.replace('_', ' ')}", action=action.value)
        if request.method not in READ_METHODS and tenant["status"] == "suspended" and not principal.is_platform_admin:
            raise Forbidden("the tenant is suspended", action=action.value)
        return TenantAccess(principal, tenant_id, tenant)

    return dependency


async def platform_admin(principal: Caller) -> Principal:
    if not principal.is_platform_admin:
        raise Forbidden("platform administrator only", action=Action.ADMINISTER.value)
    return principal


@dataclass(frozen=True)
class Paging:
    offset: int
    limit: int


def paging(
    # Bounded: an offset past the database's 64-bit skip was a 500 (found by the fuzz run, #21).
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=500, description="Items per page.")] = 50,
) -> Paging:
    return Paging(offset, limit)
