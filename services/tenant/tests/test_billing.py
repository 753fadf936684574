"""Billing over the tenant API, on the real servers: reports against metering's documents, tier history,
the monthly close and its adjustment lines, the announcement on the bus, the idempotent meter-event export.

A report of a past month needs a tenant that existed then: ``since_last_month`` backdates a new
tenant's creation and tier history in its document (test setup; the import path, which carries a
tier history through the API, is exercised in ``tests/test_billing_system.py``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time

from modelyard_billing import Month
from modelyard_billing.export import Exporter
from modelyard_billing.money import prorate
from modelyard_events import MeterEventExported, MonthClosed, UsageRecorded
from modelyard_tenant.service import utcnow
from modelyard_usage import MONTHLY, read

THIS = Month.of(utcnow())
LAST = THIS.previous()


def at(month: Month, day: int) -> datetime:
    return datetime.combine(month.first_day.replace(day=day), time(12), tzinfo=UTC)


def call(tenant_id: str, query: str, *, model_class: str = "slm", tokens: int = 1_000, when: datetime | None = None,
         cascade: bool = False) -> UsageRecorded:
    return UsageRecorded(tenant_id=tenant_id, query_id=query, model="gpt-4o-mini" if model_class == "slm" else "gpt-4o",
                         model_class=model_class, input_tokens=tokens, output_tokens=0, cost_usd=tokens * 0.15e-6,
                         llm_cost_usd=tokens * 2.5e-6, latency_ms=30.0, cascade_step=cascade, time=when or utcnow())


async def since_last_month(mongo_db, tenant, tier: str = "basic") -> None:
    since = at(LAST, 1).replace(hour=0)
    await mongo_db["tenants"].update_one({"_id": tenant.tenant_id}, {"$set": {
        "created_at": since, "tier_history": [{"tier": tier, "since": since}]}})


async def test_an_open_months_report_is_the_sum_of_its_usage_documents(new_tenant, client, record_usage, mongo_db):
    t = await new_tenant("professional")
    other = await new_tenant()
    await record_usage([call(t.tenant_id, "q1", tokens=1_200), call(t.tenant_id, "q2", tokens=800),
                        call(t.tenant_id, "q2", model_class="llm", tokens=800, cascade=True),
                        call(other.tenant_id, "q3", tokens=5_000)])
    resp = await client.get(t.path(f"/billing/{THIS}"), headers=t.headers)
    assert resp.status_code == 200, resp.text
    report = resp.json()
    monthly = await mongo_db[MONTHLY].find_one({"_id": f"{t.tenant_id}|{THIS}"})
    usage = report["usage"]
    assert (usage["queries"], usage["calls"], usage["input_tokens"], usage["model_cost_nusd"], usage["llm_only_cost_nusd"]) == (
        monthly["queries"], monthly["calls"], monthly["input_tokens"], monthly["cost_nusd"], monthly["llm_cost_nusd"]) == (
        2, 3, 2_800, monthly["cost_nusd"], monthly["llm_cost_nusd"])
    metrics = await read.usage_metrics(mongo_db, t.tenant_id, THIS.first_day, THIS.last_day)
    assert {m["model"]: m["calls"] for m in report["by_model"]} == {m: s["calls"] for m, s in metrics["by_model"].items()}
    assert report["by_class"]["llm"]["cascade_steps"] == 1 and report["by_class"]["slm"]["queries"] == 2
    # Created today: billed from today to the month's end at the professional price.
    days = THIS.days - utcnow().day + 1
    assert [(p["tier"], p["days"]) for p in report["tier_periods"]] == [("professional", days)]
    assert report["base_cents"] == prorate(45_000, days, THIS.days) and report["status"] == "open"
    assert report["total_cents"] == report["base_cents"] + report["overage_cents"]

    # The same isolation as every tenant route.
    assert (await client.get(other.path(f"/billing/{THIS}"), headers=t.headers)).status_code == 404
    assert (await client.get(t.path(f"/billing/{THIS}"))).status_code == 401
    for month in ("2026-13", "0000-01", "9999-12"):
        bad = await client.get(t.path(f"/billing/{month}"), headers=t.headers)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["path", "month"]


async def test_a_tier_change_is_recorded_with_its_time_and_prorated(new_tenant, client, mongo_db, admin):
    t = await new_tenant("basic")
    await since_last_month(mongo_db, t)
    changed = await client.patch(t.path(), json={"subscription_tier": "professional"}, headers=t.headers)
    assert changed.status_code == 200, changed.text
    history = changed.json()["tier_history"]
    assert [h["tier"] for h in history] == ["basic", "professional"]
    assert datetime.fromisoformat(history[1]["since"]) == datetime.fromisoformat(changed.json()["updated_at"])

    report = (await client.get(t.path(f"/billing/{THIS}"), headers=t.headers)).json()
    today = utcnow().day
    expected = ([("basic", today - 1)] if today > 1 else []) + [("professional", THIS.days - today + 1)]
    assert [(p["tier"], p["days"]) for p in report["tier_periods"]] == expected
    assert report["base_cents"] == sum(prorate(7_500 if tier == "basic" else 45_000, d, THIS.days) for tier, d in expected)
    last = (await client.get(t.path(f"/billing/{LAST}"), headers=t.headers)).json()
    assert [(p["tier"], p["days"]) for p in last["tier_periods"]] == [("basic", LAST.days)] and last["base_cents"] == 7_500
    # The history travels with an export.
    export = (await client.get(t.path("/export"), headers=admin)).json()
    assert [h["tier"] for h in export["tenant"]["tier_history"]] == ["basic", "professional"]


async def test_close_freezes_a_month_and_late_usage_becomes_an_adjustment(new_tenant, client, admin, record_usage, mongo_db,
                                                                          settings, topic_reader, second_replica):
    t = await new_tenant("basic")
    await since_last_month(mongo_db, t)
    await record_usage([call(t.tenant_id, f"c{i}", tokens=500_000, when=at(LAST, 5)) for i in range(5)])  # 2.5 M tokens

    refused = await client.post(f"/v1/billing/{THIS}/close", headers=admin)
    assert refused.status_code == 409 and refused.json()["error"] == "conflict"
    assert (await client.post(f"/v1/billing/{LAST}/close", headers=t.headers)).status_code == 403

    # Two replicas close at once: each statement is frozen once.
    first, second = await asyncio.gather(client.post(f"/v1/billing/{LAST}/close", headers=admin),
                                         second_replica.post(f"/v1/billing/{LAST}/close", headers=admin))
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    outcomes = sorted(r["outcome"] for resp in (first, second) for r in resp.json()["results"] if r["tenant_id"] == t.tenant_id)
    assert outcomes == ["closed", "unchanged"]
    closed = (await client.get(t.path(f"/billing/{LAST}"), headers=t.headers)).json()
    assert closed["status"] == "closed" and closed["overage_tokens"] == 500_000
    assert closed["total_cents"] == 7_500 + 200 and closed["adjustments"] == [] and closed["pending_adjustment"] is None

    announced = await topic_reader(settings.topics.name("billing_statements"), lambda recs: any(
        MonthClosed.model_validate_json(r.value).tenant_id == t.tenant_id for r in recs))
    event = next(MonthClosed.model_validate_json(r.value) for r in announced if MonthClosed.model_validate_json(r.value).tenant_id == t.tenant_id)
    assert (event.month, event.total_cents, event.overage_cents) == (str(LAST), 7_700, 200)

    # Late usage: the frozen report does not change; it shows as pending, outside the total...
    await record_usage([call(t.tenant_id, "late", tokens=250_000, when=at(LAST, 28))])
    pending = (await client.get(t.path(f"/billing/{LAST}"), headers=t.headers)).json()
    assert pending["usage"] == closed["usage"] and pending["total_cents"] == 7_700
    assert pending["pending_adjustment"]["usage"]["tokens"] == 250_000 and pending["pending_adjustment"]["amount_cents"] == 100
    # ...until the next close records it, once.
    again = (await client.post(f"/v1/billing/{LAST}/close", headers=admin)).json()["results"]
    mine = next(r for r in again if r["tenant_id"] == t.tenant_id)
    assert (mine["outcome"], mine["total_cents"], mine["adjustment_id"]) == ("adjusted", 7_800, f"{t.tenant_id}|{LAST}|1")
    adjusted = (await client.get(t.path(f"/billing/{LAST}"), headers=t.headers)).json()
    assert adjusted["total_cents"] == 7_800 and adjusted["pending_adjustment"] is None
    assert [(a["adjustment_id"], a["overage_tokens"], a["amount_cents"]) for a in adjusted["adjustments"]] == [
        (f"{t.tenant_id}|{LAST}|1", 250_000, 100)]
    third = (await client.post(f"/v1/billing/{LAST}/close", headers=admin)).json()["results"]
    assert next(r for r in third if r["tenant_id"] == t.tenant_id)["outcome"] == "unchanged"


async def test_the_meter_event_export_never_sends_a_line_twice(app, new_tenant, client, admin, record_usage, mongo_db, settings,
                                                               topic_reader):
    t = await new_tenant("basic")
    await since_last_month(mongo_db, t)
    await record_usage([call(t.tenant_id, f"e{i}", tokens=700_000, when=at(LAST, 9)) for i in range(3)])  # 2.1 M tokens
    customer = await client.put(t.path("/billing/customer"), json={"stripe_customer_id": "cus_TestAcme01"}, headers=admin)
    assert customer.status_code == 200, customer.text
    assert (await client.put(t.path("/billing/customer"), json={"stripe_customer_id": "cus_x"}, headers=t.headers)).status_code == 403
    assert (await client.post(f"/v1/billing/{LAST}/close", headers=admin)).status_code == 200

    exporter = Exporter(app.state.billing, settings.billing.meters, bus=app.state.bus)

    def mine(result):
        return [e for e in result.events if e.tenant_id == t.tenant_id]

    first = await exporter.export(LAST)
    await exporter.commit(first)
    assert sorted((e.meter, e.value) for e in mine(first)) == [("overage_tokens", 100_000), ("queries", 3), ("tokens", 2_100_000)]
    assert {e.stripe_customer_id for e in mine(first)} == {"cus_TestAcme01"}
    published = await topic_reader(settings.topics.name("meter_events"), lambda recs: {e.identifier for e in mine(first)} <= {
        MeterEventExported.model_validate_json(r.value).identifier for r in recs})
    assert {r.key.decode() for r in published} >= {e.identifier for e in mine(first)}  # keyed by identifier

    rerun = await exporter.export(LAST)
    assert mine(rerun) == [] and rerun.already_exported >= 3
    everything = await exporter.export(LAST, include_exported=True)
    assert [e.identifier for e in mine(everything)] == [e.identifier for e in mine(first)]

    await record_usage([call(t.tenant_id, "late", tokens=50_000, when=at(LAST, 30 if LAST.days >= 30 else LAST.days))])
    assert (await client.post(f"/v1/billing/{LAST}/close", headers=admin)).status_code == 200
    late = await exporter.export(LAST)
    await exporter.commit(late)
    assert sorted((e.line, e.meter, e.value) for e in mine(late)) == [
        (f"{t.tenant_id}|{LAST}|1", "overage_tokens", 50_000), (f"{t.tenant_id}|{LAST}|1", "queries", 1),
        (f"{t.tenant_id}|{LAST}|1", "tokens", 50_000)]
    assert mine(await exporter.export(LAST)) == []


def test_billing_reads_the_tenant_services_tenant_documents():
    from modelyard_billing import store as billing_store
    from modelyard_tenant import store as tenant_store

    assert (billing_store.TENANTS, billing_store.READY) == (tenant_store.TENANTS, tenant_store.READY)
