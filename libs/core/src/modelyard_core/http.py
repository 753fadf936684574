"""What every HTTP service of modelyard (tenant API, ingress) shares: ops routes and the server loop."""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

#: A readiness check: returns "ok", or why the service is not ready.
Check = Callable[[Request], Awaitable[str]]


async def mongo_check(request: Request) -> str:
    try:
        await request.app.state.db.command("ping")
        return "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return repr(exc)


async def kafka_check(request: Request) -> str:
    return "ok" if await request.app.state.bus.broker.ping(timeout=2.0) else "unreachable"


def add_ops_routes(app: Any, checks: dict[str, Check]) -> None:
    """``/healthz`` (the process answers), ``/readyz`` (every check passes) and ``/metrics``."""

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        results = {name: await check(request) for name, check in checks.items()}
        ok = all(v == "ok" for v in results.values())
        return JSONResponse({"ready": ok, **results}, status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def run_http(app: Any, *, host: str, port: int, shutdown_timeout_s: float, gc_gen0_threshold: int = 0,
             **uvicorn_options: Any) -> None:
    """Serve ``app`` with uvicorn until SIGINT/SIGTERM; in-flight requests get ``shutdown_timeout_s``."""
    import uvicorn

    from .runtime import tune_gc

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # keep our JSON logging
        access_log=False,
        timeout_graceful_shutdown=int(shutdown_timeout_s),
        lifespan="on",
        **uvicorn_options,
    )
    # uvicorn handles SIGINT/SIGTERM itself (drains requests, runs the lifespan shutdown) and then
    # re-raises the signal; these handlers receive that second delivery, so a clean stop exits 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    tune_gc(gc_gen0_threshold)
    uvicorn.Server(config).run()
