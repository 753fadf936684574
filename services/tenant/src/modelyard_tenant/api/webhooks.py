"""Webhook endpoints of a tenant: register, list, change, delete, rotate the secret, read the delivery log.

The dispatcher (``modelyard webhooks``) delivers; this API only manages endpoints (``modelyard_hooks``).
A secret is shown once, when it is made; stored sealed with the master key.
(No ``from __future__ import annotations`` here: FastAPI must see the classes.)
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from modelyard_hooks import BadUrl, Deliveries, Endpoints, WebhookType, check_endpoint_url
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import NotFound, QuotaExceeded, field_error
from ..permissions import Action
from ..schemas import Page
from ..service import utcnow
from .deps import Paging, ResourceId, TenantAccess, paging, tenant_access

router = APIRouter(prefix="/v1/tenants/{tenant_id}/webhooks", tags=["webhooks"])
Manage = Annotated[TenantAccess, Depends(tenant_access(Action.MANAGE_TENANT))]
Events = Annotated[list[WebhookType], Field(min_length=1, max_length=len(WebhookType), description="Webhook event types to receive.")]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, examples=["https://hooks.example.com/modelyard"])
    events: Events
    description: str = Field(default="", max_length=200)

    @field_validator("events")
    @classmethod
    def _unique(cls, v: list[WebhookType]) -> list[WebhookType]:
        return sorted(set(v))


class WebhookPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(default=None, max_length=2048)
    events: Events = Field(default=None)
    description: str = Field(default=None, max_length=200)
    enabled: bool = Field(default=None)


class SecretInfo(BaseModel):
    created_at: datetime
    expires_at: datetime | None = Field(description="Null for the current secret; set while a rotated-out one still signs.")


class WebhookOut(BaseModel):
    webhook_id: str
    tenant_id: str
    url: str
    events: list[WebhookType]
    description: str
    enabled: bool
    secrets: list[SecretInfo]
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret (whsec_...). Shown once.")


class SecretRotated(BaseModel):
    webhook_id: str
    secret: str = Field(description="The new signing secret. Shown once.")
    previous_valid_until: datetime | None = Field(description="Until then the previous secret signs too.")


class Attempt(BaseModel):
    n: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float


class DeliveryOut(BaseModel):
    delivery_id: str
    webhook_id: str = Field(description="The event's id (the webhook-id header).")
    type: WebhookType
    status: str = Field(description="pending, delivered or parked (gave up; `modelyard webhooks replay` sends it again).")
    attempts: list[Attempt]
    created_at: datetime
    first_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None


def _endpoints(request: Request) -> Endpoints:
    return request.app.state.service.webhooks


def _view(doc: dict) -> WebhookOut:
    return WebhookOut.model_validate({**doc, "webhook_id": doc["_id"],
                                      "secrets": [{k: s[k] for k in ("created_at", "expires_at")} for s in doc["secrets"]]})


def _url(request: Request, url: str) -> str:
    try:
        return check_endpoint_url(url, allow_http_localhost=request.app.state.settings.webhooks.allow_http_localhost)
    except BadUrl as exc:
        raise field_error("url", str(exc)) from None


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_webhook(body: WebhookCreate, access: Manage, request: Request) -> WebhookCreated:
    """Register an HTTPS endpoint for some event types; the response holds its signing secret, once."""
    endpoints = _endpoints(request)
    limit = request.app.state.settings.webhooks.max_endpoints_per_tenant
    if await endpoints.count(access.tenant_id) >= limit:
        raise QuotaExceeded(f"at most {limit} webhook endpoints per tenant", limit=limit)
    doc, secret = await endpoints.create(access.tenant_id, _url(request, body.url), body.events, body.description, utcnow())
    return WebhookCreated.model_validate({**_view(doc).model_dump(), "secret": secret})


@router.get("")
async def list_webhooks(access: Manage, request: Request, page: Annotated[Paging, Depends(paging)]) -> Page[WebhookOut]:
    endpoints = _endpoints(request)
    docs = await endpoints.list(access.tenant_id, skip=page.offset, limit=page.limit)
    return Page[WebhookOut](items=[_view(d) for d in docs], total=await endpoints.count(access.tenant_id), offset=page.offset, limit=page.limit)


@router.get("/{webhook_id}")
async def get_webhook(webhook_id: ResourceId, access: Manage, request: Request) -> WebhookOut:
    doc = await _endpoints(request).get(access.tenant_id, webhook_id)
    if doc is None:
        raise NotFound("no such webhook endpoint")
    return _view(doc)


@router.patch("/{webhook_id}")
async def update_webhook(webhook_id: ResourceId, body: WebhookPatch, access: Manage, request: Request) -> WebhookOut:
    changes = body.model_dump(exclude_unset=True, mode="json")
    if "url" in changes:
        changes["url"] = _url(request, changes["url"])
    if "events" in changes:
        changes["events"] = sorted(set(changes["events"]))
    doc = await _endpoints(request).update(access.tenant_id, webhook_id, changes, utcnow())
    if doc is None:
        raise NotFound("no such webhook endpoint")
    return _view(doc)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: ResourceId, access: Manage, request: Request) -> Response:
    if not await _endpoints(request).delete(access.tenant_id, webhook_id):
        raise NotFound("no such webhook endpoint")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{webhook_id}/rotate-secret")
async def rotate_secret(
    webhook_id: ResourceId, access: Manage, request: Request,
    grace_s: Annotated[float | None, Query(ge=0, le=30 * 86_400, description="How long the previous secret keeps signing "
                                           "(default: webhooks.rotation_grace_s, 24 h).")] = None,
) -> SecretRotated:
    """A new signing secret; deliveries carry a signature by each secret until the previous one expires."""
    grace = request.app.state.settings.webhooks.rotation_grace_s if grace_s is None else grace_s
    now = utcnow()
    secret = await _endpoints(request).rotate(access.tenant_id, webhook_id, grace, now)
    if secret is None:
        raise NotFound("no such webhook endpoint")
    doc = await _endpoints(request).get(access.tenant_id, webhook_id)
    previous = [s["expires_at"] for s in (doc or {}).get("secrets", [])[1:] if s["expires_at"] and s["expires_at"] > now]
    return SecretRotated(webhook_id=webhook_id, secret=secret, previous_valid_until=max(previous) if previous else None)


@router.get("/{webhook_id}/deliveries")
async def list_deliveries(webhook_id: ResourceId, access: Manage, request: Request,
                          page: Annotated[Paging, Depends(paging)]) -> Page[DeliveryOut]:
    """The endpoint's delivery log, newest first: each event's status and every attempt."""
    if await _endpoints(request).get(access.tenant_id, webhook_id) is None:
        raise NotFound("no such webhook endpoint")
    docs, total = await Deliveries(request.app.state.db).log(access.tenant_id, webhook_id, skip=page.offset, limit=page.limit)
    items = [DeliveryOut.model_validate({**d, "delivery_id": d["_id"]}) for d in docs]
    return Page[DeliveryOut](items=items, total=total, offset=page.offset, limit=page.limit)
