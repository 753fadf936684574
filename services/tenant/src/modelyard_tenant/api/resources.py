"""Create, get, list, update and delete for every tenant-scoped resource kind.

The routes are generated per kind so that each gets its own request and response schemas in the
OpenAPI document. (No ``from __future__ import annotations`` here: FastAPI must see the classes.)
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from ..permissions import Action
from ..resources import KINDS, Kind, Resources
from ..schemas import Page
from .deps import Paging, ResourceId, TenantAccess, get_resources, paging, tenant_access

Store = Annotated[Resources, Depends(get_resources)]
Reader = Annotated[TenantAccess, Depends(tenant_access(Action.READ))]


def kind_router(kind: Kind) -> APIRouter:
    router = APIRouter(prefix=f"/v1/tenants/{{tenant_id}}/{kind.name}", tags=[kind.name])
    Writer = Annotated[TenantAccess, Depends(tenant_access(kind.write_action))]
    Create, Update, Out = kind.create, kind.update, kind.out

    async def create(body: Create, access: Writer, store: Store):  # type: ignore[valid-type]
        return await store.create(access.tenant_id, kind, body)

    async def list_(access: Reader, store: Store, page: Annotated[Paging, Depends(paging)]):
        items, total = await store.list(access.tenant_id, kind, offset=page.offset, limit=page.limit)
        return Page[Out](items=items, total=total, offset=page.offset, limit=page.limit)  # type: ignore[valid-type]

    async def get(resource_id: ResourceId, access: Reader, store: Store):
        return await store.get(access.tenant_id, kind, resource_id)

    async def update(resource_id: ResourceId, body: Update, access: Writer, store: Store):  # type: ignore[valid-type]
        return await store.update(access.tenant_id, kind, resource_id, body)

    async def delete(resource_id: ResourceId, access: Writer, store: Store) -> Response:
        await store.delete(access.tenant_id, kind, resource_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    one = "/{resource_id}"
    router.add_api_route("", create, methods=["POST"], status_code=201, response_model=Out, name=f"create_{kind.singular}",
                         summary=f"Create a {kind.singular}")
    router.add_api_route("", list_, methods=["GET"], response_model=Page[Out], name=f"list_{kind.name}", summary=f"List {kind.name}")
    router.add_api_route(one, get, methods=["GET"], response_model=Out, name=f"get_{kind.singular}", summary=f"Get a {kind.singular}")
    router.add_api_route(one, update, methods=["PATCH"], response_model=Out, name=f"update_{kind.singular}",
                         summary=f"Update a {kind.singular}")
    router.add_api_route(one, delete, methods=["DELETE"], status_code=204, name=f"delete_{kind.singular}",
                         summary=f"Delete a {kind.singular}", response_class=Response)
    return router


def resource_routers() -> list[APIRouter]:
    return [kind_router(kind) for kind in KINDS.values()]
