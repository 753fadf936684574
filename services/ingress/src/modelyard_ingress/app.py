"""Composition root of the ingress: ``create_app(settings)`` builds every client inside the app's
lifespan; ``serve(settings)`` runs it under uvicorn with graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from modelyard_core.bus import Bus
from modelyard_core.http import add_ops_routes, kafka_check, mongo_check, run_http
from modelyard_core.limits import BodySizeLimit
from modelyard_core.pricing import load_pricing
from modelyard_core.store import database, make_mongo
from modelyard_events import StreamTo
from modelyard_tenancy import RevocationList

from .api import router
from .auth import CachingAuthenticator
from .errors import OpenAIError, install_error_handlers
from .limits import MessageLimits
from .replies import OutcomeListener, PendingOutcomes
from .service import Ingress
from .settings import IngressSettings

log = logging.getLogger(__name__)

SERVICE = "ingress"

DESCRIPTION = """OpenAI-compatible chat completions over modelyard: each request becomes a query
event; the router picks the model class (or `model` pins one), inference answers, escalating
when unsure, metering records every call; the response carries the answer, OpenAI `usage` and a
`modelyard` object (class, cascade, confidence, cost).

Authenticate with `Authorization: Bearer <tenant API key or JWT>` — any OpenAI client works with
`base_url=http://<ingress>/v1` and `api_key=<tenant API key>`."""


def create_app(settings: IngressSettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        topics = settings.topics
        client = make_mongo(settings.mongo, app_name="modelyard-ingress")
        bus = Bus(settings, SERVICE)
        pending = PendingOutcomes(settings.ingress_max_in_flight)
        listener = OutcomeListener(settings.kafka, topics.name("outcomes"), pending,
                                   idle_pause_s=settings.ingress_idle_pause_s)
        # Live tokens come on one partition of the streams topic, the same for every query of this instance.
        streams = OutcomeListener(settings.kafka, topics.name("streams"), pending, client_id="modelyard-ingress-streams",
                                  idle_pause_s=settings.ingress_idle_pause_s, one_partition=True,
                                  partition=settings.ingress_stream_partition, offer=pending.offer_chunk,
                                  busy=lambda: pending.streams)
        revocations = RevocationList(settings, service=SERVICE)
        try:
            db = database(client, settings.mongo)
            await bus.ensure_topics()
            await bus.broker.start()
            await revocations.start()
            await listener.start()
            await streams.start()
            app.state.db = db
            app.state.bus = bus
            app.state.listener = listener
            app.state.streams = streams
            app.state.authenticator = CachingAuthenticator(
                db, admin_token=settings.admin_token, jwt_secret=settings.jwt_secret, ttl_s=settings.ingress_auth_cache_s,
                revocations=revocations)
            app.state.limits = MessageLimits(settings.ingress_max_messages, settings.ingress_max_message_chars)
            stream_to = StreamTo(partition=streams.partition, instance=settings.ingress_instance_id)

            async def readers_ready() -> None:
                await asyncio.gather(listener.ready(), streams.ready())

            app.state.ingress = Ingress(bus, pending, load_pricing(settings.pricing_file), topics.name("submitted"),
                                        settings.ingress_timeout_s, outcomes_ready=readers_ready, stream_to=stream_to)
            log.info("ingress %s ready on port %d, streams on %s[%d]", stream_to.instance, settings.ingress_port,
                     topics.name("streams"), stream_to.partition)
            yield
        finally:
            await streams.stop()
            await listener.stop()
            await revocations.stop()
            await bus.broker.stop()
            await client.close()

    app = FastAPI(title="modelyard ingress", version="1", description=DESCRIPTION, lifespan=lifespan)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.ingress_max_body_bytes, render=lambda limit: OpenAIError(
        413, f"body: larger than the limit of {limit} bytes", code="payload_too_large", param="body").body())
    app.include_router(router)

    async def outcomes_followed(request: Request) -> str:
        return "ok" if request.app.state.listener.positioned else "not following"

    async def streams_followed(request: Request) -> str:
        return "ok" if request.app.state.streams.positioned else "not following"

    add_ops_routes(app, {"mongo": mongo_check, "kafka": kafka_check, "outcomes": outcomes_followed,
                         "streams": streams_followed})

    return app


def serve(settings: IngressSettings) -> None:
    """Run the ingress until SIGINT/SIGTERM; waiting requests get ``shutdown_timeout_s`` to be answered."""
    from modelyard_core.logs import setup_logging
    from modelyard_core.telemetry import setup_tracing

    setup_logging(SERVICE, settings.log_level, settings.log_format)
    setup_tracing(SERVICE)
    run_http(create_app(settings), host=settings.ingress_host, port=settings.ingress_port, shutdown_timeout_s=settings.shutdown_timeout_s,
             gc_gen0_threshold=settings.gc_gen0_threshold, backlog=4096)
