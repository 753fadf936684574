"""Dashboard pages seen from outside: the figures a page shows, each with the tenant API path it came
from, and the same figures fetched from the tenant API, so a test can hold the two side by side.

Every figure on a page is ``<data value="<raw API value>" data-api="<source>/<path>">shown</data>``.
``<source>`` is one API answer (``usage``, ``routing-stats``, ``quotas`` for an organisation;
``statistics``, ``platform-routing``, ``tenants`` for the overview); the path walks into it, a list of
objects by their ``tenant_id`` or ``limit``. The last step may be ``a+b`` (a sum) or ``a:b`` (a ratio).
"""

from __future__ import annotations

from datetime import date
from html.parser import HTMLParser
from typing import Any

import httpx


class _Figures(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "data" and a.get("data-api"):
            self.found.append((a["data-api"] or "", a.get("value") or ""))


def figures(html: str) -> list[tuple[str, str]]:
    """(API path, raw value) of every figure on a page, in page order."""
    parser = _Figures()
    parser.feed(html)
    return parser.found


def _step(node: Any, key: str) -> Any:
    if isinstance(node, list):
        return next(item for item in node if key in (item.get("tenant_id"), item.get("limit")))
    return node[key]


def resolve(answers: dict[str, Any], path: str) -> float:
    source, *parts = path.split("/")
    node = answers[source]
    for part in parts[:-1]:
        node = _step(node, part)
    last = parts[-1]
    if "+" in last:
        return sum(_step(node, p) for p in last.split("+"))
    if ":" in last:
        numerator, denominator = (_step(node, p) for p in last.split(":"))
        return numerator / denominator if denominator else 0.0
    return _step(node, last)


async def api_answers(api_url: str, token: str, start: date, end: date, tenant_id: str | None = None,
                      transport: httpx.AsyncBaseTransport | None = None) -> dict[str, Any]:
    """The tenant API's answers for one page: an organisation's, or the overview's (``tenant_id`` None)."""
    span = {"start": start.isoformat(), "end": end.isoformat()}
    async with httpx.AsyncClient(base_url=api_url, timeout=10, headers={"Authorization": f"Bearer {token}"},
                                 transport=transport) as http:
        async def get(path: str, **params: Any) -> Any:
            resp = await http.get(path, params=params)
            resp.raise_for_status()
            return resp.json()

        if tenant_id is None:
            return {"statistics": await get("/v1/statistics", **span), "platform-routing": await get("/v1/statistics/routing", **span),
                    "tenants": await get("/v1/tenants", limit=1)}
        base = f"/v1/tenants/{tenant_id}"
        return {"usage": await get(f"{base}/usage", **span), "routing-stats": await get(f"{base}/routing-stats", **span),
                "quotas": await get(f"{base}/quotas")}


def mismatches(html: str, answers: dict[str, Any]) -> list[str]:
    """Every figure of the page whose raw value differs from the API's (empty when all agree)."""
    found = figures(html)
    assert found, "the page shows no figures"
    return [f"{path}: page {value!r}, API {resolve(answers, path)!r}" for path, value in found
            if float(value) != float(resolve(answers, path))]
