"""`modelyard bench dashboard`: how long the dashboard's pages take against a running stack.

Signs in once with a token (as a person would), then asks for each page ``requests`` times in turn:
the overview, its live fragment, the first organisation's page and its live fragment. Every page is
read from the tenant API on each request (the dashboard keeps no data), so the figures include those
API calls. The dashboard process's CPU per page is read with psutil when its pid is given.
"""

from __future__ import annotations

import re
import statistics
import time

import httpx
import psutil

PAGES = ("/overview", "/overview/live", "/orgs/{org}", "/orgs/{org}/live")


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(url: str, token: str, requests: int, pid: int | None = None) -> dict:
    url = url.rstrip("/")
    with httpx.Client(base_url=url, headers={"origin": url}, timeout=30) as client:
        signed = client.post("/signin", data={"token": token})
        if signed.status_code != 303 or "modelyard_session" not in "".join(signed.headers.get_list("set-cookie")):
            raise RuntimeError(f"sign-in at {url} refused ({signed.status_code}): check the token")
        overview = client.get("/overview")
        overview.raise_for_status()
        orgs = re.findall(r'/orgs/([0-9a-zA-Z_-]+)', overview.text)
        if not orgs:
            raise RuntimeError("the overview lists no organisation: run `modelyard demo` first")
        process = psutil.Process(pid) if pid else None
        figures = {}
        for page in PAGES:
            path = page.format(org=orgs[0])
            times = []
            cpu_before = sum(process.cpu_times()[:2]) if process else 0.0
            for _ in range(requests):
                start = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - start) * 1000)
                response.raise_for_status()
            cpu = (sum(process.cpu_times()[:2]) - cpu_before) / requests * 1000 if process else None
            figures[page] = {
                "p50_ms": round(statistics.median(times), 1),
                "p99_ms": round(_quantile(times, 0.99), 1),
                "bytes": len(response.content),
                **({"dashboard_cpu_ms": round(cpu, 2)} if cpu is not None else {}),
            }
    return {"url": url, "organisations": len(set(orgs)), "requests_per_page": requests, "pages": figures}
