"""Screenshots of a running dashboard for the docs: ``modelyard screenshots`` (``make screenshots``, after
``make up``). Needs Playwright (the workspace's dev group) and Chromium (``deploy/local/chromium.sh``).

Signs in as the platform administrator and saves the overview and the page of the organisation
nearest its quotas (its top: figures, quota gauges, routing) at 1280 px, and the same page at a
phone's width.
"""

from __future__ import annotations

from pathlib import Path

from modelyard_harness.browser import chromium

WIDE, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}
#: How much of the (long) organisation page the wide screenshot shows, in CSS pixels.
ORGANISATION_HEIGHT = 1650


async def shoot(url: str, token: str, out: Path) -> list[Path]:
    saved = []
    async with chromium() as browser:
        context = await browser.new_context(viewport=WIDE)
        page = await context.new_page()
        await page.goto(f"{url}/signin")
        await page.fill("#token", token)
        await page.press("#token", "Enter")
        await page.wait_for_url(f"{url}/overview")
        saved.append(out / "dashboard-overview.png")
        await page.screenshot(path=saved[-1], full_page=True)

        fullest = page.locator("#quota-table tbody tr th a").first
        if not await page.locator("#tenant-table").count() or not await fullest.count():
            raise SystemExit("no organisation has usage yet: run `modelyard demo` first")
        await fullest.click()
        await page.wait_for_selector("h1")
        saved.append(out / "dashboard-organisation.png")
        await page.screenshot(path=saved[-1], full_page=True, clip={"x": 0, "y": 0, "width": WIDE["width"], "height": ORGANISATION_HEIGHT})
        await page.set_viewport_size(PHONE)
        saved.append(out / "dashboard-organisation-phone.png")
        await page.screenshot(path=saved[-1], full_page=True, clip={"x": 0, "y": 0, "width": PHONE["width"], "height": 1500})
        await context.close()
    return saved
