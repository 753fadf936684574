"""The dashboard over HTTP, against the real tenant API (in-process, on the real Kafka and MongoDB-protocol
server): sign-in and the session cookie, same-origin forms, tenant isolation, errors, security headers.

The dashboard reaches the tenant app through httpx's ASGI transport instead of a socket; everything
else is as deployed. The browser test (test_dashboard_browser.py) drives the same pages as processes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI

from modelyard_dashboard import DashboardSettings
from modelyard_dashboard import create_app as create_dashboard
from modelyard_harness import drop_run, free_port, unique_prefix
from modelyard_harness.pages import api_answers, mismatches
from modelyard_tenant import TenantServiceSettings
from modelyard_tenant import create_app as create_tenant_api

ADMIN_TOKEN = f"dash-admin-{uuid.uuid4().hex[:8]}"
DASHBOARD = "http://dashboard"


@dataclass
class Apps:
    tenant_api: FastAPI
    dashboard: FastAPI

    def api(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.tenant_api), base_url="http://tenant")

    def browser(self) -> httpx.AsyncClient:
        """A client of the dashboard that keeps cookies like a browser (and sends Origin on its posts)."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.dashboard), base_url=DASHBOARD)


def dashboard_settings(**overrides: object) -> DashboardSettings:
    return DashboardSettings(**{"dashboard_api_url": "http://tenant", "dashboard_session_key": Fernet.generate_key().decode(),
                                "log_format": "console", **overrides})


@pytest.fixture(scope="module")
async def apps(kafka: str, mongo_url: str) -> AsyncIterator[Apps]:
    prefix = unique_prefix("dashboard-http")
    database = f"t_{prefix.strip('.').replace('-', '_')}"
    tenant_api = create_tenant_api(TenantServiceSettings(
        kafka={"bootstrap_servers": kafka, "partitions": 1}, mongo={"url": mongo_url, "database": database},
        topics={"prefix": prefix}, admin_token=ADMIN_TOKEN, outbox_sweeper=False, log_format="console"))
    try:
        async with tenant_api.router.lifespan_context(tenant_api):
            dashboard = create_dashboard(dashboard_settings(), transport=httpx.ASGITransport(app=tenant_api))
            async with dashboard.router.lifespan_context(dashboard):
                yield Apps(tenant_api, dashboard)
    finally:
        await drop_run(kafka, prefix, mongo_url, database)


async def new_org(apps: Apps, name: str | None = None, tier: str = "basic") -> dict:
    async with apps.api() as api:
        resp = await api.post("/v1/tenants", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, json={
            "organization_name": name or f"Org {uuid.uuid4().hex[:6]}", "admin_email": "it@example.com",
            "industry": "tech", "subscription_tier": tier})
        assert resp.status_code == 201, resp.text
        return resp.json()


async def sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/signin", data={"token": token}, headers={"Origin": DASHBOARD})


async def test_each_kind_of_token_signs_in_to_its_start_page_and_signing_out_ends_the_session(apps):
    org = await new_org(apps)
    async with apps.api() as api:
        jwt = (await api.post("/v1/auth/token", headers={"Authorization": f"Bearer {org['api_key']}"})).json()["access_token"]
    for token, start in ((ADMIN_TOKEN, "/overview"), (org["api_key"], f"/orgs/{org['tenant_id']}"), (jwt, f"/orgs/{org['tenant_id']}")):
        async with apps.browser() as browser:
            signed = await sign_in(browser, token)
            assert signed.status_code == 303 and signed.headers["location"] == "/"
            cookie = signed.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie and "Max-Age=28800" in cookie
            assert token not in cookie and token not in signed.headers["location"]
            assert (await browser.get("/")).headers["location"] == start
            page = await browser.get(start)
            assert page.status_code == 200 and token not in page.text

            out = await browser.post("/signout", headers={"Origin": DASHBOARD})
            assert out.status_code == 303 and out.headers["location"] == "/signin"
            assert 'modelyard_session=""' in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
            assert (await browser.get(start)).headers["location"] == "/signin"


