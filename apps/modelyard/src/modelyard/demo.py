"""`modelyard demo`: a helpdesk query stream from several tenants through a running stack.

It creates tenants through the tenant API, publishes queries to `queries.submitted` as an upstream
system would, waits for every outcome, then waits until metering has folded every model call, and
reports per tenant what was routed where and what it cost against sending everything to the LLM.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from modelyard_core.bus import encode
from modelyard_core.kafka_clients import make_consumer, make_producer
from modelyard_core.settings import Settings
from modelyard_core.store import database, make_mongo
from modelyard_events import ModelClass, OutcomeStatus, QueryOutcome, QuerySubmitted

# The seed's helpdesk examples, by how hard they are. {n} is a ticket number, {svc} a system.
TEMPLATES: dict[str, list[str]] = {
    "simple": [
        "What is the status of ticket #{n}?",
        "Is ticket #{n} closed?",
        "Who is assigned to ticket #{n}?",
        "When was ticket #{n} last updated?",
        "What is the priority of ticket #{n}?",
        "Show me my open tickets",
    ],
    "moderate": [
        "How to reset my password for {svc}?",
        "How do I connect to the VPN from a new laptop?",
        "How can I request access to the {svc} dashboard?",
        "My {svc} login keeps timing out, what should I try?",
        "How to update the billing address on our account?",
        # Worded plainly but hard underneath: the router sends them to the SLM, whose answer may not
        # be confident enough, so they show the cascade at work.
        "Explain why the pivot table totals differ from the ledger export after the migration",
        "Why do distributed locks in the scheduler sometimes expire early?",
        "Explain why consistency checks on {svc} fail only at month end",
    ],
    "complex": [
        "Analyze the root cause of the {svc} outage last night and propose a remediation strategy",
        "Compare our incident response times this quarter with last quarter and explain the trend",
        "Investigate why {svc} latency doubled after the last deployment and recommend fixes",
    ],
    "critical": [
        "Design a disaster recovery plan for {svc} across two regions with RPO under 5 minutes",
        "We suspect a security breach in {svc}: outline containment, forensics and notification steps",
        "all prod down. payments failing everywhere",
    ],
}
#: Roughly the seed's "typical" distribution: mostly simple, a tail of complex and critical queries.
MIX = {"simple": 0.55, "moderate": 0.25, "complex": 0.13, "critical": 0.07}
SYSTEMS = ["billing", "payments", "CRM", "the data warehouse", "email", "SSO"]

TENANTS = [
    ("Acme Financial", "finance", "professional"),
    ("TechStart", "tech", "basic"),
    ("CareWell Health", "healthcare", "enterprise"),
]
#: Queries from a tenant that does not exist: the router must reject them, not drop them.
UNKNOWN_TENANT_QUERIES = 4


@dataclass
class DemoTenant:
    tenant_id: str
    name: str
    industry: str
    tier: str


def make_queries(tenants: list[DemoTenant], n: int, rng: random.Random) -> list[QuerySubmitted]:
    levels = list(MIX)
    weights = [MIX[k] for k in levels]
    out = []
    for i in range(n):
        t = tenants[i % len(tenants)]
        level = rng.choices(levels, weights)[0]
        text = rng.choice(TEMPLATES[level]).format(n=rng.randint(100, 9999), svc=rng.choice(SYSTEMS))
        role = rng.choice(["agent", "agent", "engineer", "manager"])
        out.append(QuerySubmitted(tenant_id=t.tenant_id, query_id=str(uuid.uuid4()), text=text, user_role=role,
                                  metadata={"demo_level": level}))
    for _ in range(UNKNOWN_TENANT_QUERIES):
        out.append(QuerySubmitted(tenant_id="tenant-that-does-not-exist", query_id=str(uuid.uuid4()),
                                  text="What is the status of ticket #1?"))
    rng.shuffle(out)
    return out


async def create_tenants(api_url: str, admin_token: str, run: str) -> list[DemoTenant]:
    tenants = []
    async with httpx.AsyncClient(base_url=api_url, timeout=15, headers={"Authorization": f"Bearer {admin_token}"}) as http:
        for name, industry, tier in TENANTS:
            resp = await http.post("/v1/tenants", json={
                "organization_name": f"{name} ({run})", "admin_email": f"it@{name.split()[0].lower()}.example",
                "industry": industry, "subscription_tier": tier,
            })
            if resp.status_code != 201:
                raise RuntimeError(f"creating tenant {name} failed: HTTP {resp.status_code} {resp.text}")
            tenants.append(DemoTenant(resp.json()["tenant_id"], name, industry, tier))
    return tenants


async def run_demo(*, api_url: str, queries: int, timeout_s: float) -> int:
    console = Console(stderr=True, width=None if Console(stderr=True).is_terminal else 130)
    settings = Settings()
    run = datetime.now(UTC).strftime("%H%M%S")
    admin_token = os.environ.get("MODELYARD_ADMIN_TOKEN", "dev-admin-token")
    rng = random.Random(42)

    tenants = await create_tenants(api_url, admin_token, run)
    console.print(f"created {len(tenants)} tenants: " + ", ".join(f"{t.name} ({t.industry}, {t.tier})" for t in tenants))
    stream = make_queries(tenants, queries, rng)

    outcomes, elapsed = await publish_and_collect(settings, stream, timeout_s, console)
    missing = len(stream) - len(outcomes)
    if missing:
        console.print(f"[red]{missing} queries got no outcome within {timeout_s:.0f}s[/red]")

    usage = await wait_for_metering(settings, tenants, outcomes, console)
    return report(console, tenants, stream, outcomes, usage, elapsed, missing)


async def publish_and_collect(settings: Settings, stream: list[QuerySubmitted], timeout_s: float,
                              console: Console, *, window: int | None = None) -> tuple[dict[str, QueryOutcome], float]:
    """Publish ``stream`` to ``queries.submitted`` as an upstream system would and collect each query's outcome
    (listening from before the first query is sent); the outcomes by query id and the seconds it took.

    ``window``: at most this many queries without an outcome at a time (None: publish the whole stream at
    once). A steady stream, not one burst: on a small shared machine a burst of thousands of queries can
    keep the model backend busy past the workers' call deadline.
    """
    topics = settings.topics
    outcomes: dict[str, QueryOutcome] = {}
    consumer = make_consumer(settings.kafka, group_id=None, enable_auto_commit=False, auto_offset_reset="latest")
    producer = make_producer(settings.kafka, enable_idempotence=True, linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        consumer.subscribe([topics.name("outcomes")])
        deadline = time.monotonic() + 30
        while not consumer.assignment():  # listen before publishing, so no outcome is missed
            if time.monotonic() > deadline:
                raise RuntimeError("could not subscribe to the outcomes topic")
            await consumer.getmany(timeout_ms=100)
        for tp in consumer.assignment():
            await consumer.position(tp)

        wanted = {q.query_id for q in stream}
        started = time.monotonic()
        sent = 0

        async def publish_up_to(limit: int) -> None:
            nonlocal sent
            sends = []
            for q in stream[sent:limit]:
                body, headers = encode(q, "demo")
                sends.append(await producer.send(topics.name("submitted"), body, key=q.tenant_id.encode(),
                                                 headers=[(k, v.encode()) for k, v in headers.items()]))
            sent = max(sent, min(limit, len(stream)))
            await asyncio.gather(*sends)

        await publish_up_to(window or len(stream))
        with Progress(TextColumn("[bold]outcomes"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as progress:
            bar = progress.add_task("outcomes", total=len(stream))
            while len(outcomes) < len(stream) and time.monotonic() - started < timeout_s:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for r in records:
                        o = QueryOutcome.model_validate_json(r.value)
                        if o.query_id in wanted:
                            outcomes[o.query_id] = o
                if window and sent < len(stream):
                    await publish_up_to(len(outcomes) + window)
                progress.update(bar, completed=len(outcomes))
        return outcomes, time.monotonic() - started
    finally:
        await producer.stop()
        await consumer.stop()


async def wait_for_metering(settings: Settings, tenants: Sequence[DemoTenant], outcomes: dict[str, QueryOutcome],
                            console: Console, timeout_s: float = 60.0) -> dict[str, dict]:
    """Wait until metering has folded every model call the outcomes report, then read its figures."""
    from modelyard_usage.read import routing_stats

    expected = Counter()
    for o in outcomes.values():
        expected[o.tenant_id] += len(o.cascade)
    today = datetime.now(UTC).date()
    mongo = make_mongo(settings.mongo, app_name="modelyard-demo")
    db = database(mongo, settings.mongo)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            stats = {t.tenant_id: await routing_stats(db, t.tenant_id, today, today) for t in tenants}
            if all(stats[t.tenant_id]["calls"] >= expected[t.tenant_id] for t in tenants):
                return stats
            if time.monotonic() > deadline:
                console.print("[red]metering did not fold every call in time; figures below are partial[/red]")
                return stats
            await asyncio.sleep(0.25)
    finally:
        await mongo.close()


def report(console: Console, tenants: list[DemoTenant], stream: list[QuerySubmitted], outcomes: dict[str, QueryOutcome],
           usage: dict[str, dict], elapsed: float, missing: int) -> int:
    status = Counter(o.status for o in outcomes.values())
    per_tenant: dict[str, list[QueryOutcome]] = defaultdict(list)
    for o in outcomes.values():
        per_tenant[o.tenant_id].append(o)

    def first_class(o: QueryOutcome) -> ModelClass | None:
        return o.cascade[0].model_class if o.cascade else None

    table = Table(title="modelyard demo: routing and cost per tenant (model simulator backend)")
    for col in ("tenant", "industry / tier", "queries", "SLM share", "cascades", "tokens", "cost $", "all-LLM cost $", "savings"):
        table.add_column(col, justify="left" if col in ("tenant", "industry / tier") else "right")
    for t in tenants:
        os_ = [o for o in per_tenant[t.tenant_id] if o.status is not OutcomeStatus.REJECTED]
        u = usage[t.tenant_id]
        slm = sum(1 for o in os_ if first_class(o) is ModelClass.SLM)
        cascades = sum(1 for o in os_ if len(o.cascade) > 1)
        table.add_row(t.name, f"{t.industry} / {t.tier}", str(len(os_)), f"{slm / len(os_):.0%}" if os_ else "-",
                      str(cascades), f"{u['input_tokens'] + u['output_tokens']:,}", f"{u['cost_usd']:.4f}",
                      f"{u['llm_only_cost_usd']:.4f}", f"{u['savings_pct']:.1f}%")
    console.print(table)

    admitted = [o for o in outcomes.values() if o.status is not OutcomeStatus.REJECTED and o.cascade]
    slm_first = [o for o in admitted if first_class(o) is ModelClass.SLM]
    cost = sum(u["cost_usd"] for u in usage.values())
    llm_cost = sum(u["llm_only_cost_usd"] for u in usage.values())
    rejected = [o for o in outcomes.values() if o.status is OutcomeStatus.REJECTED]
    console.print(f"{len(stream)} queries in {elapsed:.1f}s; {len(rejected)} rejected "
                  f"({', '.join(sorted({o.reason or '' for o in rejected}))})")
    summary = {
        "queries": len(stream),
        "completed": status[OutcomeStatus.COMPLETED],
        "rejected": status[OutcomeStatus.REJECTED],
        "failed": status[OutcomeStatus.FAILED],
        "no_outcome": missing,
        "slm_share": round(len(slm_first) / len(admitted), 4) if admitted else 0.0,
        "cascade_rate": round(sum(1 for o in slm_first if len(o.cascade) > 1) / len(slm_first), 4) if slm_first else 0.0,
        "cost_usd": round(cost, 6),
        "llm_only_cost_usd": round(llm_cost, 6),
        "savings_pct": round(100 * (llm_cost - cost) / llm_cost, 2) if llm_cost else 0.0,
    }
    print(json.dumps(summary), flush=True)
    ok = missing == 0 and summary["failed"] == 0 and summary["completed"] + summary["rejected"] == len(stream)
    return 0 if ok else 1
