"""The usage documents metering writes: their collections and their integer counters.

Metering folds every model call into one document per (tenant, day, model), per (tenant, day), per
(tenant, month) and per (tenant, month, agent). Money and latency are stored as integers (nano-dollars,
microseconds), so totals do not depend on how a stream was cut into flushes; ``to_counters`` turns
them back into the contract's ``UsageCounters``.
"""

from __future__ import annotations

from typing import Any

from modelyard_events import UsageCounters

DAILY = "usage_daily"  # tenant, day, model
TENANT_DAILY = "usage_tenant_daily"  # tenant, day (all models): emits metering.usage and daily alerts
MONTHLY = "usage_monthly"  # tenant, month (all models): emits monthly budget alerts
AGENTS = "usage_agents"  # tenant, month, agent

#: Every collection of usage documents. Each document carries ``tenant_id``: a tenant's usage is
#: exported, imported and deleted with the tenant. (Metering's de-duplication records are not usage.)
COLLECTIONS = (DAILY, TENANT_DAILY, MONTHLY, AGENTS)

NANO_PER_USD = 1_000_000_000
MICROS_PER_MS = 1_000

#: The integer counters a usage document stores (besides the histogram, watermarks and bookkeeping).
#: ``extra_completions``: completions beyond one per call (self-consistency samples, OpenAI n), so a document
#: written before calls could return several is exact as it is (completions = calls + extra_completions).
DOC_COUNTERS = (
    "calls", "queries", "errors", "cascade_steps", "slm_calls", "llm_calls", "input_tokens", "output_tokens",
    "cost_nusd", "llm_cost_nusd", "latency_us_sum", "latency_count", "extra_completions",
    "shadow_calls", "shadow_compared", "shadow_agreed", "shadow_input_tokens", "shadow_output_tokens", "shadow_cost_nusd",
    # Calls to tenants' own endpoints (bring your own model): billed by their provider, not the platform.
    "tenant_paid_calls", "tenant_paid_tokens",
)


def nano_usd(usd: float) -> int:
    return round(usd * NANO_PER_USD)


def micros(ms: float) -> int:
    return round(ms * MICROS_PER_MS)


def to_counters(stored: dict[str, Any] | None) -> UsageCounters:
    """The public counters (``UsageCounters``) of stored integer counters (a document or a fold)."""
    c = stored or {}
    return UsageCounters(
        calls=c.get("calls", 0),
        queries=c.get("queries", 0),
        errors=c.get("errors", 0),
        cascade_steps=c.get("cascade_steps", 0),
        slm_calls=c.get("slm_calls", 0),
        llm_calls=c.get("llm_calls", 0),
        input_tokens=c.get("input_tokens", 0),
        output_tokens=c.get("output_tokens", 0),
        cost_usd=c.get("cost_nusd", 0) / NANO_PER_USD,
        llm_cost_usd=c.get("llm_cost_nusd", 0) / NANO_PER_USD,
        latency_ms_sum=c.get("latency_us_sum", 0) / MICROS_PER_MS,
        latency_count=c.get("latency_count", 0),
        completions=c.get("calls", 0) + c.get("extra_completions", 0),
        shadow_calls=c.get("shadow_calls", 0),
        shadow_compared=c.get("shadow_compared", 0),
        shadow_agreed=c.get("shadow_agreed", 0),
        shadow_input_tokens=c.get("shadow_input_tokens", 0),
        shadow_output_tokens=c.get("shadow_output_tokens", 0),
        shadow_cost_usd=c.get("shadow_cost_nusd", 0) / NANO_PER_USD,
    )


def counters_of(doc: dict | None) -> UsageCounters:
    """The counters of a usage document as stored in MongoDB."""
    return to_counters(doc)


def add_counters(into: dict[str, int], stored: dict[str, Any]) -> None:
    """Add a document's (or fold's) integer counters into ``into``."""
    for k in DOC_COUNTERS:
        into[k] = into.get(k, 0) + stored.get(k, 0)
