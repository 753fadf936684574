"""Turning a service's bus and hooks into a runnable FastStream application, the same way for all."""

from __future__ import annotations

import asyncio
import logging
import signal
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
        await bus.finish_commits()

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


async def run_together(apps: Sequence[tuple[str, FastStream]], *, ops_port: int = 0) -> None:
    """Run several services' apps in this one event loop (``modelyard serve --all``) until SIGTERM/SIGINT.

    Each app keeps its own broker client, consumer groups and hooks; they start in the order given (the
    consumers of a hop before its producers) and stop in reverse, each finishing what it has in hand
    before the next stops — so the last app to stop gets what the others published on their way out.
    One ops server (``ops_port``) answers for all: ready once every app started and every broker answers.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ops = OpsServer(ops_port) if ops_port else None
    if ops is not None:
        for name, app in apps:
            ops.add_check(f"kafka-{name}", lambda broker=app.broker: broker.ping(timeout=1.0))
        await ops.start()
    started: list[tuple[str, FastStream]] = []
    try:
        for name, app in apps:
            await app.start()
            started.append((name, app))
        if ops is not None:
            ops.started = True
        log.info("serving %s in one process", ", ".join(name for name, _ in apps))
        await stop.wait()
        log.info("stopping %s", ", ".join(name for name, _ in reversed(started)))
    finally:
        if ops is not None:
            ops.started = False
        for name, app in reversed(started):
            try:
                await app.stop()
            except Exception:  # noqa: BLE001 - the others must still stop and commit what they did
                log.exception("%s did not stop cleanly", name)
        if ops is not None:
            await ops.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
