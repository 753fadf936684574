"""Composition root of the tenant service: ``create_app(settings)`` builds every client inside the
app's lifespan; ``serve(settings)`` runs it under uvicorn with graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from modelyard_billing import Billing
from modelyard_core.bus import Bus
from modelyard_core.http import add_ops_routes, kafka_check, mongo_check, run_http
from modelyard_core.store import database, make_mongo
from modelyard_core.limits import BodySizeLimit
from modelyard_tenancy import DEV_ADMIN_TOKEN, DEV_JWT_SECRET, Authenticator, RevocationList
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from .api.audit import router as audit_router
from .api.billing import router as billing_router
from .api.keys import router as keys_router
from .api.models import router as models_router
from .api.resources import resource_routers
from .api.tenants import router as tenants_router
from .api.usage import router as usage_router
from .api.webhooks import router as webhooks_router
from .audit import AuditMiddleware, AuditTrail
from .errors import PayloadTooLarge, install_error_handlers
from .guard import TokenGuard
from .resources import Resources
from .service import TenantService
from .settings import TenantServiceSettings
from .store import ensure_indexes

log = logging.getLogger(__name__)

SERVICE = "tenant"

DESCRIPTION = """The control plane of modelyard: organisations, tiers and quotas, tenant-scoped
resources, API keys and JWTs. Every change to a tenant or agent is published as a snapshot on the
compacted tenant topics, which the router, inference and metering services read.

Authenticate with `Authorization: Bearer <token>`: an API key, a JWT from `POST /v1/auth/token`, or
the platform administrator token."""


def create_app(settings: TenantServiceSettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.admin_token == DEV_ADMIN_TOKEN or settings.jwt_secret == DEV_JWT_SECRET:
            log.warning("running with the development admin token or JWT secret; set MODELYARD_ADMIN_TOKEN and MODELYARD_JWT_SECRET")
        client = make_mongo(settings.mongo, app_name="modelyard-tenant")
        bus = Bus(settings, SERVICE)
        revocations = RevocationList(settings, service=SERVICE)
        sweepers: list[asyncio.Task] = []
        try:
            db = database(client, settings.mongo)
            await ensure_indexes(db)
            await bus.ensure_topics()
            await bus.broker.start()
            await revocations.start()
            service = TenantService(db, bus, settings)
            trail = AuditTrail(db, bus, settings.topics.name("audit"), timeout_s=settings.publish_timeout_s)
            await trail.ensure_indexes()
            await service.webhooks.ensure_indexes()
            billing = Billing(db, settings.billing.price_list(), bus=bus)
            await billing.store.ensure_indexes()
            app.state.billing = billing
            app.state.settings = settings
            app.state.db = db
            app.state.bus = bus
            app.state.service = service
            app.state.resources = Resources(service)
            app.state.authenticator = Authenticator.from_settings(db, settings, revocations)
            app.state.token_guard = TokenGuard(settings)
            app.state.audit = trail
            if settings.outbox_sweeper:
                sweepers.append(asyncio.create_task(service.run_sweeper(), name="tenant-outbox-sweeper"))
                sweepers.append(asyncio.create_task(trail.run_sweeper(settings.outbox_sweep_s), name="tenant-audit-sweeper"))
            yield
        finally:
            for sweeper in sweepers:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
            await revocations.stop()
            await bus.broker.stop()
            await client.close()

    app = FastAPI(title="modelyard tenant service", version="1", description=DESCRIPTION, lifespan=lifespan)
    # Each request is a server span (joining the caller's traceparent); snapshots published while it
    # runs carry its context onto the bus.
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")
    install_error_handlers(app)
    # The last added runs first: every mutating call is audited, even one the body limit refuses
    # before anything is read.
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes, render=lambda limit: PayloadTooLarge(
        f"body: larger than the limit of {limit} bytes", field="body", limit=limit).body())
    app.add_middleware(AuditMiddleware, trail=lambda: getattr(app.state, "audit", None), service=SERVICE)
    app.include_router(tenants_router)
    app.include_router(audit_router)
    app.include_router(keys_router)
    app.include_router(usage_router)
    app.include_router(billing_router)
    app.include_router(webhooks_router)
    app.include_router(models_router)
    for router in resource_routers():
        app.include_router(router)

    add_ops_routes(app, {"mongo": mongo_check, "kafka": kafka_check})

    return app


def serve(settings: TenantServiceSettings) -> None:
    """Run the tenant API until SIGINT/SIGTERM; in-flight requests get ``shutdown_timeout_s`` to finish."""
    from modelyard_core.logs import setup_logging
    from modelyard_core.telemetry import setup_tracing

    setup_logging(SERVICE, settings.log_level, settings.log_format)
    setup_tracing(SERVICE)
    run_http(create_app(settings), host=settings.api_host, port=settings.api_port, shutdown_timeout_s=settings.shutdown_timeout_s,
             gc_gen0_threshold=settings.gc_gen0_threshold)


@contextlib.asynccontextmanager
async def offline_service(settings: TenantServiceSettings, task: str) -> AsyncIterator[TenantService]:
    """The tenant service's operations without its HTTP API, for one-off tasks run beside it."""
    client = make_mongo(settings.mongo, app_name=f"modelyard-tenant-{task}")
    bus = Bus(settings, SERVICE)
    try:
        await bus.ensure_topics()
        await bus.broker.start()
        yield TenantService(database(client, settings.mongo), bus, settings)
    finally:
        await bus.broker.stop()
        await client.close()


async def republish_snapshots(settings: TenantServiceSettings) -> int:
    """Publish every tenant's and agent's current snapshot again (e.g. after the topics were lost).

    Safe while the service runs: it takes each tenant's lock, and consumers keep the newest version.
    """
    async with offline_service(settings, "republish") as service:
        return await service.republish_all()


async def reseal_secrets(settings: TenantServiceSettings) -> dict[str, int]:
    """``modelyard secrets rotate``: every stored secret sealed again with the first master key."""
    async with offline_service(settings, "reseal") as service:
        return await service.reseal_secrets()
