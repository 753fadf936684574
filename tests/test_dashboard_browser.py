"""The dashboard in a real browser (headless Chromium) against the real stack: Kafka, the MongoDB-protocol
server, the tenant API, router, both inference pools and metering as processes, and the dashboard as
`modelyard dashboard`. Usage is produced the way it is in production: queries through the pipeline,
or usage records on metering's topic; nothing is written to the database by the test.

It drives sign-in (admin token, tenant API key, tenant-admin JWT), organisation switching, a quota
warning appearing without a reload when usage crosses 80%, tenant isolation and sign-out, and holds
every figure on the pages against the tenant API's answer for the same range.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import date

import httpx
import pytest
from cryptography.fernet import Fernet

from modelyard_events import QuerySubmitted, UsageRecorded
from modelyard_harness import ADMIN, TopicReader, create_tenant, outcomes_by_query, produce_raw, publish_queries
from modelyard_harness.browser import chromium, why_no_browser
from modelyard_harness.pages import api_answers, mismatches

ADMIN_TOKEN = ADMIN["Authorization"].removeprefix("Bearer ")
WIDE, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}
TEXTS = ["What is the status of ticket #{n}?", "How to reset my password for billing?",
         "Analyze the root cause of the payments outage and propose a remediation strategy",
         "Design a disaster recovery plan for SSO across two regions with RPO under 5 minutes"]


@pytest.fixture(scope="module")
def dashboard(stack) -> str:
    """`modelyard dashboard` beside the stack's processes (stopped with them), refreshing every second."""
    proc = stack.add("dashboard", ["dashboard"], "/readyz", MODELYARD_DASHBOARD_API_URL=stack.api_url,
                     MODELYARD_DASHBOARD_REFRESH_S="1", MODELYARD_DASHBOARD_SESSION_KEY=Fernet.generate_key().decode())
    stack.start("dashboard")
    return proc.ready_url.removesuffix("/readyz")


@pytest.fixture(scope="module")
async def browser():
    reason = why_no_browser()
    if reason:
        pytest.skip(reason)
    async with chromium() as b:
        yield b


async def api(stack, method: str, path: str, token: str = ADMIN_TOKEN, **kwargs) -> dict:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=10, headers={"Authorization": f"Bearer {token}"}) as http:
        resp = await http.request(method, path, **kwargs)
        resp.raise_for_status()
        return resp.json() if resp.content else {}


async def run_queries(stack, tenants: list[dict], per_tenant: int) -> None:
    """Queries through the pipeline; returns once metering has folded every model call they made."""
    queries = [QuerySubmitted(tenant_id=t["tenant_id"], query_id=str(uuid.uuid4()), text=TEXTS[i % len(TEXTS)].format(n=100 + i))
               for t in tenants for i in range(per_tenant)]
    async with TopicReader(stack.kafka, stack.topic("queries.outcomes")) as outcomes:
        await publish_queries(stack.kafka, stack.topic("queries.submitted"), queries)
        done = await outcomes.wait_for(lambda r: (o := outcomes_by_query(r)) and {q.query_id for q in queries} <= o.keys() and o,
                                       90, "every outcome")
    for t in tenants:
        await metered(stack, t["tenant_id"], sum(len(done[q.query_id][0].cascade) for q in queries if q.tenant_id == t["tenant_id"]))


async def metered(stack, tenant_id: str, calls: int, timeout_s: float = 60) -> None:
    """Wait until metering has folded ``calls`` model calls of the tenant into every document the pages
    read (per model and per tenant: they are written one after the other)."""
    deadline = time.monotonic() + timeout_s
    while True:
        usage = await api(stack, "GET", f"/v1/tenants/{tenant_id}/usage")
        routing = await api(stack, "GET", f"/v1/tenants/{tenant_id}/routing-stats")
        if usage["totals"]["calls"] >= calls and routing["calls"] >= calls:
            return
        assert time.monotonic() < deadline, f"metering did not fold {calls} calls of {tenant_id}"
        await asyncio.sleep(0.2)


async def next_refresh(page, timeout_s: float = 30) -> None:
    """Wait until the live part of the page has been fetched again from now on (polled from here: the
    page's Content-Security-Policy forbids the string evaluation wait_for_function uses)."""
    refreshed = "Number(document.getElementById('live').dataset.refreshed || 0)"
    since, deadline = await page.evaluate("Date.now()"), time.monotonic() + timeout_s
    while await page.evaluate(refreshed) <= since:
        assert time.monotonic() < deadline, "the page's live part was not refreshed"
        await asyncio.sleep(0.1)


async def sign_in(page, dashboard: str, token: str) -> None:
    await page.goto(f"{dashboard}/")
    assert page.url == f"{dashboard}/signin"
    await page.fill("#token", token)
    await page.press("#token", "Enter")  # the keyboard signs in
    await page.wait_for_load_state()
    assert "/signin" not in page.url and token not in page.url


async def shown_range(page) -> tuple[date, date]:
    return (date.fromisoformat(await page.input_value("#range-start")), date.fromisoformat(await page.input_value("#range-end")))


async def assert_figures_match(page, stack, token: str, tenant_id: str | None) -> None:
    start, end = await shown_range(page)
    wrong = mismatches(await page.content(), await api_answers(stack.api_url, token, start, end, tenant_id))
    assert not wrong, wrong


