"""The pages: ``/`` sends each user to their start page, ``/overview`` is the platform administrator's,
``/orgs/{tenant_id}`` one organisation's. Each page has a ``/live`` twin that returns only the part
of the page that changes, which static/live.js fetches every few seconds and swaps in."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from . import client, views
from .analytics import PRESETS, DayRange, resolve_range
from .session import Session
from .web import check_tenant_path, current_session, render

router = APIRouter()
SignedIn = Annotated[Session, Depends(current_session)]


def day_range(request: Request) -> DayRange:
    q = request.query_params
    return resolve_range(datetime.now(UTC).date(), q.get("days"), q.get("start"), q.get("end"))


Span = Annotated[DayRange, Depends(day_range)]


def require_admin(session: SignedIn) -> Session:
    if not session.is_platform_admin:
        raise client.Forbidden("the overview is the platform administrator's; your organisation's page is at /")
    return session


Admin = Annotated[Session, Depends(require_admin)]


def by_name(tenants: list[dict]) -> list[dict]:
    return sorted(tenants, key=lambda t: (t["organization_name"].lower(), t["tenant_id"]))


async def selector(request: Request, session: Session) -> list[dict] | None:
    """The organisation selector's choices (platform administrator only)."""
    if not session.is_platform_admin:
        return None
    return by_name(await request.app.state.api.all_tenants(session.token))


@router.get("/")
async def start(session: SignedIn) -> Response:
    return RedirectResponse("/overview" if session.is_platform_admin else f"/orgs/{session.tenant_id}", status_code=303)


@router.get("/overview")
async def overview_page(request: Request, session: Admin, span: Span) -> Response:
    model = await views.overview(request.app.state.api, session, span, request.app.state.settings.dashboard_quota_scan)
    return render(request, "overview.html", **model, selector=by_name(model["tenants"]), presets=PRESETS, active="overview",
                  live_url=f"/overview/live?{span.query()}")


@router.get("/overview/live")
async def overview_live(request: Request, session: Admin, span: Span) -> Response:
    model = await views.overview(request.app.state.api, session, span, request.app.state.settings.dashboard_quota_scan)
    return render(request, "_overview_live.html", **model)


@router.get("/orgs")
async def switch_organisation(request: Request, session: SignedIn, tenant: str = "") -> Response:
    """The organisation selector's form target: on to that organisation's page, keeping the range."""
    if not tenant:
        return RedirectResponse("/", status_code=303)
    check_tenant_path(session, tenant)
    kept = {k: v for k, v in request.query_params.items() if k in ("days", "start", "end") and v}
    return RedirectResponse(f"/orgs/{tenant}" + (f"?{urlencode(kept)}" if kept else ""), status_code=303)


@router.get("/orgs/{tenant_id}")
async def organisation_page(request: Request, tenant_id: str, session: SignedIn, span: Span) -> Response:
    check_tenant_path(session, tenant_id)
    model, choices = await asyncio.gather(views.organisation(request.app.state.api, session, tenant_id, span),
                                          selector(request, session))
    return render(request, "organisation.html", **model, selector=choices, presets=PRESETS, current_tenant=tenant_id,
                  live_url=f"/orgs/{tenant_id}/live?{span.query()}")


@router.get("/orgs/{tenant_id}/live")
async def organisation_live(request: Request, tenant_id: str, session: SignedIn, span: Span) -> Response:
    check_tenant_path(session, tenant_id)
    return render(request, "_organisation_live.html", **await views.organisation(request.app.state.api, session, tenant_id, span))
