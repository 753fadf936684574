"""What the dashboard asks the tenant API beyond usage: who a token belongs to (``/v1/auth/whoami``),
and every limit of the tier in ``/quotas``, today's metered API calls included."""

from __future__ import annotations

from datetime import UTC, datetime

from modelyard_events import TIER_LIMITS, Tier, UsageRecorded


async def test_whoami_names_the_role_and_tenant_of_every_kind_of_token(new_tenant, client, admin):
    t = await new_tenant()
    assert (await client.get("/v1/auth/whoami", headers=admin)).json() == {"role": "platform_admin", "tenant_id": None, "via": "admin_token"}
    assert (await client.get("/v1/auth/whoami", headers=t.headers)).json() == {"role": "tenant_admin", "tenant_id": t.tenant_id, "via": "api_key"}
    token = (await client.post("/v1/auth/token", headers=t.headers)).json()["access_token"]
    as_jwt = await client.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"})
    assert as_jwt.json() == {"role": "tenant_admin", "tenant_id": t.tenant_id, "via": "jwt"}
    member = (await client.post(t.path("/api-keys"), json={"role": "member"}, headers=t.headers)).json()["api_key"]
    assert (await client.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {member}"})).json()["role"] == "member"
    assert (await client.get("/v1/auth/whoami")).status_code == 401
    assert (await client.get("/v1/auth/whoami", headers={"Authorization": "Bearer my_live_not-a-key"})).status_code == 401


async def test_quotas_list_every_tier_limit_with_todays_metered_api_calls(new_tenant, client, record_usage):
    t = await new_tenant(tier="basic")
    other = await new_tenant(tier="basic")
    await client.post(t.path("/agents"), json={"name": "a", "agent_type": "bot"}, headers=t.headers)
    def call(query_id: str, model_class: str = "slm", cascade_step: bool = False) -> UsageRecorded:
        return UsageRecorded(tenant_id=t.tenant_id, query_id=query_id, model="gpt-4o-mini" if model_class == "slm" else "gpt-4o",
                             model_class=model_class, input_tokens=1, output_tokens=1, cost_usd=0.0001, llm_cost_usd=0.001,
                             latency_ms=5.0, cascade_step=cascade_step)

    # A cascade step is a second model call of the same query, not another API call.
    calls = [call("q0"), call("q1"), call("q2"), call("q0", "llm", cascade_step=True)]
    await record_usage([*calls, UsageRecorded(tenant_id=other.tenant_id, query_id="o1", model="gpt-4o", model_class="llm",
                                              input_tokens=1, output_tokens=1, cost_usd=0.01, llm_cost_usd=0.01, latency_ms=5.0)])

    body = (await client.get(t.path("/quotas"), headers=t.headers)).json()
    lines = {q["limit"]: q for q in body["quotas"]}
    assert set(lines) == set(type(TIER_LIMITS[Tier.BASIC]).model_fields)
    today = datetime.now(UTC).date().isoformat()
    assert lines["api_calls_per_day"] == {"limit": "api_calls_per_day", "current": 3, "allowed": 1_000, "unit": "count", "period": today}
    assert lines["agents"] == {"limit": "agents", "current": 1, "allowed": 10, "unit": "count", "period": None}
    assert lines["tickets_per_month"]["period"] == body["period"] == today[:7]
    assert (await client.get(other.path("/quotas"), headers=other.headers)).json()["quotas"][-1]["current"] == 1
    assert (await client.get(other.path("/quotas"), headers=t.headers)).status_code == 404
