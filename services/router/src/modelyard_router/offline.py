"""Offline tools on the router's decision code: classify JSON lines, evaluate on labelled data.

Each calls ``decision.decide`` exactly as the service does; nothing here decides on its own.
The CLI wires them: ``modelyard classify`` prints ``classify_lines(sys.stdin, load_pricing())``
line by line; ``modelyard eval-router --data DIR`` prints the dict of ``eval_router`` as one JSON
line. (``modelyard bench classifier``, the decision-speed benchmark, lives with the other
benchmarks in ``apps/modelyard``.)
"""

from __future__ import annotations

import csv
import json
import random
import statistics
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from modelyard_core.pricing import PricingTable, load_pricing
from pydantic import ValidationError
from modelyard_events import (
    TIER_LIMITS,
    ChatMessage,
    Industry,
    ModelClass,
    QueryRequest,
    RoutingPolicy,
    TenantSnapshot,
    Tier,
)
from modelyard_events.queries import TEXT_MAX
from modelyard_learn.metrics import pgr_curve

from .complexity import load_complexity_model
from .decision import decide
from .learned import LearnedRouter

HISTORY_MAX = 100  # QueryRequest keeps at most this many earlier turns
_ROLES = ("system", "user", "assistant")
_SMALL, _LARGE = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"


# --- classify -------------------------------------------------------------------------------------


def _history(value: Any) -> list[ChatMessage]:
    """Earlier turns from a count, a list of strings or a list of {role, content}: be forgiving."""
    if value is None:
        return []
    if isinstance(value, bool):
        raise ValueError("history must be a count or a list")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("history count must be >= 0")
        return [ChatMessage(role=_ROLES[1 + i % 2], content="") for i in range(min(value, HISTORY_MAX))]
    if not isinstance(value, list):
        raise ValueError("history must be a count or a list")
    turns = []
    for i, item in enumerate(value[-HISTORY_MAX:]):
        if isinstance(item, dict):
            role = str(item.get("role", "user"))
            content = item.get("content", "")
        else:
            role, content = _ROLES[1 + i % 2], item
        turns.append(ChatMessage(role=role if role in _ROLES else "user", content=str(content)[:32_000]))
    return turns


def synthetic_tenant(industry: str, tier: str | None = None) -> TenantSnapshot:
    """A tenant that has only its industry preset: its policy states no preference of its own."""
    tier_ = Tier(tier) if tier else Tier.PROFESSIONAL
    return TenantSnapshot(
        tenant_id=f"classify-{industry}",
        version=0,
        name=f"synthetic {industry} tenant",
        tier=tier_,
        industry=Industry(industry),
        limits=TIER_LIMITS[tier_],
        policy=RoutingPolicy(),
    )


