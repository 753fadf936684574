"""From scores to a model class: the learned part of the routing decision.

A query goes up when its expected gain reaches the model file's threshold for the tenant's
preference (``routing.thresholds``: quality < balanced < cost, chosen on tuning data), or when the
keyword analysis calls it an incident (a failure with a business-wide scope must reach the LLM). Up
means ``llm_plus`` when the keyword analysis says critical, else ``llm``. Tenant policy (pins,
floor, ceiling, budgets) is applied after this by the router, unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

from .model import Estimate


def threshold_for(routing: Mapping, preference: str = "balanced") -> float:
    thresholds = routing.get("thresholds") or {}
    if preference in thresholds:
        return float(thresholds[preference])
    if "balanced" in thresholds:
        return float(thresholds["balanced"])
    raise ValueError("the model file has no routing thresholds")


def model_class(estimate: Estimate, threshold: float, heuristic_level: str, incident: bool = False) -> tuple[str, str]:
    """(class, reason). ``heuristic_level``: the keyword analysis's level."""
    if estimate.gain >= threshold or incident:
        why = (
            f"learned: expected gain {estimate.gain:+.2f} >= {threshold:.2f}"
            if estimate.gain >= threshold
            else "incident: must reach the LLM"
        )
        return ("llm_plus" if heuristic_level == "critical" else "llm"), why
    return "slm", f"learned: expected gain {estimate.gain:+.2f} < {threshold:.2f}, P(small fails) {estimate.fail:.2f}"
