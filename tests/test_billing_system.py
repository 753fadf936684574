"""Billing end to end (issue 20): the demo's organisations get last month's report, and its totals are
their usage documents.

Everything is real: the whole pipeline as processes (router, both pools, metering, tenant API) on the
real broker and MongoDB-protocol server, and `modelyard billing ...` run as commands against them.
The demo's three organisations (``modelyard.demo.TENANTS``: names, industries, tiers) come in through
the import API as organisations that existed since the month before last — one of them upgraded on
the 16th of last month — because a report of last month needs tenants that existed then. Last month's
usage is published on ``usage.recorded`` as the inference workers publish it (dated last month), and
metering folds it; this month's comes from the demo's own query stream through the pipeline. On the
day this was written, "last month" is November 2026.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import subprocess
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from modelyard.demo import TENANTS, DemoTenant, make_queries
from modelyard_billing import Month
from modelyard_billing.export import identifier
from modelyard_events import MeterEventExported, MonthClosed, QueryOutcome, UsageRecorded
from modelyard_harness import ADMIN, TopicReader, modelyard_command, outcomes_by_query, produce_raw, publish_queries
from modelyard_harness.usage import expected_totals, synthetic_usage
from modelyard_usage import MONTHLY, read
from pymongo import AsyncMongoClient

pytestmark = pytest.mark.system

NOW = datetime.now(UTC)
THIS = Month.of(NOW)
LAST = THIS.previous()
UPGRADE_DAY = 16
UPGRADED = "TechStart"  # basic, then professional from the 16th


def day_of(month: Month, day: int, hour: int = 10) -> datetime:
    return datetime(month.year, month.month, day, hour, tzinfo=UTC)


async def import_demo_tenants(api_url: str) -> dict[str, dict]:
    since = day_of(LAST.previous(), 1, 0)
    out = {}
    async with httpx.AsyncClient(base_url=api_url, timeout=30, headers=ADMIN) as http:
        for name, industry, tier in TENANTS:
            history = [{"tier": tier, "since": since.isoformat()}]
            if name == UPGRADED:
                history.append({"tier": "professional", "since": day_of(LAST, UPGRADE_DAY).isoformat()})
            record = {"tenant_id": uuid.uuid4().hex, "organization_name": name, "admin_email": f"it@{name.split()[0].lower()}.example",
                      "industry": industry, "subscription_tier": history[-1]["tier"], "version": 1,
                      "created_at": since.isoformat(), "updated_at": since.isoformat(), "tier_history": history}
            resp = await http.post("/v1/tenants/import", json={"exported_at": NOW.isoformat(), "tenant": record})
            assert resp.status_code == 201, resp.text
            out[name] = {**resp.json()["tenant"], "api_key": resp.json()["api_key"]}
    return out


def billing(stack, *args: str) -> str:
    done = subprocess.run([modelyard_command(), "billing", *args], env=stack.env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"modelyard billing {' '.join(args)}: {done.stderr}"
    return done.stdout


async def wait_metered(db, tenant_calls: dict[str, int], month: Month, timeout_s: float = 90.0) -> None:
    """Until metering's monthly documents hold exactly the expected calls per tenant."""
    deadline = time.monotonic() + timeout_s
    while True:
        docs = {d["tenant_id"]: d async for d in db[MONTHLY].find({"month": str(month), "tenant_id": {"$in": list(tenant_calls)}})}
        seen = {t: docs.get(t, {}).get("calls", 0) for t in tenant_calls}
        if seen == tenant_calls:
            return
        assert time.monotonic() < deadline, f"metering folded {seen}, expected {tenant_calls}"
        await asyncio.sleep(0.2)


def usage_events(tenant_ids: list[str], month: Month, days: tuple[int, ...], n: int, seed: int) -> list[UsageRecorded]:
    events = []
    for i, day in enumerate(days):
        events += synthetic_usage(n, tenant_ids, seed=seed + i, when=day_of(month, day))
    return events


async def publish_usage(stack, events: list[UsageRecorded]) -> None:
    await produce_raw(stack.kafka, stack.topic("usage.recorded"), [(e.tenant_id.encode(), e.model_dump_json().encode()) for e in events])