async def test_a_wrong_token_is_refused_and_no_session_is_made(apps):
    async with apps.browser() as browser:
        for token, status in (("my_live_not-a-real-key", 401), ("wrong-admin-token", 401), ("", 422), ("x" * 5000, 422)):
            resp = await sign_in(browser, token)
            assert resp.status_code == status and "set-cookie" not in resp.headers
            assert 'role="alert"' in resp.text
        assert (await browser.get("/overview")).headers["location"] == "/signin"


async def test_forms_posted_from_another_origin_are_refused(apps):
    async with apps.browser() as browser:
        for headers in ({"Origin": "http://evil.example"}, {"Referer": "http://evil.example/page"}, {}, {"Origin": "null"}):
            resp = await browser.post("/signin", data={"token": ADMIN_TOKEN}, headers=headers)
            assert resp.status_code == 403 and "set-cookie" not in resp.headers, headers
        same_site_referer = await browser.post("/signin", data={"token": ADMIN_TOKEN}, headers={"Referer": f"{DASHBOARD}/signin"})
        assert same_site_referer.status_code == 303
        assert (await browser.post("/signout", headers={"Origin": "http://evil.example"})).status_code == 403
        assert (await browser.get("/overview")).status_code == 200  # still signed in


async def test_a_tenant_session_sees_its_own_organisation_only(apps):
    mine, theirs = await new_org(apps, "Mine Ltd"), await new_org(apps, "Theirs Secret Corp")
    async with apps.browser() as browser:
        await sign_in(browser, mine["api_key"])
        own = await browser.get(f"/orgs/{mine['tenant_id']}")
        assert own.status_code == 200 and "Mine Ltd" in own.text
        assert 'id="org"' not in own.text and "Theirs Secret Corp" not in own.text  # no selector, no other names
        for path in (f"/orgs/{theirs['tenant_id']}", f"/orgs/{theirs['tenant_id']}/live", f"/orgs?tenant={theirs['tenant_id']}",
                     "/orgs/no-such-tenant", "/orgs/%2E%2E"):
            resp = await browser.get(path)
            assert resp.status_code == 404, path
            assert "Theirs Secret Corp" not in resp.text and theirs["tenant_id"] not in resp.text.replace(path, "")
        overview = await browser.get("/overview")
        assert overview.status_code == 403 and "Theirs Secret Corp" not in overview.text
        assert (await browser.get("/overview/live")).status_code == 403


async def test_the_admin_switches_organisation_keeping_the_range(apps):
    first, second = await new_org(apps, "First Org"), await new_org(apps, "Second Org")
    async with apps.browser() as browser:
        await sign_in(browser, ADMIN_TOKEN)
        overview = (await browser.get("/overview")).text
        assert "First Org" in overview and "Second Org" in overview
        switched = await browser.get("/orgs", params={"tenant": second["tenant_id"], "days": "7d"})
        assert switched.status_code == 303 and switched.headers["location"] == f"/orgs/{second['tenant_id']}?days=7d"
        page = (await browser.get(switched.headers["location"])).text
        assert "<h1>Second Org</h1>" in page and f'<option value="{first["tenant_id"]}">First Org</option>' in page
        assert f'<option value="{second["tenant_id"]}" selected>Second Org</option>' in page
        assert 'aria-current="true">Last 7 days' in page


async def test_a_revoked_key_ends_its_session(apps):
    org = await new_org(apps)
    async with apps.api() as api:
        headers = {"Authorization": f"Bearer {org['api_key']}"}
        member = (await api.post(f"/v1/tenants/{org['tenant_id']}/api-keys", json={"role": "member"}, headers=headers)).json()
        async with apps.browser() as browser:
            await sign_in(browser, member["api_key"])
            assert (await browser.get(f"/orgs/{org['tenant_id']}")).status_code == 200
            assert (await api.delete(f"/v1/tenants/{org['tenant_id']}/api-keys/{member['key_id']}", headers=headers)).status_code == 204
            live = await browser.get(f"/orgs/{org['tenant_id']}/live")
            assert live.status_code == 401  # the page's script reloads, and the reload goes to sign-in
            await sign_in(browser, member["api_key"])  # refused: no new cookie
            page = await browser.get(f"/orgs/{org['tenant_id']}")
            assert page.status_code == 303 and page.headers["location"] == "/signin"


