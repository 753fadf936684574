"""Composition root of the dashboard: ``create_app(settings)`` builds the tenant API client and the
session sealer inside the app's lifespan; ``serve(settings)`` runs it under uvicorn."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from modelyard_core.http import add_ops_routes, run_http

from . import pages, signin, web
from .client import TenantApi
from .session import SessionSealer, session_keys
from .settings import DashboardSettings

log = logging.getLogger(__name__)

SERVICE = "dashboard"


async def tenant_api_check(request: Request) -> str:
    """Ready when the tenant API answers its own liveness probe (every page needs it)."""
    try:
        resp = await request.app.state.api.http.get("/healthz", timeout=2.0)
    except httpx.HTTPError as exc:
        return repr(exc)
    return "ok" if resp.status_code == 200 else f"tenant API: HTTP {resp.status_code}"


def create_app(settings: DashboardSettings, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """``transport`` replaces the network to the tenant API (tests serve the tenant app in-process)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        api = TenantApi(settings.dashboard_api_url, settings.dashboard_api_timeout_s, transport)
        app.state.api = api
        try:
            log.info("dashboard on port %d, reading %s", settings.dashboard_port, settings.dashboard_api_url)
            yield
        finally:
            await api.close()

    app = FastAPI(title="modelyard dashboard", version="1", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.sealer = SessionSealer(session_keys(settings.dashboard_session_key), settings.dashboard_session_ttl_s)
    app.state.templates = web.make_templates()
    web.install(app)
    app.mount("/static", StaticFiles(directory=web.HERE / "static"), name="static")
    app.include_router(signin.router)
    app.include_router(pages.router)
    add_ops_routes(app, {"tenant_api": tenant_api_check})
    return app


def serve(settings: DashboardSettings) -> None:
    """Run the dashboard until SIGINT/SIGTERM."""
    from modelyard_core.logs import setup_logging
    from modelyard_core.telemetry import setup_tracing

    setup_logging(SERVICE, settings.log_level, settings.log_format)
    setup_tracing(SERVICE)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API call would drown the log
    run_http(create_app(settings), host=settings.dashboard_host, port=settings.dashboard_port,
             shutdown_timeout_s=settings.shutdown_timeout_s, gc_gen0_threshold=settings.gc_gen0_threshold)
