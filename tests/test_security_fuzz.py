"""Property-based fuzzing of the tenant API and the ingress from their own OpenAPI documents
(schemathesis + Hypothesis), against the running secured deployment.

Each operation gets ``CASES_PER_OPERATION`` generated requests, as a tenant administrator of tenant A
(path tenant ids pinned to A or to another tenant B) and, for the platform routes, as the platform
administrator. Every response must be below 500 and, where its status is documented, match its
schema; no response to A's credentials may carry B's data. The number of cases is printed (and
recorded in docs/benchmarks.md). Bounded: a fixed number of cases, no shrinking, no database.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

pytestmark = pytest.mark.system

CASES_PER_OPERATION = 25
CHECKS = [not_a_server_error, response_schema_conformance]
#: Operations not fuzzed, and why.
SKIPPED = {
    "DELETE /v1/tenants/{tenant_id}": "would delete the fuzzing tenant itself (deletion has its own tests)",
}


def fuzz(base_url: str, token: str, *, pin: dict[str, str], forbidden: list[str], methods: set[str] | None = None) -> dict[str, int]:
    """Run every operation of ``base_url``'s OpenAPI document; cases per operation label."""
    doc = requests.get(f"{base_url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(doc)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    counts: dict[str, int] = {}
    for result in schema.get_all_operations():
        op = result.ok()
        if op.label in SKIPPED or (methods and op.method.upper() not in methods):
            continue
        pinned = {name: value for name, value in pin.items() if f"{{{name}}}" in op.path}
        label = op.label
        counts[label] = 0

        @given(case=op.as_strategy(path_parameters=pinned or None))
        @settings(max_examples=CASES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case):
            counts[label] += 1
            response = case.call_and_validate(base_url=base_url, session=session, checks=CHECKS,
                                              headers={"X-Modelyard-Timeout": "5"})
            leaked = [s for s in forbidden if s in response.text]
            assert not leaked, f"{label} answered with another tenant's data: {leaked}"

        run()  # noqa: B023 - run once, in this iteration
    return counts


async def test_fuzz_the_tenant_api_and_the_ingress_from_their_openapi_documents(secured_deployment):
    d = secured_deployment
    a = await d.tenant("Fuzz Tenant A")
    b = await d.tenant("Fuzz Tenant B")
    async with httpx.AsyncClient(base_url=d.api_url, timeout=10) as http:
        agent = await http.post(f"/v1/tenants/{b['tenant_id']}/agents", headers={"Authorization": f"Bearer {b['api_key']}"},
                                json={"name": "Secret Agent of B", "agent_type": "support_agent",
                                      "system_prompt": "B-only system prompt 7f3a"})
        assert agent.status_code == 201, agent.text
    # What only B has: its name, its admin's address, its key's visible prefix, its agent.
    forbidden = ["Fuzz Tenant B", b["admin_email"], b["api_key"][:16], "Secret Agent of B", "B-only system prompt 7f3a"]
    started = time.monotonic()
    counts = {}
    for pinned_to in (a, b):
        for label, n in (await asyncio.to_thread(fuzz, d.api_url, a["api_key"], pin={"tenant_id": pinned_to["tenant_id"]},
                                                  forbidden=forbidden)).items():
            counts[f"tenant {label}"] = counts.get(f"tenant {label}", 0) + n
    admin_counts = await asyncio.to_thread(fuzz, d.api_url, d.admin_token, pin={"tenant_id": a["tenant_id"]}, forbidden=[],
                                           methods={"GET", "POST"})
    ingress_counts = await asyncio.to_thread(fuzz, d.ingress_url, a["api_key"], pin={}, forbidden=forbidden)
    elapsed = time.monotonic() - started
    total = sum(counts.values()) + sum(admin_counts.values()) + sum(ingress_counts.values())
    summary = {"cases": total, "tenant_api_as_tenant": sum(counts.values()), "tenant_api_as_admin": sum(admin_counts.values()),
               "ingress": sum(ingress_counts.values()), "operations": len(counts) + len(ingress_counts),
               "seconds": round(elapsed, 1)}
    print("\nfuzz run: " + json.dumps(summary))
    assert sum(ingress_counts.values()) >= CASES_PER_OPERATION and sum(counts.values()) >= 10 * CASES_PER_OPERATION
