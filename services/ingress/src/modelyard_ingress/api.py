"""The OpenAI-compatible routes: ``POST /v1/chat/completions``, ``GET /v1/models[/{model}]``."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response, StreamingResponse
from modelyard_tenancy import Principal, current_principal

from .errors import OpenAIError
from .limits import MessageLimits
from .protocol import ChatCompletionRequest, model_card, model_ids
from .responses import completion
from .service import Ingress

router = APIRouter(tags=["openai"])


async def get_ingress(request: Request) -> Ingress:  # async: a sync dependency costs a thread hop
    return request.app.state.ingress


async def tenant_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """A caller acting for a tenant: an API key or JWT (any tenant role). The platform token has no tenant."""
    if principal.tenant_id is None:
        raise OpenAIError(403, "queries belong to a tenant: use a tenant API key or JWT, not the platform administrator token",
                          type="permission_error", code="tenant_required", retry=False)
    return principal


Caller = Annotated[Principal, Depends(tenant_principal)]
Service = Annotated[Ingress, Depends(get_ingress)]


def _json(doc: object, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(doc), media_type="application/json", headers=headers)


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    principal: Caller,
    ingress: Service,
    x_modelyard_timeout: Annotated[str | None, Header(description="Seconds to wait for the outcome (at most the server's limit).")] = None,
) -> Response:
    """Submit the chat request as a query (the router picks the model unless ``model`` pins one) and
    answer with its outcome. ``stream: true`` answers with server-sent events: the tokens as the model
    generates them when the route is final, else the answer once the cascade has accepted it."""
    assert principal.tenant_id is not None
    limits: MessageLimits = request.app.state.limits
    limits.check(body)
    timeout_s = ingress.timeout_for(x_modelyard_timeout)
    if body.stream:
        query_id, stream = await ingress.stream(body, principal.tenant_id, timeout_s)
        return StreamingResponse(stream.events(), media_type="text/event-stream",
                                 headers={"x-request-id": query_id, "cache-control": "no-cache"})
    outcome = await ingress.answer(body, principal.tenant_id, timeout_s)
    return _json(completion(outcome), {"x-request-id": outcome.query_id})


@router.get("/v1/models")
async def list_models(_: Caller, ingress: Service) -> Response:
    """``auto`` (the router decides), the classes ``slm``, ``llm``, ``llm_plus``, and every priced model."""
    return _json({"object": "list", "data": [model_card(m) for m in model_ids(ingress.pricing)]})


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, _: Caller, ingress: Service) -> Response:
    if model_id not in model_ids(ingress.pricing):
        raise OpenAIError(404, f"The model `{model_id}` does not exist or you do not have access to it.",
                          code="model_not_found", param="model", retry=False)
    return _json(model_card(model_id))
