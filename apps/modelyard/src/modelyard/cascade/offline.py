"""The cascade on files, with exactly the services' decision code: ``cascade-score`` and ``eval-cascade --offline``.

``score_lines`` runs ``modelyard_inference.answers.judge`` (the worker's own call) on JSON lines.
``evaluate`` replays what the running pipeline does with a labelled question, per tenant policy:

1. the router's ``decide`` for a basic-tier tenant with that preference: a question routed to the LLM pays
   only the large call and gets the large answer;
2. otherwise the small answer is judged; kept when it passes the policy's threshold;
3. an escalated question pays both calls and keeps the large answer, unless (as the worker decides at the top
   of a chain: a basic-tier tenant may not go above the LLM) the large answer failed a hard verifier and the
   small one is surer.

Cost follows the data README's rule (``evaluate.cascade``); quality is accuracy over large-only accuracy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from modelyard_core.pricing import load_pricing
from modelyard_events import (
    CASCADE_THRESHOLDS,
    TIER_LIMITS,
    Industry,
    ModelClass,
    QueryRequest,
    RoutingPolicy,
    RoutingPreference,
    TenantSnapshot,
    Tier,
)
from modelyard_inference.answers import Judgement, Model, judge
from modelyard_router.decision import decide

from .data import Example, parse_record
from .evaluate import Outcome, auroc, cascade, precision_recall, references

POLICIES = tuple(RoutingPreference)  # cost, balanced, quality


# --- cascade-score ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    text: str
    finish_reason: str | None = None
    logprobs: Sequence[float] | None = None


def _samples(record: dict[str, Any], where: str) -> tuple[str, list[Sample], dict[str, Any] | None]:
    """Query, completions and response_format of one input line (``response`` or ``samples``)."""
    raw = record.get("samples") if isinstance(record, dict) else None
    if raw is None:
        fields = parse_record(record, where, need_label=False)
        return fields["query"], [Sample(fields["response"], fields["finish_reason"], fields["logprobs"])], \
            fields["response_format"]
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{where}: 'samples' must be a non-empty list of {{\"response\", ...}} objects")
    samples, response_format = [], None
    for i, sample in enumerate(raw):
        if not isinstance(sample, dict):
            raise ValueError(f"{where}: samples[{i}] must be an object")
        fields = parse_record({"query": record.get("query"), "response_format": record.get("response_format"),
                               **sample}, f"{where}, samples[{i}]", need_label=False)
        samples.append(Sample(fields["response"], fields["finish_reason"], fields["logprobs"]))
        response_format = fields["response_format"]
    return record["query"], samples, response_format


def score_lines(lines: Iterable[str], *, threshold: float, model: Model) -> Iterator[str]:
    """``modelyard cascade-score``: one JSON result per JSON input line, from the worker's ``judge``.

    In: ``{"query", "response", "logprobs"?, "finish_reason"?, "response_format"?, "id"?}``, or ``"samples":
    [{"response", "logprobs"?, "finish_reason"?}, ...]`` (a self-consistency call's k completions, with
    ``"min_agreement"``?) instead of ``response``. Out: ``{"confidence", "escalate", "reasons", "p_wrong",
    "hard"}`` (plus ``"id"``; with samples ``"chosen"`` and ``"agreement"``), or ``{"line", "error"}``.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be within [0, 1], not {threshold}")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{where}: not JSON ({exc})") from None
            query, samples, response_format = _samples(record, where)
            min_agreement = record.get("min_agreement", 0.5)
            if isinstance(min_agreement, bool) or not isinstance(min_agreement, (int, float)) or not 0 <= min_agreement < 1:
                raise ValueError(f"{where}: 'min_agreement' must be a number in [0, 1)")
            result = judge(query, samples, model=model, response_format=response_format, min_agreement=min_agreement)
        except ValueError as exc:
            yield json.dumps({"line": number, "error": str(exc)})
            continue
        yield json.dumps(_output(record, result, threshold, several="samples" in record))


