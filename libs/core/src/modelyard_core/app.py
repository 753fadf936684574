"""Turning a service's bus and hooks into a runnable FastStream application, the same way for all."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from faststream import FastStream
from pymongo import AsyncMongoClient

from .bus import Bus
from .ops import OpsServer
from .settings import Settings

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]


def stream_app(
    settings: Settings,
    bus: Bus,
    *,
    startup: Sequence[Hook] = (),
    shutdown: Sequence[Hook] = (),
    mongo: AsyncMongoClient | None = None,
) -> FastStream:
    """A FastStream app that creates topics, runs ``startup`` hooks before consuming, serves the ops
    endpoints, and on SIGTERM stops consuming, finishes the batch in hand, then runs ``shutdown``."""
    ops = OpsServer(settings.ops_port) if settings.ops_port else None
    if ops is not None:
        ops.add_check("kafka", lambda: bus.broker.ping(timeout=1.0))
        if mongo is not None:
            async def mongo_ok() -> bool:
                await mongo.admin.command("ping")
                return True

            ops.add_check("mongodb", mongo_ok)

    async def on_startup() -> None:
        if ops is not None:
            await ops.start()
        await bus.ensure_topics()
        for hook in startup:
            await hook()

    async def after_startup() -> None:
        if ops is not None:
            ops.started = True
        log.info("%s ready", bus.service)

    async def on_shutdown() -> None:
        if ops is not None:
            ops.started = False

    async def after_shutdown() -> None:
        for hook in shutdown:
            await hook()
        if mongo is not None:
            await mongo.close()
        if ops is not None:
            await ops.stop()

    return FastStream(
        bus.broker,
        on_startup=[on_startup],
        after_startup=[after_startup],
        on_shutdown=[on_shutdown],
        after_shutdown=[after_shutdown],
    )
