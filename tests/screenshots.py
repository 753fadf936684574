"""Screenshots of a running dashboard for the docs (``make screenshots``, after ``make up``).

    python -m tests.screenshots --url http://127.0.0.1:8082 --token dev-admin-token --out docs

Signs in as the platform administrator and saves the overview and the page of the organisation
nearest its quotas (its top: figures, quota gauges, routing) at 1280 px, and the same page at a
phone's width.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .browser import chromium, why_no_browser

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8082", help="the dashboard")
    parser.add_argument("--token", default="dev-admin-token", help="the platform administrator token")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="folder for the PNG files")
    args = parser.parse_args()
    reason = why_no_browser()
    if reason:
        sys.exit(f"cannot take screenshots: {reason}")
    for path in asyncio.run(shoot(args.url.rstrip("/"), args.token, args.out)):
        print(path)


if __name__ == "__main__":
    main()
