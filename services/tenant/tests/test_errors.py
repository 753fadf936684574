"""The API's error mapping for failures that are not the caller's (a unit test of the handlers, no server)."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from modelyard_tenant.errors import install_error_handlers
from pymongo.errors import AutoReconnect


async def test_an_unreachable_database_is_a_503_with_retry_after_not_a_500():
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/probe")
    async def probe() -> None:
        raise AutoReconnect("connection closed")  # what the first request after a MongoDB restart gets

    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/probe")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"] == "unavailable"