def assert_report_is_the_documents(report: dict, monthly: dict, metrics: dict, expected: dict) -> None:
    usage = report["usage"]
    # The report's totals are metering's monthly document, integer for integer...
    assert (usage["queries"], usage["calls"], usage["input_tokens"], usage["output_tokens"], usage["model_cost_nusd"],
            usage["llm_only_cost_nusd"], usage["errors"], usage["cascade_steps"]) == (
        monthly["queries"], monthly["calls"], monthly["input_tokens"], monthly["output_tokens"], monthly["cost_nusd"],
        monthly["llm_cost_nusd"], monthly["errors"], monthly["cascade_steps"])
    # ...and the published events' own sums (computed without metering).
    assert (usage["calls"], usage["queries"], usage["tokens"], usage["model_cost_nusd"]) == (
        expected["calls"], expected["queries"], expected["tokens"], expected["cost_nusd"])
    # Per model, the same figures as the tenant API's usage read.
    assert {m["model"]: (m["calls"], m["input_tokens"] + m["output_tokens"]) for m in report["by_model"]} == {
        model: (s["calls"], s["input_tokens"] + s["output_tokens"]) for model, s in metrics["by_model"].items()}
    assert sum(c["queries"] for c in report["by_class"].values()) == usage["queries"]


async def test_last_months_reports_close_and_export(stack, tmp_path: Path):
    tenants = await import_demo_tenants(stack.api_url)
    ids = {name: t["tenant_id"] for name, t in tenants.items()}
    mongo = AsyncMongoClient(stack.mongo_url, tz_aware=True)
    db = mongo[stack.database]
    try:
        events = usage_events(list(ids.values()), LAST, (3, UPGRADE_DAY, LAST.days), 400, seed=7)
        await publish_usage(stack, events)
        expected = expected_totals(events)
        await wait_metered(db, {t: expected[t]["calls"] for t in ids.values()}, LAST)

        # -- the report, three ways: JSON, CSV and table from the command, JSON from the API --------------
        reports = {r["tenant_id"]: r for r in json.loads(billing(stack, "report", "--month", str(LAST), "--format", "json"))["reports"]}
        assert set(ids.values()) <= set(reports)
        for name, tenant_id in ids.items():
            monthly = await db[MONTHLY].find_one({"_id": f"{tenant_id}|{LAST}"})
            metrics = await read.usage_metrics(db, tenant_id, LAST.first_day, LAST.last_day)
            assert_report_is_the_documents(reports[tenant_id], monthly, metrics, expected[tenant_id])
            api = await _get(stack, f"/v1/tenants/{tenant_id}/billing/{LAST}", tenants[name]["api_key"])
            assert {k: v for k, v in api.items() if k != "generated_at"} == {
                k: v for k, v in reports[tenant_id].items() if k != "generated_at"}
        upgraded = reports[ids[UPGRADED]]
        assert [(p["tier"], p["first_day"][-2:], p["days"]) for p in upgraded["tier_periods"]] == [
            ("basic", "01", UPGRADE_DAY - 1), ("professional", f"{UPGRADE_DAY}", LAST.days - UPGRADE_DAY + 1)]
        assert upgraded["overage_rate_cents_per_million"] == 300
        for r in reports.values():
            assert r["total_cents"] == r["base_cents"] + r["overage_cents"] and r["status"] == "open"
        rows = {row["tenant_id"]: row for row in csv.DictReader(io.StringIO(billing(stack, "report", "--month", str(LAST), "--format", "csv")))}
        assert {t: int(rows[t]["total_cents"]) for t in ids.values()} == {t: reports[t]["total_cents"] for t in ids.values()}
        assert {t: int(rows[t]["tokens"]) for t in ids.values()} == {t: expected[t]["tokens"] for t in ids.values()}
        table = billing(stack, "report", "--month", str(LAST), "--tenant", ids[UPGRADED])
        assert UPGRADED in table and "by model" in table and "professional" in table and "gpt-4o-mini" in table

        # -- the close: frozen, announced, late usage as an adjustment -----------------------------------
        async with TopicReader(stack.kafka, stack.topic("billing.statements")) as statements:
            summary = json.loads(billing(stack, "close", "--month", str(LAST)).splitlines()[-1])
            assert summary["closed"] == len(ids)
            closed = await statements.wait_for(lambda recs: len(recs) >= len(ids) and recs, 30, "a MonthClosed per tenant")
        announced = {MonthClosed.model_validate_json(r.value).tenant_id: MonthClosed.model_validate_json(r.value) for r in closed}
        assert {t: announced[t].total_cents for t in ids.values()} == {t: reports[t]["total_cents"] for t in ids.values()}

        acme = ids["Acme Financial"]
        late = usage_events([acme], LAST, (LAST.days,), 40, seed=99)
        await publish_usage(stack, late)
        await wait_metered(db, {acme: expected[acme]["calls"] + len(late)}, LAST)
        frozen = (await _get(stack, f"/v1/tenants/{acme}/billing/{LAST}", tenants["Acme Financial"]["api_key"]))
        assert frozen["status"] == "closed" and frozen["usage"] == reports[acme]["usage"]
        assert frozen["pending_adjustment"]["usage"]["calls"] == len(late)
        assert json.loads(billing(stack, "close", "--month", str(LAST)).splitlines()[-1]) == {
            "month": str(LAST), "closed": 0, "adjusted": 1, "unchanged": len(ids) - 1}
        adjusted = await _get(stack, f"/v1/tenants/{acme}/billing/{LAST}", tenants["Acme Financial"]["api_key"])
        assert adjusted["pending_adjustment"] is None and len(adjusted["adjustments"]) == 1
        assert adjusted["usage"]["calls"] + adjusted["adjustments"][0]["usage"]["calls"] == expected[acme]["calls"] + len(late)
        assert adjusted["total_cents"] == reports[acme]["total_cents"] + adjusted["adjustments"][0]["amount_cents"]

        # -- the export: a file and a topic, each line once ----------------------------------------------
        for name, tenant_id in ids.items():
            billing(stack, "customer", "--tenant", tenant_id, "--stripe-customer", f"cus_{name.split()[0]}")
        out = tmp_path / "meter-events.jsonl"
        async with TopicReader(stack.kafka, stack.topic("billing.meter_events")) as meter_topic:
            first = json.loads(billing(stack, "export", "--month", str(LAST), "--out", str(out), "--kafka").splitlines()[-1])
            lines = [json.loads(line) for line in out.read_text().splitlines()]
            assert first["events"] == len(lines) > 0 and first["unmapped_tenants"] == []
            records = await meter_topic.wait_for(lambda recs: len(recs) >= len(lines) and recs, 30, "the exported meter events")
        assert sorted(MeterEventExported.model_validate_json(r.value).identifier for r in records) == sorted(x["identifier"] for x in lines)
        by_identifier = {line["identifier"]: line for line in lines}
        for name, tenant_id in ids.items():
            report_line = by_identifier[identifier(f"{tenant_id}|{LAST}", "tokens", "report")]
            assert report_line["payload"] == {"stripe_customer_id": f"cus_{name.split()[0]}", "value": str(reports[tenant_id]["billable_tokens"])}
        adjustment_line = by_identifier[identifier(f"{acme}|{LAST}", "queries", adjusted["adjustments"][0]["adjustment_id"])]
        assert adjustment_line["payload"]["value"] == str(adjusted["adjustments"][0]["usage"]["queries"])
        again = json.loads(billing(stack, "export", "--month", str(LAST), "--out", str(out)).splitlines()[-1])
        assert again["events"] == 0 and again["already_exported"] == len(lines) and out.read_text() == ""
    finally:
        await mongo.close()


