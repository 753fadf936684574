"""The request-body limit of the HTTP services: a pure ASGI middleware that answers 413 before a
handler (or FastAPI's body parsing) sees more than ``max_bytes``.

A declared ``Content-Length`` above the limit is refused at once, without reading the body; a chunked
body is counted as it arrives and refused the moment it passes the limit (as an ``HTTPException(413)``, which
the service's own handler renders). A refused declared length is rendered by ``render(limit) -> JSON
document``, in the service's error shape, naming the field: ``body``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.exceptions import HTTPException

Render = Callable[[int], dict[str, Any]]


class _TooLarge(HTTPException):
    """Raised from ``receive`` mid-body. FastAPI turns any other exception raised while it reads a
    body into a 400, but passes an ``HTTPException`` on, so the service's handler answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body: larger than the limit of {limit} bytes")


class BodySizeLimit:
    def __init__(self, app: Any, *, max_bytes: int, render: Render) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.render = render

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Callable) -> None:
        body = orjson.dumps(self.render(self.max_bytes))
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
