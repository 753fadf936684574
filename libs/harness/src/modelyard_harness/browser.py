"""Headless Chromium for the dashboard's browser test and its screenshots (``modelyard screenshots``).

The browser is Debian's ``chromium`` package (``deploy/local/chromium.sh ensure`` installs it; ``make
test`` runs that first), driven by Playwright, whose wheel carries its driver: nothing is downloaded.
Playwright is in the workspace's dev group only (not in the service image), so it is imported lazily.
Playwright starts every browser with a fresh temporary profile (``--user-data-dir``); the flags below
keep Chromium from reaching out (updates, sync, QUIC probes), which a closed network would refuse.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.async_api import Browser

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str | None:
    """The browser to drive: $MODELYARD_CHROMIUM, else chromium on the PATH."""
    configured = os.environ.get("MODELYARD_CHROMIUM")
    if configured and os.access(configured, os.X_OK):
        return configured
    return shutil.which("chromium") or shutil.which("chromium-browser")


def why_no_browser() -> str | None:
    """None when a browser can be driven, else the reason (for a skip message)."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (make install)"
    if chromium_path() is None:
        return "no Chromium: `deploy/local/chromium.sh ensure` could not install Debian's chromium here (needs root and apt-get)"
    return None


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()