async def test_this_months_report_of_the_demo_stream(stack):
    """The demo's query stream through the pipeline: this month's report is what metering wrote."""
    imported = await import_demo_tenants(stack.api_url)
    tenants = [DemoTenant(t["tenant_id"], name, t["industry"], t["subscription_tier"]) for name, t in imported.items()]
    stream = make_queries(tenants, 60, random.Random(20))
    async with TopicReader(stack.kafka, stack.topic("queries.outcomes")) as outcomes:
        await publish_queries(stack.kafka, stack.topic("queries.submitted"), stream)
        wanted = {q.query_id for q in stream}
        done = await outcomes.wait_for(lambda recs: wanted <= (o := outcomes_by_query(recs)).keys() and o, 120, "every outcome")
    calls: Counter = Counter()
    for o in (v[0] for k, v in done.items() if k in wanted):
        o: QueryOutcome
        calls[o.tenant_id] += len(o.cascade)
    mongo = AsyncMongoClient(stack.mongo_url, tz_aware=True)
    db = mongo[stack.database]
    try:
        await wait_metered(db, {t.tenant_id: calls[t.tenant_id] for t in tenants}, THIS)
        reports = {r["tenant_id"]: r for r in json.loads(billing(stack, "report", "--month", str(THIS), "--format", "json"))["reports"]}
        for t in tenants:
            monthly = await db[MONTHLY].find_one({"_id": f"{t.tenant_id}|{THIS}"})
            usage = reports[t.tenant_id]["usage"]
            assert (usage["queries"], usage["calls"], usage["input_tokens"] + usage["output_tokens"], usage["model_cost_nusd"]) == (
                monthly["queries"], monthly["calls"], monthly["input_tokens"] + monthly["output_tokens"], monthly["cost_nusd"])
            assert usage["calls"] == calls[t.tenant_id] > 0
    finally:
        await mongo.close()


async def _get(stack, path: str, token: str) -> dict:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        resp = await http.get(path, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200, resp.text
        return resp.json()