def _output(record: dict[str, Any], result: Judgement, threshold: float, *, several: bool) -> dict[str, Any]:
    s = result.score
    out: dict[str, Any] = {"confidence": s.confidence, "escalate": s.escalate(threshold), "reasons": s.reasons,
                           "p_wrong": s.p_wrong, "hard": s.hard}
    if several:
        out |= {"chosen": result.chosen, "agreement": result.agreement}
    return {"id": record["id"], **out} if "id" in record else out


# --- eval-cascade --offline ------------------------------------------------------------------------


def policy_tenant(preference: RoutingPreference) -> TenantSnapshot:
    """The tenant ``eval-cascade`` runs a policy as: basic tier (the LLM is the top class), industry other,
    the preference and the cascade threshold it implies."""
    return TenantSnapshot(
        tenant_id=f"eval-{preference.value}", version=0, name=f"eval {preference.value}", tier=Tier.BASIC,
        industry=Industry.OTHER, limits=TIER_LIMITS[Tier.BASIC],
        policy=RoutingPolicy(preference=preference, cascade_threshold=CASCADE_THRESHOLDS[preference]),
    )


@dataclass(frozen=True, slots=True)
class Verdicts:
    """Every question's judgement, once per dataset (thresholds only compare them)."""

    small: list[Judgement]
    large: list[Judgement]


def judge_all(examples: Sequence[Example], model: Model) -> Verdicts:
    def one(query: str, text: str, finish: str | None = None, logprobs: Sequence[float] | None = None) -> Judgement:
        return judge(query, [Sample(text, finish, logprobs)], model=model)

    small = [one(e.query, e.response, e.finish_reason, e.logprobs) for e in examples]
    large = [one(e.query, e.large_response or "") for e in examples]
    return Verdicts(small, large)


def routed_to_large(examples: Sequence[Example], tenant: TenantSnapshot) -> list[bool]:
    """Which questions the router sends straight to the large model for this tenant."""
    pricing = load_pricing()
    return [decide(QueryRequest(text=e.query), tenant, pricing).model_class is not ModelClass.SLM for e in examples]


@dataclass(frozen=True, slots=True)
class Decisions:
    """What the pipeline does with each question for one tenant: straight to the LLM, escalated, and (when
    escalated) whether the small answer was kept at the top of the chain."""

    threshold: float
    direct: list[bool]
    escalate: list[bool]
    kept_small: list[bool]

    def per_question(self) -> list[tuple[bool, bool, bool]]:
        return list(zip(self.direct, self.escalate, self.kept_small, strict=True))

    def outcome(self, examples: Sequence[Example]) -> Outcome:
        return cascade(examples, self.escalate, self.direct, self.kept_small)


def decisions(examples: Sequence[Example], verdicts: Verdicts, preference: RoutingPreference) -> Decisions:
    tenant = policy_tenant(preference)
    threshold = tenant.policy.cascade_threshold
    direct = routed_to_large(examples, tenant)
    escalate = [not d and v.score.escalate(threshold) for d, v in zip(direct, verdicts.small, strict=True)]
    # at the top of the chain the worker keeps the large answer unless it failed a verifier and the small one is surer
    kept_small = [
        up and verdicts.large[i].score.hard and verdicts.small[i].score.confidence > verdicts.large[i].score.confidence
        for i, up in enumerate(escalate)
    ]
    return Decisions(threshold, direct, escalate, kept_small)


def evaluate(examples: Sequence[Example], model: Model,
             policies: Sequence[RoutingPreference] = POLICIES) -> dict[str, Any]:
    """Quality and cost per tenant policy, the references, and how well confidence ranks wrong answers."""
    verdicts = judge_all(examples, model)
    wrong = [not e.correct for e in examples]
    rows = {}
    for preference in policies:
        decided = decisions(examples, verdicts, preference)
        rows[preference.value] = {"threshold": decided.threshold, **decided.outcome(examples).as_dict()}
    return {
        "questions": len(examples),
        "policies": rows,
        "references": references(examples),
        "auroc_wrong": round(auroc([-v.score.confidence for v in verdicts.small], wrong), 4),
        "hard_findings": precision_recall([v.score.hard for v in verdicts.small], wrong),
    }
