"""``modelyard eval-cascade``: a labelled dataset's questions through the running pipeline, per tenant policy.

For each policy (cost, balanced, quality) it creates a basic-tier tenant through the tenant API (industry other,
the preference set by a policy patch, so the cascade threshold is the one the preference implies), publishes
every question for it to ``queries.submitted`` as an upstream system would, and reads each query's outcome:
router, SLM pool, cascade, LLM pool and metering all run as deployed. The stack's model simulator must replay
the file's recorded answers (``MODELYARD_SIMULATOR_REPLAY_FILE`` and ``..._REPLAY_MODELS``; ``make demo`` starts it
so), so each kept answer is a real recorded answer whose correctness the file labels.

From the outcomes: where the first call went (the small model, or straight to the LLM), whether it escalated,
and which model's answer was kept. Quality and cost then follow the data README's rule, the same arithmetic as
``--offline``; the metered cost comes from metering's own documents for the tenant. The offline evaluation of
the same questions runs alongside, and the table says on how many questions the two agree.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console

from modelyard_core.settings import Settings
from modelyard_events import ModelClass, OutcomeStatus, QueryOutcome, QuerySubmitted, RoutingPreference
from modelyard_inference.answers import default_model

from ..demo import DemoTenant, publish_and_collect, wait_for_metering
from . import PIPELINE_WINDOW
from .data import Example
from .evaluate import cascade, references
from .offline import POLICIES, Decisions, decisions, judge_all, policy_tenant


async def create_policy_tenants(api_url: str, admin_token: str, run: str,
                                policies: Sequence[RoutingPreference]) -> dict[RoutingPreference, DemoTenant]:
    """One basic-tier tenant per policy; the policy patch sets the preference (and with it the threshold)."""
    tenants = {}
    async with httpx.AsyncClient(base_url=api_url, timeout=15, headers={"Authorization": f"Bearer {admin_token}"}) as http:
        for preference in policies:
            resp = await http.post("/v1/tenants", json={
                "organization_name": f"GSM8K {preference.value} ({run})", "admin_email": "eval@gsm8k.example",
                "industry": "other", "subscription_tier": "basic",
            })
            if resp.status_code != 201:
                raise RuntimeError(f"creating the {preference.value} tenant failed: HTTP {resp.status_code} {resp.text}")
            tenant_id = resp.json()["tenant_id"]
            resp = await http.patch(f"/v1/tenants/{tenant_id}", json={"policy": {"preference": preference.value}})
            if resp.status_code != 200:
                raise RuntimeError(f"setting the {preference.value} policy failed: HTTP {resp.status_code} {resp.text}")
            expected = policy_tenant(preference).policy.cascade_threshold
            if resp.json()["policy"]["cascade_threshold"] != expected:
                raise RuntimeError(f"the {preference.value} tenant's threshold is {resp.json()['policy']['cascade_threshold']}, "
                                   f"not {expected}: the tenant service and this tool disagree on the presets")
            tenants[preference] = DemoTenant(tenant_id, f"GSM8K {preference.value}", "other", "basic")
    return tenants


def _recorded(e: Example, o: QueryOutcome) -> bool:
    """Whether the kept answer is the recorded answer of the model that gave it (the simulator replayed it)."""
    expected = e.response if o.model_class is ModelClass.SLM else e.large_response
    return (o.answer or "").strip() == (expected or "").strip()


def policy_result(examples: Sequence[Example], outcomes: Sequence[QueryOutcome | None], offline: Decisions,
                  usage: dict[str, Any]) -> dict[str, Any]:
    """Quality and cost of one policy from its outcomes, beside what the offline evaluation decided."""
    done = [(e, o) for e, o in zip(examples, outcomes, strict=True)
            if o is not None and o.status is OutcomeStatus.COMPLETED and o.cascade]
    rows = [e for e, _ in done]
    direct = [o.cascade[0].model_class is not ModelClass.SLM for _, o in done]
    escalated = [not d and len(o.cascade) > 1 for d, (_, o) in zip(direct, done, strict=True)]
    kept_small = [up and o.model_class is ModelClass.SLM for up, (_, o) in zip(escalated, done, strict=True)]
    result = cascade(rows, escalated, direct, kept_small).as_dict() if rows else {}
    decisions = [(d, up, k) for d, up, k in zip(direct, escalated, kept_small, strict=True)]
    by_row = {e.row: i for i, e in enumerate(examples)}
    expected = offline.per_question()
    same = sum(decisions[j] == expected[by_row[e.row]] for j, e in enumerate(rows))
    llm_only = usage.get("llm_only_cost_usd") or 0.0
    errors = [step.error for _, o in done for step in o.cascade if step.error]
    return {
        **result,
        "answered": len(rows),
        "not_replayed": sum(not _recorded(e, o) for e, o in done),
        "failed_calls": len(errors),
        "first_error": errors[0] if errors else None,
        "agrees_with_offline": same,
        "metered_cost_usd": usage.get("cost_usd"),
        "metered_llm_only_cost_usd": llm_only,
        "metered_cost": round(usage["cost_usd"] / llm_only, 4) if llm_only else None,
        "completions": usage.get("completions"),
        "calls": usage.get("calls"),
        "offline": offline.outcome(examples).as_dict(),
    }


async def run_pipeline_eval(examples: Sequence[Example], *, api_url: str, timeout_s: float, window: int = PIPELINE_WINDOW,
                            policies: Sequence[RoutingPreference] = POLICIES) -> tuple[dict[str, Any], int]:
    console = Console(stderr=True)
    settings = Settings()
    run = datetime.now(UTC).strftime("%H%M%S")
    tenants = await create_policy_tenants(api_url, os.environ.get("MODELYARD_ADMIN_TOKEN", "dev-admin-token"), run, policies)
    console.print(f"eval-cascade: {len(examples)} questions for each of {len(tenants)} tenants "
                  f"({', '.join(p.value for p in tenants)})")
    ids = {(p, e.row): str(uuid.uuid4()) for p in tenants for e in examples}
    stream = [QuerySubmitted(tenant_id=t.tenant_id, query_id=ids[p, e.row], text=e.query,
                             metadata={"row": str(e.row), "policy": p.value}) for p, t in tenants.items() for e in examples]
    verdicts = await asyncio.to_thread(judge_all, examples, default_model())
    outcomes, elapsed = await publish_and_collect(settings, stream, timeout_s, console, window=window)
    usage = await wait_for_metering(settings, list(tenants.values()), outcomes, console)
    rows = {}
    for p, t in tenants.items():
        offline = decisions(examples, verdicts, p)
        rows[p.value] = {"threshold": offline.threshold, **policy_result(
            examples, [outcomes.get(ids[p, e.row]) for e in examples], offline, usage[t.tenant_id])}
    problems = []
    if missing := len(stream) - len(outcomes):
        problems.append(f"{missing} queries without an outcome")
    if failed := sum(1 for o in outcomes.values() if o.status is not OutcomeStatus.COMPLETED):
        problems.append(f"{failed} not completed")
    if not_replayed := sum(r["not_replayed"] for r in rows.values()):
        problems.append(f"{not_replayed} kept answers are not the recorded ones (is the simulator replaying this file?)")
    if failed_calls := sum(r["failed_calls"] for r in rows.values()):
        first = next(r["first_error"] for r in rows.values() if r["first_error"])
        problems.append(f"{failed_calls} model calls failed, so their questions took the fallback path, not the "
                        f"scorer's decision (first: {first})")
    result = {"policies": rows, "references": references(examples), "seconds": round(elapsed, 1),
              "ok": not problems, "problem": "; ".join(problems) or None}
    return result, 0 if not problems else 1
