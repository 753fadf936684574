"""/healthz, /readyz and /metrics for the Kafka-consuming services, on ``MODELYARD_OPS_PORT``.

A deliberately tiny HTTP/1.1 server on asyncio streams: probes and Prometheus scrapes need nothing
more, and it adds no dependency or event-loop competition to a consumer.

* ``/healthz`` — the process runs its event loop (liveness).
* ``/readyz`` — start-up finished and every registered check passes (broker, database, views).
* ``/metrics`` — Prometheus text format.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool]]


class OpsServer:
    def __init__(self, port: int, host: str = "0.0.0.0") -> None:
        self.port = port
        self.host = host
        self.checks: dict[str, Check] = {}
        self.started = False
        self._server: asyncio.Server | None = None

    def add_check(self, name: str, check: Check) -> None:
        self.checks[name] = check

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        log.info("ops endpoints on http://%s:%d (/healthz /readyz /metrics)", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def readiness(self) -> tuple[bool, dict[str, bool]]:
        results: dict[str, bool] = {"started": self.started}
        for name, check in self.checks.items():
            try:
                results[name] = bool(await asyncio.wait_for(check(), 2.0))
            except Exception:  # noqa: BLE001 - a failing check means "not ready", never a crash
                results[name] = False
        return all(results.values()), results

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), 5.0)
            while (await asyncio.wait_for(reader.readline(), 5.0)) not in (b"\r\n", b"\n", b""):
                pass  # headers are not needed
            parts = request_line.decode(errors="replace").split()
            path = parts[1] if len(parts) > 1 else "/"
            if path == "/healthz":
                status, body, ctype = 200, b"ok\n", "text/plain"
            elif path == "/readyz":
                ready, results = await self.readiness()
                detail = "".join(f"{k}: {'ok' if v else 'failing'}\n" for k, v in results.items())
                status, body, ctype = (200 if ready else 503), detail.encode(), "text/plain"
            elif path == "/metrics":
                status, body, ctype = 200, generate_latest(), CONTENT_TYPE_LATEST
            else:
                status, body, ctype = 404, b"not found\n", "text/plain"
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n\r\n".encode() + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