def request_from_json(obj: Any) -> tuple[QueryRequest, TenantSnapshot | None]:
    """The request and (synthetic) tenant described by one classify input object."""
    if not isinstance(obj, dict):
        raise ValueError("each line must be a JSON object")
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("'text' must be a non-empty string")
    if len(text) > TEXT_MAX:
        raise ValueError(f"'text' is longer than {TEXT_MAX} characters")
    request = QueryRequest(
        text=text,
        history=_history(obj.get("history")),
        user_role=obj.get("user_role"),
        agent_type=obj.get("agent_type"),
        requested_class=obj.get("requested_class"),
        requested_model=obj.get("requested_model"),
    )
    industry, tier = obj.get("industry"), obj.get("tier")
    tenant = synthetic_tenant(industry or Industry.OTHER.value, tier) if industry or tier else None
    return request, tenant


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else first["msg"]
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def classify_lines(lines: Iterable[str], pricing: PricingTable, learned: LearnedRouter | None = None) -> Iterator[str]:
    """One JSON line out per JSON line in (blank lines skipped); a bad line yields an ``error`` line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            request, tenant = request_from_json(json.loads(line))
            decision = decide(request, tenant, pricing, learned=learned)
        except Exception as exc:  # noqa: BLE001 - one bad line must not stop the stream
            yield json.dumps({"error": f"line {number}: {_describe(exc)}"})
            continue
        out = {
            "complexity": decision.complexity.value,
            "model_class": decision.model_class.value,
            "model": decision.model,
            "score": decision.score,
            "reasons": decision.reasons,
        }
        if learned is not None:
            out["router_model"] = decision.router_model
        yield json.dumps(out)


# --- eval-router (APGR on RouteLLM's MMLU labels) -------------------------------------------------


def read_mmlu(data_dir: Path) -> list[tuple[str, bool, bool]]:
    """(prompt, small model correct, large model correct) for every row of every subject file."""
    rows = []
    files = sorted(Path(data_dir).glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no CSV files in {data_dir}")
    csv.field_size_limit(sys.maxsize)
    for path in files:
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                rows.append((row["prompt"], row[_SMALL] == "True", row[_LARGE] == "True"))
    return rows


def apgr(curve: Sequence[float]) -> float:
    """Mean PGR over strong-call shares 0..1 (trapezoids over every k)."""
    n = len(curve) - 1
    return (sum(curve) - (curve[0] + curve[-1]) / 2) / n


def _curve_summary(curve: Sequence[float]) -> dict:
    n = len(curve) - 1

    def share_for(target: float) -> float | None:
        return next((round(k / n, 4) for k, v in enumerate(curve) if v >= target), None)

    return {
        "pgr_at_strong_share": {f"{p / 10:.1f}": round(curve[round(p / 10 * n)], 4) for p in range(1, 10)},
        "strong_share_for_pgr": {f"{t:.1f}": share_for(t) for t in (0.5, 0.8)},
    }


def eval_router(data_dir: Path, seed: int = 0, random_runs: int = 10) -> dict:
    """APGR of the router's score on RouteLLM's MMLU labels, next to a random and a length-only ranking."""
    rows = read_mmlu(data_dir)
    pricing = load_pricing()
    small = [s for _, s, _ in rows]
    large = [g for _, _, g in rows]
    n = len(rows)

    decisions = [decide(QueryRequest(text=prompt[:TEXT_MAX]), None, pricing) for prompt, _, _ in rows]
    scores = [d.score for d in decisions]
    ours = pgr_curve(scores, small, large)

    randoms = []
    for run in range(random_runs):
        rng = random.Random(seed + run)
        randoms.append(apgr(pgr_curve([rng.random() for _ in range(n)], small, large)))
    length_only = apgr(pgr_curve([len(p) for p, _, _ in rows], small, large))

    # What the default policy (no tenant) actually does on this data: the rows it sends to llm or above.
    strong = [d.model_class is not ModelClass.SLM for d in decisions]
    routed_acc = sum(g if up else s for up, s, g in zip(strong, small, large, strict=True)) / n
    acc_small, acc_large = sum(small) / n, sum(large) / n

    return {
        "data": str(data_dir),
        "rows": n,
        "complexity_model": load_complexity_model().version,
        "small_accuracy": round(acc_small, 4),
        "large_accuracy": round(acc_large, 4),
        "apgr_score": round(apgr(ours), 4),
        "apgr_random_mean": round(statistics.fmean(randoms), 4),
        "apgr_random_stdev": round(statistics.stdev(randoms), 4) if len(randoms) > 1 else 0.0,
        "random_runs": random_runs,
        "seed": seed,
        "apgr_length_only": round(length_only, 4),
        "score_curve": _curve_summary(ours),
        "distinct_scores": len(set(scores)),
        "default_policy": {
            "strong_share": round(sum(strong) / n, 4),
            "accuracy": round(routed_acc, 4),
            "pgr": round((routed_acc - acc_small) / (acc_large - acc_small), 4),
            "levels": dict(Counter(d.complexity.value for d in decisions)),
            "classes": dict(Counter(d.model_class.value for d in decisions)),
        },
    }
