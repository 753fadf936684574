"""The cascade's second half in the router: where an escalated query goes next, and how it ends.

Pure: the router's handlers build their events without touching the broker (the bus is constructed
but never connected; the tenant view is a dictionary).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from modelyard_core.bus import Bus, Delivery, TransientError
from modelyard_core.pricing import load_pricing
from modelyard_events import (
    TIER_LIMITS,
    Answer,
    CascadeStep,
    ComplexityLevel,
    Industry,
    ModelClass,
    OutcomeStatus,
    QueryEscalated,
    QueryOutcome,
    QueryRequest,
    QueryRouted,
    RoutingDecision,
    RoutingPolicy,
    TenantSnapshot,
    TenantStatus,
    Tier,
)
from modelyard_router.admission import AdmissionStore
from modelyard_router.service import Router
from modelyard_router.settings import RouterSettings

SLM, LLM, LLM_PLUS = ModelClass.SLM, ModelClass.LLM, ModelClass.LLM_PLUS
PREFIX = "unit."


class DictView:
    """The part of the tenant view the router uses."""

    def __init__(self, *tenants: TenantSnapshot, catches_up: bool = True) -> None:
        self.items = {t.tenant_id: t for t in tenants}
        self.catches_up = catches_up
        self.syncs = 0

    def get(self, key: str) -> TenantSnapshot | None:
        return self.items.get(key)

    async def sync(self, *, timeout_s: float) -> bool:
        self.syncs += 1
        return self.catches_up


def tenant(tier: Tier = Tier.PROFESSIONAL, status: TenantStatus = TenantStatus.ACTIVE,
           policy: RoutingPolicy | None = None) -> TenantSnapshot:
    return TenantSnapshot(tenant_id="t1", version=1, name="T1", tier=tier, industry=Industry.OTHER, status=status,
                          limits=TIER_LIMITS[tier], policy=policy or RoutingPolicy())


def router(*tenants: TenantSnapshot, max_attempts: int = 3, catches_up: bool = True) -> Router:
    settings = RouterSettings(max_attempts=max_attempts, topics={"prefix": PREFIX})
    return Router(settings, Bus(settings, "router"), DictView(*tenants, catches_up=catches_up),
                  AdmissionStore(collection=None, topic="queries.submitted"), load_pricing())  # type: ignore[arg-type]


def step(model_class: ModelClass, confidence: float | None = 0.3, error: str | None = None) -> CascadeStep:
    model = {SLM: "gpt-4o-mini", LLM: "gpt-4o", LLM_PLUS: "gpt-4-turbo"}[model_class]
    return CascadeStep(model_class=model_class, model=model, confidence=None if error else confidence, error=error,
                       input_tokens=0 if error else 10, output_tokens=0 if error else 20,
                       cost_usd=0.0 if error else 0.001)


def answer(s: CascadeStep, text: str) -> Answer:
    assert s.confidence is not None
    return Answer(text=text, model_class=s.model_class, model=s.model, confidence=s.confidence)


def escalated(steps: list[CascadeStep], best: Answer | None, request: QueryRequest | None = None,
              tenant_id: str = "t1") -> QueryEscalated:
    last = steps[-1]
    return QueryEscalated(
        tenant_id=tenant_id, query_id=str(uuid.uuid4()),
        request=request or QueryRequest(text="Why is the VPN slow since this morning?"),
        decision=RoutingDecision(complexity=ComplexityLevel.MODERATE, score=2.0, model_class=last.model_class,
                                 model=last.model, reasons=["moderate"]),
        submitted_at=datetime.now(UTC),
        cascade=steps, cascade_threshold=0.6, best_answer=best, reasons=["low confidence"],
    )


def delivery(event) -> Delivery:
    return Delivery(event, record=None, headers={})  # type: ignore[arg-type]


def escalate(r: Router, e: QueryEscalated):
    out = r._escalate(delivery(e))
    return out.topic, out.event


def test_slm_escalates_to_llm_with_the_chain_and_the_best_answer_carried():
    r = router(tenant())
    s1 = step(SLM, 0.4)
    e = escalated([s1], answer(s1, "slm says"))
    topic, routed = escalate(r, e)
    assert topic == f"{PREFIX}queries.routed.llm"
    assert isinstance(routed, QueryRouted)
    assert routed.decision.model_class is LLM and routed.decision.model == "gpt-4o"
    assert routed.cascade == [s1] and routed.best_answer == e.best_answer
    assert routed.request == e.request and routed.query_id == e.query_id
    assert routed.can_escalate  # llm_plus is still above, and 2 of 3 attempts would be used
    assert any("escalated slm→llm" in why for why in routed.decision.reasons)


def test_the_chain_goes_slm_llm_llm_plus_and_never_beyond():
    r = router(tenant(Tier.ENTERPRISE))
    s1 = step(SLM, 0.2)
    best = answer(s1, "first try")
    _, r2 = escalate(r, escalated([s1], best))
    assert r2.decision.model_class is LLM and r2.can_escalate
    s2 = step(LLM, 0.1)  # worse than the slm answer: the slm answer stays best
    _, r3 = escalate(r, escalated([s1, s2], best))
    assert r3.decision.model_class is LLM_PLUS and r3.decision.model == "gpt-4-turbo"
    assert not r3.can_escalate
    assert r2.event_id != r3.event_id
    s3 = step(LLM_PLUS, 0.5)
    topic, outcome = escalate(r, escalated([s1, s2, s3], answer(s3, "best of three")))
    assert topic == f"{PREFIX}queries.outcomes"
    assert isinstance(outcome, QueryOutcome) and outcome.status is OutcomeStatus.COMPLETED
    assert outcome.answer == "best of three" and outcome.model_class is LLM_PLUS
    assert "llm_plus is the highest model class" in outcome.reason
    assert outcome.cascade == [s1, s2, s3]
    assert outcome.input_tokens == 30 and outcome.cost_usd == pytest.approx(0.003)


def test_at_llm_plus_the_best_answer_wins_even_if_it_came_from_an_earlier_step():
    r = router(tenant())
    s1, s2 = step(SLM, 0.55), step(LLM_PLUS, 0.2)
    best = answer(s1, "the slm's better answer")
    _, outcome = escalate(r, escalated([s1, s2], best))
    assert outcome.status is OutcomeStatus.COMPLETED
    assert (outcome.answer, outcome.model_class, outcome.confidence) == (best.text, SLM, 0.55)


def test_the_tenant_ceiling_stops_the_chain():
    capped = router(tenant(policy=RoutingPolicy(max_class=LLM)))
    s1 = step(SLM)
    _, routed = escalate(capped, escalated([s1], answer(s1, "a")))
    assert routed.decision.model_class is LLM and not routed.can_escalate
    s2 = step(LLM)
    _, outcome = escalate(capped, escalated([s1, s2], answer(s2, "b")))
    assert outcome.status is OutcomeStatus.COMPLETED and "above the tenant's highest allowed class" in outcome.reason
    # The basic tier stops at llm too.
    _, outcome = escalate(router(tenant(Tier.BASIC)), escalated([s1, s2], answer(s2, "b")))
    assert outcome.status is OutcomeStatus.COMPLETED


def test_max_attempts_bounds_the_chain():
    r = router(tenant(), max_attempts=2)
    s1 = step(SLM)
    _, routed = escalate(r, escalated([s1], answer(s1, "a")))
    assert routed.decision.model_class is LLM and not routed.can_escalate  # the 2nd call is the last
    s2 = step(LLM)
    _, outcome = escalate(r, escalated([s1, s2], answer(s2, "b")))
    assert outcome.status is OutcomeStatus.COMPLETED and "2 model calls made" in outcome.reason
    _, only_one = escalate(router(tenant(), max_attempts=1), escalated([s1], answer(s1, "a")))
    assert only_one.status is OutcomeStatus.COMPLETED and only_one.answer == "a"


def test_no_answer_anywhere_fails_with_the_errors():
    r = router(tenant())
    s1, s2 = step(SLM, error="503 from gpt-4o-mini"), step(LLM_PLUS, error="timeout")
    _, outcome = escalate(r, escalated([s1, s2], None))
    assert outcome.status is OutcomeStatus.FAILED and outcome.answer is None
    assert "503 from gpt-4o-mini" in outcome.reason and "timeout" in outcome.reason


def test_a_failed_slm_call_still_escalates_when_a_class_is_left():
    r = router(tenant())
    s1 = step(SLM, error="connection refused")
    _, routed = escalate(r, escalated([s1], None))
    assert isinstance(routed, QueryRouted) and routed.decision.model_class is LLM and routed.best_answer is None


def test_a_deleted_tenant_ends_with_its_best_answer():
    r = router()  # the tenant's snapshot was tombstoned while its query was in flight
    s1 = step(SLM)
    topic, outcome = escalate(r, escalated([s1], answer(s1, "kept")))
    assert topic.endswith("queries.outcomes")
    assert outcome.status is OutcomeStatus.COMPLETED and outcome.answer == "kept"
    assert "tenant no longer exists" in outcome.reason
    _, failed = escalate(r, escalated([step(SLM, error="down")], None))
    assert failed.status is OutcomeStatus.FAILED


def test_a_suspended_tenant_is_not_escalated_further():
    r = router(tenant(status=TenantStatus.SUSPENDED))
    s1 = step(SLM)
    _, outcome = escalate(r, escalated([s1], answer(s1, "kept")))
    assert outcome.status is OutcomeStatus.COMPLETED and "suspended" in outcome.reason


@pytest.mark.parametrize("pin", [{"requested_class": SLM}, {"requested_model": "gpt-4o-mini"}])
def test_a_pinned_query_is_not_escalated(pin):
    r = router(tenant())
    s1 = step(SLM)
    e = escalated([s1], answer(s1, "pinned answer"), request=QueryRequest(text="Why is the VPN slow?", **pin))
    _, outcome = escalate(r, e)
    assert outcome.status is OutcomeStatus.COMPLETED and "pinned" in outcome.reason


async def test_escalations_of_a_tenant_missing_from_the_view_wait_for_the_view_first():
    r = router(catches_up=False)
    s1 = step(SLM)
    with pytest.raises(TransientError):
        await r.on_escalated([delivery(escalated([s1], answer(s1, "a")))])
    assert r.tenants.syncs == 1


# --- what the first routing promises about escalation ------------------------------------------------


def first_route(r: Router, t: TenantSnapshot, text: str, offset: int = 0, **request):
    from types import SimpleNamespace

    from modelyard_events import QuerySubmitted

    q = QuerySubmitted(tenant_id=t.tenant_id, query_id=str(uuid.uuid4()), text=text, **request)
    d = Delivery(q, record=SimpleNamespace(partition=0, offset=offset), headers={})  # type: ignore[arg-type]
    return r._route(d, t).event


SIMPLE = "What is the status of ticket #123?"


def test_a_first_route_may_escalate_only_where_a_later_step_could_go():
    t = tenant()
    assert first_route(router(t), t, SIMPLE).can_escalate
    assert not first_route(router(t, max_attempts=1), t, SIMPLE).can_escalate
    capped = tenant(policy=RoutingPolicy(max_class=SLM))
    assert not first_route(router(capped), capped, SIMPLE).can_escalate
    top = first_route(router(t), t, SIMPLE, requested_class=LLM_PLUS)
    assert top.decision.model_class is LLM_PLUS and not top.can_escalate


@pytest.mark.parametrize("pin", [{"requested_class": SLM}, {"requested_model": "gpt-4o-mini"}])
def test_a_pinned_first_route_does_not_escalate(pin):
    t = tenant()
    routed = first_route(router(t), t, "Analyze the root cause of the outage and design a recovery strategy", **pin)
    assert routed.decision.model_class is SLM and not routed.can_escalate


def test_an_unconfigured_requested_model_is_ignored_and_does_not_pin():
    t = tenant()
    routed = first_route(router(t), t, SIMPLE, requested_model="no-such-model")
    assert routed.decision.model_class is SLM and routed.can_escalate


def test_the_fast_first_routed_id_is_the_derived_id():
    from modelyard_router.service import first_routed_event_id, routed_event_id

    for query_id in ("q", str(uuid.uuid4()), "ünïcode-id", "x" * 128):
        assert first_routed_event_id(query_id) == routed_event_id(query_id, 1)


def test_the_first_route_carries_the_tenant_s_threshold_and_its_self_consistency_to_the_small_model_only():
    from modelyard_events import SelfConsistency

    sc = SelfConsistency(samples=3, temperature=0.9, min_agreement=0.6)
    t = tenant(policy=RoutingPolicy(cascade_threshold=0.5, self_consistency=sc))
    routed = first_route(router(t), t, SIMPLE)
    assert routed.decision.model_class is SLM and routed.self_consistency == sc and routed.cascade_threshold == 0.5
    straight_up = first_route(router(t), t, SIMPLE, requested_class=LLM)
    assert straight_up.self_consistency is None
    off = tenant(policy=RoutingPolicy(self_consistency=SelfConsistency(samples=1)))
    assert first_route(router(off), off, SIMPLE).self_consistency is None
    # an escalation re-routes to a larger class: it answers once
    e = escalated([step(SLM)], None)
    topic, event = escalate(router(t), e)
    assert isinstance(event, QueryRouted) and event.self_consistency is None
