"""API keys of a tenant, and the exchange of an API key for a short-lived JWT."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, Security, status
from fastapi.security import HTTPAuthorizationCredentials
from modelyard_tenancy import Role, Unauthenticated, bearer_scheme, current_principal, issue_jwt

from ..errors import Forbidden
from ..guard import TokenGuard
from ..permissions import Action
from ..schemas import KeyCreate, KeyCreated, KeyOut, Page, TokenOut, WhoAmI
from .deps import Caller, Paging, ResourceId, Service, TenantAccess, paging, tenant_access
from .views import key_view

router = APIRouter(tags=["authentication"])
Manage = Annotated[TenantAccess, Depends(tenant_access(Action.MANAGE_KEYS))]


@router.post("/v1/tenants/{tenant_id}/api-keys", status_code=status.HTTP_201_CREATED)
async def create_key(body: KeyCreate, access: Manage, service: Service) -> KeyCreated:
    """A new API key; the key itself is in the response only, never stored."""
    doc, key = await service.create_key(access.tenant_id, body.name, Role(body.role))
    return KeyCreated.model_validate({**key_view(doc).model_dump(), "api_key": key.secret})


@router.get("/v1/tenants/{tenant_id}/api-keys")
async def list_keys(access: Manage, service: Service, page: Annotated[Paging, Depends(paging)]) -> Page[KeyOut]:
    docs, total = await service.list_keys(access.tenant_id, offset=page.offset, limit=page.limit)
    return Page[KeyOut](items=[key_view(d) for d in docs], total=total, offset=page.offset, limit=page.limit)


@router.delete("/v1/tenants/{tenant_id}/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(key_id: ResourceId, access: Manage, service: Service) -> Response:
    await service.revoke_key(access.tenant_id, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/auth/token", responses={429: {"description": "Too many failed attempts for this key or address; see Retry-After."}})
async def token(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]) -> TokenOut:
    """Exchange the API key in ``Authorization: Bearer`` for a JWT with the same tenant and role.

    Failed attempts are counted per presented key id and per source address; past the limit the
    answer is 429 with ``Retry-After`` until the window ends, right or wrong key."""
    guard: TokenGuard = request.app.state.token_guard
    presented = credentials.credentials.strip() if credentials is not None else ""
    attempt = guard.attempt(presented, request.client.host if request.client else None)
    try:
        principal = await current_principal(request, credentials)
    except Unauthenticated:
        attempt.failed()
        raise
    if principal.via != "api_key":
        raise Forbidden("only an API key can be exchanged for a token")
    settings = request.app.state.settings
    jwt_token = issue_jwt(principal, secret=settings.jwt_secret, ttl_s=settings.jwt_ttl_s)
    return TokenOut(access_token=jwt_token, expires_in=settings.jwt_ttl_s, tenant_id=principal.tenant_id or "", role=principal.role.value)


@router.get("/v1/auth/whoami")
async def whoami(principal: Caller) -> WhoAmI:
    """The caller's role and tenant (none for the platform administrator): what a token may see."""
    return WhoAmI(role=principal.role.value, tenant_id=principal.tenant_id, via=principal.via)