async def test_invalid_ranges_name_the_field(apps):
    org = await new_org(apps)
    async with apps.browser() as browser:
        await sign_in(browser, org["api_key"])
        for query, field in (("days=9d", "days"), ("start=2025-02-01&end=2025-01-01", "start"), ("start=soon", "start")):
            resp = await browser.get(f"/orgs/{org['tenant_id']}?{query}")
            assert resp.status_code == 422 and f"range is invalid: {field}" in resp.text


class _Resources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_styles = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("script", "img") and a.get("src"):
            self.urls.append(a["src"] or "")
        if tag == "link" and a.get("href"):
            self.urls.append(a["href"] or "")
        if tag == "style" or "style" in a or any(k.startswith("on") for k in a):
            self.inline_styles += 1


async def test_pages_load_nothing_from_elsewhere_and_send_security_headers(apps):
    org = await new_org(apps, 'Acme <script>alert("x")</script>')
    async with apps.browser() as browser, apps.browser() as anonymous:
        await sign_in(browser, ADMIN_TOKEN)
        for client, path in ((browser, "/overview"), (browser, f"/orgs/{org['tenant_id']}"), (anonymous, "/signin")):
            resp = await client.get(path)
            assert resp.status_code == 200
            assert "default-src 'none'" in resp.headers["content-security-policy"]
            assert resp.headers["x-frame-options"] == "DENY" and resp.headers["cache-control"] == "no-store"
            found = _Resources()
            found.feed(resp.text)
            assert found.urls and all(u.startswith("/static/") for u in found.urls), found.urls
            assert found.inline_styles == 0  # the CSP allows no inline style or handler
            assert '<script>alert("x")</script>' not in resp.text
        for url in ("/static/dashboard.css", "/static/live.js", "/static/favicon.svg"):
            assert (await browser.get(url)).status_code == 200


async def test_page_figures_equal_the_tenant_apis(apps):
    org = await new_org(apps)
    async with apps.api() as api:
        for i in range(3):
            await api.post(f"/v1/tenants/{org['tenant_id']}/agents", json={"name": f"a{i}", "agent_type": "bot"},
                           headers={"Authorization": f"Bearer {org['api_key']}"})
    async with apps.browser() as browser:
        await sign_in(browser, ADMIN_TOKEN)
        for path, tenant_id in ((f"/orgs/{org['tenant_id']}?start=2025-01-01&end=2025-01-31", org["tenant_id"]),
                                ("/overview?start=2025-01-01&end=2025-01-31", None)):
            html = (await browser.get(path)).text
            answers = await api_answers("http://tenant", ADMIN_TOKEN, date(2025, 1, 1), date(2025, 1, 31), tenant_id,
                                        transport=httpx.ASGITransport(app=apps.tenant_api))
            assert not mismatches(html, answers)
        assert 'data-api="quotas/quotas/agents/current">3<' in (await browser.get(f"/orgs/{org['tenant_id']}")).text


async def test_readiness_follows_the_tenant_api(apps):
    async with apps.browser() as browser:
        ready = await browser.get("/readyz")
        assert ready.status_code == 200 and ready.json()["tenant_api"] == "ok"
    unreachable = create_dashboard(dashboard_settings(dashboard_api_url=f"http://127.0.0.1:{free_port()}"))
    async with unreachable.router.lifespan_context(unreachable), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=unreachable), base_url=DASHBOARD) as client:
        assert (await client.get("/readyz")).status_code == 503
        resp = await sign_in(client, ADMIN_TOKEN)  # a page that says the API is down, not a crash
        assert resp.status_code == 503 and "Tenant API unavailable" in resp.text
