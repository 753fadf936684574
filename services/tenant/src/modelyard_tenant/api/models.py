"""Bring your own model (enterprise): a tenant's OpenAI-compatible endpoints, one per model class.

The tenant's queries routed to that class are answered by its endpoint (the inference workers read it
from the tenant snapshot, the API key still sealed with the master key), priced with the tenant's
prices and metered as tenant-paid. The key is never shown again.
(No ``from __future__ import annotations`` here: FastAPI must see the classes.)
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from modelyard_core.secrets import SecretBox
from modelyard_events import ModelClass
from modelyard_hooks import BadUrl, check_endpoint_url
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ..errors import field_error
from ..permissions import Action
from .deps import TenantAccess, tenant_access

router = APIRouter(prefix="/v1/tenants/{tenant_id}/models", tags=["own models"])
Manage = Annotated[TenantAccess, Depends(tenant_access(Action.MANAGE_TENANT))]
Reader = Annotated[TenantAccess, Depends(tenant_access(Action.READ))]


class ModelEndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_class: ModelClass = Field(description="Queries the router sends to this class go to this endpoint.")
    base_url: str = Field(max_length=2048, examples=["https://llm.acme.example/v1"])
    model: str = Field(min_length=1, max_length=128, description="The model name the endpoint serves.")
    api_key: SecretStr = Field(min_length=1, max_length=1024, description="Stored encrypted; never shown again.")
    input_usd_per_m: float = Field(ge=0, le=10_000, description="Price per million input tokens (the tenant's).")
    output_usd_per_m: float = Field(ge=0, le=10_000, description="Price per million output tokens.")


class ModelEndpointOut(BaseModel):
    endpoint_id: str
    model_class: ModelClass
    base_url: str
    model: str
    input_usd_per_m: float
    output_usd_per_m: float


def _view(e: dict) -> ModelEndpointOut:
    return ModelEndpointOut.model_validate(e)


@router.put("", status_code=status.HTTP_200_OK)
async def set_endpoint(body: ModelEndpointIn, access: Manage, request: Request) -> ModelEndpointOut:
    """Add or replace the tenant's endpoint for a class (tiers with custom models only: enterprise)."""
    settings = request.app.state.settings
    try:
        url = check_endpoint_url(body.base_url, allow_http_localhost=settings.model_endpoints_allow_http_localhost)
    except BadUrl as exc:
        raise field_error("base_url", str(exc)) from None
    box: SecretBox = request.app.state.service.box
    endpoint = {"endpoint_id": uuid.uuid4().hex, "model_class": body.model_class.value, "base_url": url.rstrip("/"),
                "model": body.model, "sealed_api_key": box.seal(body.api_key.get_secret_value()),
                "input_usd_per_m": body.input_usd_per_m, "output_usd_per_m": body.output_usd_per_m}
    await request.app.state.service.set_model_endpoint(access.tenant_id, endpoint)
    return _view(endpoint)


@router.get("")
async def list_endpoints(access: Reader) -> list[ModelEndpointOut]:
    return [_view(e) for e in access.tenant.get("model_endpoints") or []]


@router.delete("/{model_class}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_endpoint(model_class: ModelClass, access: Manage, request: Request) -> Response:
    """The class goes back to the platform's models."""
    await request.app.state.service.delete_model_endpoint(access.tenant_id, model_class.value)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
