"""``modelyard bench http``: what modelyard adds to a chat request, measured against a running stack.

The same closed-loop load (same prompts, same concurrency, same duration) is sent first straight to
the model simulator, then through the ingress (ingress → Kafka → router → Kafka → inference →
simulator → Kafka → ingress, with metering consuming alongside). The simulator answers at 0 ms for
the run (its knobs are restored afterwards), so the difference is modelyard's own cost.

The benchmark creates an enterprise-tier tenant for itself (100,000 calls a day) unless it is given
an API key.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson

from .loadgen import encode_post, run_load

#: Helpdesk prompts, mostly simple (as real traffic is), a few that the router sends to the LLM.
PROMPTS = [
    "How do I reset my password?",
    "What is the status of ticket #4711?",
    "Where can I download last month's invoice?",
    "How do I add a new user to my team?",
    "Can I change the email address on my account?",
    "What are your support hours?",
    "The export button does nothing when I click it. What should I try?",
    "Analyze the root cause of yesterday's database outage and design a recovery strategy with rollback steps",
]


def chat_body(model: str, prompt: str) -> bytes:
    return orjson.dumps({"model": model, "messages": [{"role": "user", "content": prompt}]})


async def _bench_tenant(api_url: str, admin_token: str) -> str:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        resp = await http.post("/v1/tenants", headers={"Authorization": f"Bearer {admin_token}"}, json={
            "organization_name": f"HTTP bench {int(time.time())}", "admin_email": "bench@modelyard.example",
            "industry": "tech", "subscription_tier": "enterprise",
        })
        resp.raise_for_status()
        return resp.json()["api_key"]


async def _ready(url: str, headers: dict[str, str] | None = None) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.get(url, headers=headers)
        resp.raise_for_status()


async def endpoints(ingress_url: str, simulator_url: str, api_url: str, admin_token: str,
                    api_key: str | None) -> tuple[str, str, dict[str, str]]:
    """``(ingress URL, simulator URL, the bench tenant's auth header)`` once both servers answer (the
    tenant is created unless a key is given)."""
    ingress_url, simulator_url = ingress_url.rstrip("/"), simulator_url.rstrip("/").removesuffix("/v1")
    if api_key is None:
        api_key = await _bench_tenant(api_url, admin_token)
    auth = {"Authorization": f"Bearer {api_key}"}
    await _ready(f"{ingress_url}/v1/models", auth)
    await _ready(f"{simulator_url}/v1/models")
    return ingress_url, simulator_url, auth


async def run_http_bench(
    *,
    ingress_url: str = "http://127.0.0.1:8081",
    simulator_url: str = "http://127.0.0.1:8090",
    api_url: str = "http://127.0.0.1:8080",
    admin_token: str = "dev-admin-token",
    api_key: str | None = None,
    concurrency: int = 16,
    seconds: float = 10.0,
    warmup_s: float = 2.0,
    model: str = "auto",
    direct_model: str = "gpt-4o-mini",
    zero_latency: bool = True,
    reference_url: str | None = None,
    reference_key: str | None = None,
) -> dict[str, Any]:
    """Run the loads and return the figures (``direct``, ``ingress``, what the ingress adds, and with
    ``reference_url`` the same load through another OpenAI-compatible gateway, e.g. a LiteLLM proxy in
    front of the same simulator, asked for ``direct_model``)."""
    ingress_url, simulator_url, auth = await endpoints(ingress_url, simulator_url, api_url, admin_token, api_key)

    direct = [encode_post(f"{simulator_url}/v1/chat/completions", chat_body(direct_model, p)) for p in PROMPTS]
    through = [encode_post(f"{ingress_url}/v1/chat/completions", chat_body(model, p), auth) for p in PROMPTS]
    loads = [("direct", direct), ("ingress", through)]
    if reference_url is not None:
        reference_url = reference_url.rstrip("/").removesuffix("/v1")
        headers = {"Authorization": f"Bearer {reference_key}"} if reference_key else {}
        await _ready(f"{reference_url}/v1/models", headers)
        loads.append(("reference", [encode_post(f"{reference_url}/v1/chat/completions", chat_body(direct_model, p), headers)
                                    for p in PROMPTS]))

    saved: dict[str, Any] | None = None
    async with httpx.AsyncClient(base_url=simulator_url, timeout=10) as sim:
        if zero_latency:
            saved = (await sim.get("/admin/config")).raise_for_status().json()["models"]
            (await sim.post("/admin/config", json={"all_models": {"latency_ms": 0, "latency_distribution": "fixed"}})).raise_for_status()
        try:
            results = {}
            for name, requests in loads:
                marker = b'"escalated":true' if name == "ingress" else None
                if warmup_s > 0:
                    await run_load(requests, concurrency=concurrency, seconds=warmup_s)
                results[name] = await run_load(requests, concurrency=concurrency, seconds=seconds, marker=marker)
        finally:
            if saved is not None:
                await sim.post("/admin/config", json={"models": saved})

    d, i = results["direct"].summary(), results["ingress"].summary()
    escalated = results["ingress"].marked

    def added(key: str) -> float | None:
        return round(i[key] - d[key], 2) if i[key] is not None and d[key] is not None else None

    reference: dict[str, Any] = {}
    if "reference" in results:
        r = results["reference"].summary()
        reference = {"reference": r, "reference_url": reference_url,
                     "ingress_per_reference_rps": round(i["requests_per_s"] / r["requests_per_s"], 2) if r["requests_per_s"] else None}
    return {
        "benchmark": "http",
        "concurrency": concurrency,
        "seconds": seconds,
        "model": model,
        "simulator_latency": "0 ms" if zero_latency else "as configured",
        "direct": d,
        "ingress": {**i, "escalated": escalated, "escalated_share": round(escalated / i["ok"], 3) if i["ok"] else None},
        "added_p50_ms": added("p50_ms"),
        "added_p99_ms": added("p99_ms"),
        **reference,
    }


def run(**kwargs: Any) -> dict[str, Any]:
    return asyncio.run(run_http_bench(**kwargs))
