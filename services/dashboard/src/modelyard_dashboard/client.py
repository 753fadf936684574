"""The tenant API, as the dashboard reads it: every number on a page comes from one of these calls,
made with the signed-in user's own token, so the API's authorisation applies to the page as well."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import httpx

#: Largest page the tenant API serves (``limit``).
PAGE = 500


class ApiError(Exception):
    """The tenant API said no, or could not be reached."""

    status = 502

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class SignedOut(ApiError):
    """The token is not (or no longer) accepted: a revoked key, an expired JWT."""

    status = 401


class NotFound(ApiError):
    status = 404


class Forbidden(ApiError):
    status = 403


class Unavailable(ApiError):
    status = 503


def _span(start: date, end: date) -> dict[str, str]:
    return {"start": start.isoformat(), "end": end.isoformat()}


class TenantApi:
    def __init__(self, base_url: str, timeout_s: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s, transport=transport)

    async def close(self) -> None:
        await self.http.aclose()

    async def get(self, token: str, path: str, **params: Any) -> Any:
        try:
            resp = await self.http.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise Unavailable(f"the tenant API did not answer ({type(exc).__name__})") from None
        if resp.status_code == 200:
            return resp.json()
        detail = _detail(resp)
        if resp.status_code == 401:
            raise SignedOut(detail)
        if resp.status_code == 404:
            raise NotFound(detail)
        if resp.status_code == 403:
            raise Forbidden(detail)
        if resp.status_code >= 500:
            raise Unavailable(f"the tenant API failed: HTTP {resp.status_code}")
        raise ApiError(f"the tenant API refused the request: HTTP {resp.status_code} {detail}", status=resp.status_code)

    # -- the calls the pages make ----------------------------------------------------------------

    async def whoami(self, token: str) -> dict:
        return await self.get(token, "/v1/auth/whoami")

    async def tenant(self, token: str, tenant_id: str) -> dict:
        return await self.get(token, f"/v1/tenants/{tenant_id}")

    async def all_tenants(self, token: str) -> list[dict]:
        """Every organisation (platform administrator), page by page."""
        first = await self.get(token, "/v1/tenants", offset=0, limit=PAGE)
        items, total = list(first["items"]), first["total"]
        while len(items) < total:
            page = await self.get(token, "/v1/tenants", offset=len(items), limit=PAGE)
            if not page["items"]:
                break
            items += page["items"]
        return items

    async def usage(self, token: str, tenant_id: str, start: date, end: date) -> dict:
        return await self.get(token, f"/v1/tenants/{tenant_id}/usage", **_span(start, end))

    async def routing_stats(self, token: str, tenant_id: str, start: date, end: date) -> dict:
        return await self.get(token, f"/v1/tenants/{tenant_id}/routing-stats", **_span(start, end))

    async def quotas(self, token: str, tenant_id: str) -> dict:
        return await self.get(token, f"/v1/tenants/{tenant_id}/quotas")

    async def agents(self, token: str, tenant_id: str) -> list[dict]:
        return (await self.get(token, f"/v1/tenants/{tenant_id}/agents", offset=0, limit=PAGE))["items"]

    async def statistics(self, token: str, start: date, end: date) -> dict:
        return await self.get(token, "/v1/statistics", **_span(start, end))

    async def routing_statistics(self, token: str, start: date, end: date) -> dict:
        return await self.get(token, "/v1/statistics/routing", **_span(start, end))

    async def quotas_of(self, token: str, tenant_ids: list[str], concurrency: int = 8) -> dict[str, dict]:
        """The quotas of several organisations, a few requests at a time; one that vanished meanwhile is left out."""
        gate = asyncio.Semaphore(concurrency)

        async def one(tenant_id: str) -> tuple[str, dict | None]:
            async with gate:
                try:
                    return tenant_id, await self.quotas(token, tenant_id)
                except NotFound:
                    return tenant_id, None

        found = await asyncio.gather(*(one(t) for t in tenant_ids))
        return {t: q for t, q in found if q is not None}


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    return str(body.get("detail") or body.get("message") or body)[:300] if isinstance(body, dict) else str(body)[:300]