async def test_admin_signs_in_switches_organisations_and_sees_the_apis_figures(stack, dashboard, browser):
    alpha = await create_tenant(stack.api_url, "Browser Alpha", industry="tech", tier="basic")
    beta = await create_tenant(stack.api_url, "Browser Beta", industry="finance", tier="professional")
    await run_queries(stack, [alpha, beta], per_tenant=8)

    context = await browser.new_context(viewport=WIDE)
    page = await context.new_page()
    await sign_in(page, dashboard, ADMIN_TOKEN)
    assert page.url == f"{dashboard}/overview"
    (cookie,) = await context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == ("modelyard_session", True, "Strict")
    assert ADMIN_TOKEN not in cookie["value"]
    rows = page.locator("#tenant-table tbody tr")
    assert {await r.get_attribute("data-tenant") for r in await rows.all()} >= {alpha["tenant_id"], beta["tenant_id"]}
    await assert_figures_match(page, stack, ADMIN_TOKEN, None)

    # The keyboard reaches the skip link first, then the navigation.
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"

    for org in (alpha, beta):
        await page.select_option("#org", org["tenant_id"])
        await page.click("text=Open")
        await page.wait_for_url(f"{dashboard}/orgs/{org['tenant_id']}?days=30d")
        assert await page.inner_text("h1") == org["organization_name"]
        split = page.locator('data[data-api="routing-stats/slm_calls"]').first
        assert int(await split.get_attribute("value")) > 0  # the queries above, split by class
        await assert_figures_match(page, stack, ADMIN_TOKEN, org["tenant_id"])

    await page.click("text=Last 7 days")
    await page.wait_for_url(f"{dashboard}/orgs/{beta['tenant_id']}?days=7d")
    assert len(await page.locator("#day-table tbody tr").all()) == 7
    await assert_figures_match(page, stack, ADMIN_TOKEN, beta["tenant_id"])

    await page.set_viewport_size(PHONE)  # readable on a phone: nothing wider than the screen
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await context.close()


async def test_a_quota_warning_appears_live_when_usage_crosses_80_percent(stack, dashboard, browser):
    gamma = await create_tenant(stack.api_url, "Browser Gamma", tier="basic")  # 1,000 API calls a day, 10 agents
    tenant_id, key = gamma["tenant_id"], gamma["api_key"]
    jwt = (await api(stack, "POST", "/v1/auth/token", token=key))["access_token"]
    context = await browser.new_context(viewport=WIDE)
    page = await context.new_page()
    await sign_in(page, dashboard, jwt)  # a tenant-admin JWT
    assert page.url == f"{dashboard}/orgs/{tenant_id}"
    calls, agents = page.locator('[data-limit="api_calls_per_day"]'), page.locator('[data-limit="agents"]')
    assert (await calls.get_attribute("data-level"), await agents.get_attribute("data-level")) == ("ok", "ok")
    await page.evaluate("window.notReloaded = true")

    # 800 admitted queries' usage records on metering's topic: 80% of the day's 1,000 API calls.
    usage = [UsageRecorded(tenant_id=tenant_id, query_id=str(uuid.uuid4()), model="gpt-4o-mini", model_class="slm",
                           input_tokens=20, output_tokens=10, cost_usd=0.00001, llm_cost_usd=0.0002, latency_ms=30.0)
             for _ in range(800)]
    await produce_raw(stack.kafka, stack.topic("usage.recorded"), [(tenant_id.encode(), u.model_dump_json().encode()) for u in usage])
    await page.wait_for_selector('[data-limit="api_calls_per_day"][data-level="warn"]', timeout=60_000)
    assert "Upgrade to Professional for 10,000 API calls a day." in await calls.inner_text()
    await metered(stack, tenant_id, len(usage))

    for i in range(8):  # 8 of 10 agents: amber
        await api(stack, "POST", f"/v1/tenants/{tenant_id}/agents", token=key, json={"name": f"agent {i}", "agent_type": "triage"})
    await page.wait_for_selector('[data-limit="agents"][data-level="warn"]', timeout=30_000)
    assert "Upgrade to Professional for 50 agents." in await agents.inner_text()
    for i in range(8, 10):  # 10 of 10: red
        await api(stack, "POST", f"/v1/tenants/{tenant_id}/agents", token=key, json={"name": f"agent {i}", "agent_type": "triage"})
    await page.wait_for_selector('[data-limit="agents"][data-level="full"]', timeout=30_000)
    assert "Limit reached." in await agents.inner_text()
    assert await page.evaluate("window.notReloaded === true")  # all of it without reloading the page
    await next_refresh(page)
    await assert_figures_match(page, stack, key, tenant_id)

    # The platform administrator sees the organisation among those nearest their quotas.
    admin_page = await (await browser.new_context(viewport=WIDE)).new_page()
    await sign_in(admin_page, dashboard, ADMIN_TOKEN)
    row = admin_page.locator(f'#quota-table tr[data-tenant="{tenant_id}"]')
    assert await row.get_attribute("data-level") == "full"
    await context.close()
    await admin_page.context.close()


async def test_a_tenant_sees_only_its_own_organisation_and_signs_out(stack, dashboard, browser):
    delta = await create_tenant(stack.api_url, "Browser Delta")
    other = await create_tenant(stack.api_url, "Browser Secret Epsilon")
    context = await browser.new_context(viewport=WIDE)
    page = await context.new_page()
    await sign_in(page, dashboard, delta["api_key"])
    assert page.url == f"{dashboard}/orgs/{delta['tenant_id']}"
    assert await page.locator("#org").count() == 0  # no organisation selector

    for path, status in ((f"/orgs/{other['tenant_id']}", 404), (f"/orgs?tenant={other['tenant_id']}", 404), ("/overview", 403)):
        response = await page.goto(f"{dashboard}{path}")
        assert response.status == status, path
        assert "Browser Secret Epsilon" not in await page.content()

    await page.goto(f"{dashboard}/")
    await page.focus("text=Sign out")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{dashboard}/signin")
    assert await context.cookies() == []
    await page.goto(f"{dashboard}/orgs/{delta['tenant_id']}")
    assert page.url == f"{dashboard}/signin"
    await context.close()
