"""Benchmarks of issue 20: billing reports for many tenants, webhook delivery latency, rate-limit cost.

* ``billing`` — a scratch database with N tenants and a month of per-(day, model) usage documents (the
  shape metering writes); times every tenant's report of the month, one tenant's report, and the close.
* ``webhooks`` — a dispatcher process (`modelyard webhooks`) on a scratch topic prefix and database, a
  receiver on this machine verifying signatures; quota alerts published one by one: publish → verified
  receipt latency, p50/p99.
* ``ratelimit`` — the rate decision alone, and the router's admission of one record with and without it.

Each prints its figures and, as its last line, one JSON object.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from modelyard_billing import Billing, Month, PriceList
from modelyard_core.settings import Settings
from modelyard_core.store import database, make_mongo
from modelyard_usage import DAILY

MODELS = (("gpt-4o-mini", "slm"), ("gpt-4o", "llm"), ("gpt-4-turbo", "llm_plus"))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def bench_billing(settings: Settings, tenants: int, month: Month, repeats: int = 3) -> dict[str, Any]:
    mongo = make_mongo(settings.mongo, app_name="modelyard-bench-billing")
    name = f"bench_billing_{uuid.uuid4().hex[:8]}"
    db = mongo[name]
    try:
        since = datetime(month.previous().year, month.previous().month, 1, tzinfo=UTC)
        ids = [f"bench-{i:05d}" for i in range(tenants)]
        await db["tenants"].insert_many([{"_id": t, "tenant_id": t, "organization_name": t, "subscription_tier": "basic",
                                          "lifecycle": "ready", "created_at": since,
                                          "tier_history": [{"tier": "basic", "since": since}]} for t in ids])
        docs = []
        for t in ids:
            for day in month.dates():
                for model, cls in MODELS:
                    docs.append({"_id": f"{t}|{day}|{model}", "tenant_id": t, "day": day.isoformat(), "model": model,
                                 "model_class": cls, "queries": 40, "calls": 44, "input_tokens": 20_000, "output_tokens": 9_000,
                                 "cost_nusd": 7_000_000, "llm_cost_nusd": 90_000_000, "cascade_steps": 4})
        for i in range(0, len(docs), 5_000):
            await db[DAILY].insert_many(docs[i:i + 5_000])
        billing = Billing(db, PriceList())
        now = month.end + timedelta(days=1)
        all_s, one_s = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            reports = await billing.reports(month, now=now)
            all_s.append(time.perf_counter() - started)
        tenant = await db["tenants"].find_one({"_id": ids[0]})
        for _ in range(20):
            started = time.perf_counter()
            await billing.report(tenant, month, now)
            one_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        closed = await billing.close(month, now=now)
        close_s = time.perf_counter() - started
        return {"bench": "billing", "tenants": tenants, "usage_documents": len(docs), "reports": len(reports),
                "all_reports_s": round(min(all_s), 3), "per_tenant_ms": round(1000 * min(all_s) / tenants, 3),
                "one_report_p50_ms": round(1000 * statistics.median(one_s), 2), "close_s": round(close_s, 3),
                "closed": sum(r.outcome == "closed" for r in closed)}
    finally:
        await mongo.drop_database(name)
        await mongo.close()


def bench_ratelimit(n: int = 200_000) -> dict[str, Any]:
    from modelyard_core.ratelimit import DEFAULT_RATES, decide
    from modelyard_events import Tier
    from modelyard_router.admission_state import ADMITTED, PartitionDay

    rate = DEFAULT_RATES[Tier.ENTERPRISE]
    tat_r = tat_t = 0
    started = time.perf_counter()
    for i in range(n):
        d = decide(tat_r, tat_t, i * 1_000, 300, rate)
        if d.allowed:
            tat_r, tat_t = d.tat_requests_us, d.tat_tokens_us
    decide_us = 1e6 * (time.perf_counter() - started) / n

    def admit(with_rate: bool) -> float:
        state = PartitionDay(0, "2026-11-26")

        def check(entry):  # the router's check: the decision plus the state it moves
            d = decide(entry.tat_requests, entry.tat_tokens, entry.count * 1_000, 300, rate)
            if d.allowed:
                entry.tat_requests, entry.tat_tokens = d.tat_requests_us, d.tat_tokens_us
            return ADMITTED

        started = time.perf_counter()
        for i in range(n):
            state.admit(f"t{i % 50}", i, 10**9, rate=check if with_rate else None)
        return 1e6 * (time.perf_counter() - started) / n

    plain, limited = admit(False), admit(True)
    return {"bench": "ratelimit", "decisions": n, "decide_us": round(decide_us, 3), "admit_us": round(plain, 3),
            "admit_with_rate_us": round(limited, 3), "rate_overhead_us": round(limited - plain, 3)}


async def bench_webhooks(kafka: str, mongo_url: str, events: int, log_dir) -> dict[str, Any]:
    import uvicorn
    from modelyard_core.secrets import SecretBox
    from modelyard_events import AlertMetric, TenantAlert
    from modelyard_harness import Process, drop_run, free_port, produce_raw, unique_prefix
    from modelyard_hooks import Endpoints, WebhookType, verify
    from pymongo import AsyncMongoClient
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from cryptography.fernet import Fernet

    prefix = unique_prefix("benchhooks")

    master = Fernet.generate_key().decode()
    database_name = f"t_{prefix.strip('.').replace('-', '_')}"
    received: dict[str, float] = {}
    secret: list[str] = []

    async def hook(request: Request) -> Response:
        body = (await request.body()).decode()
        if verify(secret[0], dict(request.headers), body):
            received.setdefault(request.headers["webhook-id"], time.perf_counter())
            return Response(status_code=204)
        return Response(status_code=401)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/hook", hook, methods=["POST"])]), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    mongo = AsyncMongoClient(mongo_url, tz_aware=True)
    ops = free_port()
    env = {"MODELYARD_KAFKA__BOOTSTRAP_SERVERS": kafka, "MODELYARD_MONGO__URL": mongo_url, "MODELYARD_MONGO__DATABASE": database_name,
           "MODELYARD_TOPICS__PREFIX": prefix, "MODELYARD_MASTER_KEYS": master, "MODELYARD_OPS_PORT": str(ops),
           "MODELYARD_WEBHOOKS__ALLOW_HTTP_LOCALHOST": "true", "MODELYARD_LOG_FORMAT": "console"}
    dispatcher = Process("webhooks", ["webhooks"], {**{k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}, **env},
                         f"http://127.0.0.1:{ops}/readyz", log_dir / f"{prefix.rstrip('.')}-webhooks.log")
    try:
        endpoint, s = await Endpoints(mongo[database_name], SecretBox([master])).create(
            "bench-tenant", f"http://127.0.0.1:{port}/hook", [WebhookType.QUOTA_WARNING], "bench", datetime.now(UTC))
        secret.append(s)
        dispatcher.start()
        await asyncio.to_thread(dispatcher.wait_ready, 120)
        sent: dict[str, float] = {}
        topic = f"{prefix}tenants.alerts"
        for i in range(events):
            alert = TenantAlert(tenant_id="bench-tenant", metric=AlertMetric.API_CALLS_PER_DAY, threshold_pct=80,
                                period=f"bench-{i}", value=800, limit=1000)
            sent[f"evt_{alert.event_id}"] = time.perf_counter()
            await produce_raw(kafka, topic, [(b"bench-tenant", alert.model_dump_json().encode())], linger_ms=0)
            deadline = time.monotonic() + 30
            while f"evt_{alert.event_id}" not in received:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"webhook {i} not received within 30 s")
                await asyncio.sleep(0.001)
        latencies = [1000 * (received[w] - sent[w]) for w in sent]
        return {"bench": "webhooks", "events": events, "delivered": len(received), "p50_ms": round(_pct(latencies, 0.5), 1),
                "p99_ms": round(_pct(latencies, 0.99), 1), "max_ms": round(max(latencies), 1),
                "note": "publish on tenants.alerts -> signed POST verified by a receiver on this machine, one event at a time"}
    finally:
        dispatcher.stop()
        server.should_exit = True
        await serving
        await mongo.close()
        await drop_run(kafka, prefix, mongo_url, database_name)
