"""Usage, routing statistics and platform statistics, read from metering's usage documents."""

from __future__ import annotations

from modelyard_events import UsageRecorded


def call(tenant_id: str, query: str, model_class: str, *, cascade: bool = False, agent: str | None = None) -> UsageRecorded:
    return UsageRecorded(
        tenant_id=tenant_id,
        query_id=query,
        model="gpt-4o-mini" if model_class == "slm" else "gpt-4o",
        model_class=model_class,
        agent_id=agent,
        input_tokens=100,
        output_tokens=50,
        cost_usd=0.001 if model_class == "slm" else 0.015,
        llm_cost_usd=0.015,
        latency_ms=20.0,
        cascade_step=cascade,
    )


async def test_tenant_usage_and_routing_stats(new_tenant, client, record_usage):
    t = await new_tenant()
    other = await new_tenant()
    await record_usage([
        call(t.tenant_id, "q1", "slm", agent="ag1"),
        call(t.tenant_id, "q2", "slm"),
        call(t.tenant_id, "q2", "llm", cascade=True),
        call(other.tenant_id, "q3", "llm"),
    ])
    usage = await client.get(t.path("/usage"), headers=t.headers)
    assert usage.status_code == 200, usage.text
    totals = usage.json()["totals"]
    assert (totals["queries"], totals["calls"], totals["slm_calls"], totals["llm_calls"]) == (2, 3, 2, 1)
    assert totals["input_tokens"] == 300
    assert set(usage.json()["by_model"]) == {"gpt-4o-mini", "gpt-4o"}

    stats = (await client.get(t.path("/routing-stats"), headers=t.headers)).json()
    assert (stats["tenant_id"], stats["cascade_steps"], stats["slm_share"]) == (t.tenant_id, 1, round(2 / 3, 4))
    assert stats["savings_usd"] > 0  # the formula is metering's; here: it reaches the caller
    assert "ag1" in stats["agents"]

    # Another tenant's usage is not readable, and its numbers did not leak into this one's.
    assert (await client.get(other.path("/usage"), headers=t.headers)).status_code == 404
    assert (await client.get(other.path("/routing-stats"), headers=t.headers)).status_code == 404
    other_totals = (await client.get(other.path("/usage"), headers=other.headers)).json()["totals"]
    assert (other_totals["queries"], other_totals["llm_calls"]) == (1, 1)


async def test_routing_stats_show_shadow_quality_per_tenant_and_agent_with_its_interval_and_no_billed_cost(
        new_tenant, client, record_usage):
    t = await new_tenant()
    shadow = [call(t.tenant_id, f"s{i}", "llm", agent="ag1").model_copy(update={"shadow": True, "shadow_agreed": i < 8})
              for i in range(10)]
    await record_usage([call(t.tenant_id, "q1", "slm", agent="ag1"), *shadow])
    stats = (await client.get(t.path("/routing-stats"), headers=t.headers)).json()
    assert (stats["queries"], stats["calls"], stats["cost_usd"]) == (1, 1, 0.001)  # the shadow calls are not billed
    for s in (stats["shadow"], stats["agents"]["ag1"]["shadow"]):
        assert (s["calls"], s["compared"], s["agreed"], s["quality_vs_large"]) == (10, 10, 8, 0.8)
        assert s["ci95"] == [0.4902, 0.9433] and s["cost_usd"] == 0.15  # Wilson, 95%: 8 of 10
    usage = (await client.get(t.path("/usage"), headers=t.headers)).json()
    assert usage["totals"]["calls"] == 1 and usage["totals"]["shadow"]["calls"] == 10


async def test_platform_statistics_are_the_platform_admins(new_tenant, client, admin, record_usage):
    t = await new_tenant()
    await record_usage([call(t.tenant_id, "s1", "slm"), call(t.tenant_id, "s2", "llm")])
    stats = await client.get("/v1/statistics", headers=admin)
    assert stats.status_code == 200
    row = next(r for r in stats.json()["tenants"] if r["tenant_id"] == t.tenant_id)
    assert (row["queries"], row["slm_calls"], row["llm_calls"]) == (2, 1, 1)
    assert stats.json()["total_tenants"] >= 1
    routing = (await client.get("/v1/statistics/routing", headers=admin)).json()
    assert routing["tenant_id"] is None and routing["calls"] >= 2
    for path in ("/v1/statistics", "/v1/statistics/routing"):
        assert (await client.get(path, headers=t.headers)).status_code == 403
        assert (await client.get(path)).status_code == 401


async def test_period_is_validated(new_tenant, client):
    t = await new_tenant()
    resp = await client.get(t.path("/usage"), params={"start": "2025-02-01", "end": "2025-01-01"}, headers=t.headers)
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["query", "start"]
    assert (await client.get(t.path("/usage"), params={"start": "yesterday"}, headers=t.headers)).status_code == 422
    assert (await client.get(t.path("/usage"), params={"start": "2020-01-01", "end": "2025-01-01"}, headers=t.headers)).status_code == 422
    empty = (await client.get(t.path("/usage"), params={"start": "2020-01-01", "end": "2020-01-31"}, headers=t.headers)).json()
    assert empty["totals"]["queries"] == 0 and empty["start"] == "2020-01-01"
