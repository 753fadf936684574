"""The router's online learner, without servers: labels from outcomes, a tenant's correction moving its routing,
exactly-once by offset and by event id, checkpoints and their version guard (in-memory fakes of the
checkpoint store; the real broker and database are in test_learning_system.py)."""

from __future__ import annotations

import json
import uuid
import zlib

import pytest
from modelyard_core.pricing import load_pricing
from modelyard_events import (
    TIER_LIMITS,
    CascadeStep,
    Industry,
    ModelClass,
    OutcomeStatus,
    QueryOutcome,
    QueryRequest,
    RouteContext,
    TenantSnapshot,
    Tier,
)
from modelyard_learn import modelfile
from modelyard_learn.features import Query
from modelyard_router.decision import decide
from modelyard_router.learned import LearnedRouter, builtin_path
from modelyard_router.learner import Learner, labels
from modelyard_router.published import ModelRegistry
from modelyard_router.settings import LearnedRouting

SLM, LLM, LLM_PLUS = ModelClass.SLM, ModelClass.LLM, ModelClass.LLM_PLUS
TEXT = "How do I export last month's usage report to a spreadsheet?"


class MemoryCheckpoints:
    """In-memory ``Checkpoints`` with the version guard of the real one (a unit-test fake)."""

    def __init__(self) -> None:
        self.stored: tuple[int, bytes] | None = None

    async def load(self):
        return self.stored

    async def save(self, body: bytes, version: int, expected: int | None, meta: dict) -> bool:
        if (self.stored[0] if self.stored else None) != expected:
            return False
        self.stored = (version, body)
        return True


def step(model_class: ModelClass, escalated: bool = False, error: str | None = None) -> CascadeStep:
    return CascadeStep(model_class=model_class, model=model_class.value, confidence=None if error else 0.5, error=error,
                       escalated=escalated)


def outcome(tenant: str, *steps: CascadeStep, text: str = TEXT, routed: bool = True) -> QueryOutcome:
    return QueryOutcome(tenant_id=tenant, query_id=str(uuid.uuid4()), status=OutcomeStatus.COMPLETED, cascade=list(steps),
                        route=RouteContext(text=text) if routed else None)


@pytest.mark.parametrize(("steps", "expected"), [
    ((step(SLM),), (True, None, 0.5)),  # accepted: a weaker "small was right"
    ((step(SLM, escalated=True), step(LLM)), (False, True, 1.0)),
    ((step(SLM), step(LLM)), (False, True, 1.0)),  # events of earlier versions: a later step means it escalated
    ((step(SLM, escalated=True), step(LLM, escalated=True), step(LLM_PLUS)), (False, False, 1.0)),
    ((step(SLM, escalated=True),), (False, None, 1.0)),  # escalated, but no higher class was allowed
    ((step(SLM, escalated=True), step(LLM, error="down")), (False, None, 1.0)),
])
def test_labels_read_the_cascade(steps, expected):
    said = labels(outcome("t", *steps), accepted_weight=0.5)
    assert (said.slm_ok, said.llm_ok, said.small_weight) == expected


def test_outcomes_that_say_nothing_about_the_small_model_give_no_label():
    assert labels(outcome("t", step(SLM, error="timeout"), step(LLM)), 0.5) is None
    assert labels(outcome("t", step(LLM)), 0.5) is None
    assert labels(outcome("t", step(SLM), routed=False), 0.5) is None
    assert labels(QueryOutcome(tenant_id="t", query_id="q", status=OutcomeStatus.REJECTED), 0.5) is None


@pytest.fixture
def helpdesk() -> LearnedRouter:
    return LearnedRouter(modelfile.load(builtin_path("helpdesk"))[1], "helpdesk")


def learner(served: LearnedRouter, checkpoints: MemoryCheckpoints | None = None) -> Learner:
    found = Learner(LearnedRouting(learn=True), None, ModelRegistry(served), None, checkpoints or MemoryCheckpoints(),  # type: ignore[arg-type]
                    "queries.outcomes", "queries.shadows")
    assert found._start_from(served)
    return found


def tenant(tenant_id: str) -> TenantSnapshot:
    return TenantSnapshot(tenant_id=tenant_id, version=1, name=tenant_id, tier=Tier.ENTERPRISE, industry=Industry.OTHER,
                          limits=TIER_LIMITS[Tier.ENTERPRISE])


def test_a_tenant_whose_small_answers_keep_escalating_moves_to_the_llm_and_the_reason_says_learning_did_it(helpdesk):
    pricing = load_pricing()
    before = decide(QueryRequest(text=TEXT), tenant("acme"), pricing, learned=helpdesk)
    assert before.model_class is SLM
    learning = learner(helpdesk)
    offset = 0
    # The same questions: acme's small answers always escalate, globex's are accepted. Globex asks twice as often,
    # so the shared evidence is even (an acceptance weighs half an escalation): the tenants' corrections must differ.
    for i in range(60):
        for t, escalates in (("acme", True), ("globex", False), ("globex", False)):
            texts = (TEXT, "Where do I change the billing address on our account?", "How do I add a user to our team?")
            escalated = (step(SLM, escalated=True), step(LLM)) if escalates else (step(SLM),)
            assert learning.learn("queries.outcomes", 0, offset, outcome(t, *escalated, text=texts[i % 3]).model_dump_json().encode())
            offset += 1
    served = LearnedRouter(learning.online.snapshot(routing=helpdesk.doc["routing"]), "default")
    acme = decide(QueryRequest(text=TEXT), tenant("acme"), pricing, learned=served)
    globex = decide(QueryRequest(text=TEXT), tenant("globex"), pricing, learned=served)
    assert acme.model_class is LLM and globex.model_class is SLM
    assert acme.score > before.score
    moved = next(r for r in acme.reasons if r.startswith("learning moved it"))
    assert "learned online from 60 of its outcomes" in moved
    assert "correction -" in next(r for r in globex.reasons if r.startswith("learning moved it"))


async def test_each_outcome_is_learned_once_and_a_checkpoint_restores_where_it_stopped(helpdesk):
    checkpoints = MemoryCheckpoints()
    first = learner(helpdesk, checkpoints)
    event = outcome("acme", step(SLM, escalated=True), step(LLM)).model_dump_json().encode()
    assert first.learn("queries.outcomes", 2, 10, event)
    weights = dict(first.online.model.heads["small_ok"].weights)
    assert not first.learn("queries.outcomes", 2, 10, event)  # redelivered at the same offset
    assert not first.learn("queries.outcomes", 3, 77, event)  # the same event published twice
    assert first.online.model.heads["small_ok"].weights == weights
    assert not first.learn("queries.outcomes", 2, 11, b"not json")  # nothing to learn, but the offset is done
    await first.checkpoint()
    assert first.online.watermarks == {"queries.outcomes/2": 11}

    again = Learner(LearnedRouting(learn=True), None, ModelRegistry(helpdesk), None, checkpoints, "queries.outcomes", "queries.shadows")  # type: ignore[arg-type]
    version, body = await checkpoints.load()
    doc = json.loads(zlib.decompress(body))
    assert doc["online"]["base"]["model_id"] == helpdesk.model_id and version == 1
    from modelyard_learn.online import OnlineLearner

    again.online, again.version, again.base = OnlineLearner.restore(doc), version, doc["online"]["base"]
    assert again.online.watermarks == first.online.watermarks
    assert again.online.model.heads["small_ok"].weights == pytest.approx(weights, abs=1e-6)
    assert not again.learn("queries.outcomes", 2, 10, event)
    assert again.learn("queries.outcomes", 2, 12, outcome("acme", step(SLM)).model_dump_json().encode())

    # Two learners on one checkpoint: the one that writes second with a stale version stops.
    await again.checkpoint()
    await first.checkpoint()
    assert first.stopped_reason is not None and again.stopped_reason is None


def test_a_shadow_comparison_labels_both_heads_the_large_one_weighed_by_the_sampling_share(helpdesk):
    from modelyard_events import ShadowCompared
    from modelyard_router.learner import shadow_labels

    def compared(agreed: bool, share: float) -> ShadowCompared:
        return ShadowCompared(tenant_id="acme", query_id=str(uuid.uuid4()), route=RouteContext(text=TEXT), small_model="s",
                              large_model="l", agreed=agreed, method="similarity", similarity=0.2, share=share)

    said = shadow_labels(compared(False, 0.05), weight_cap=20)
    assert (said.slm_ok, said.llm_ok, said.small_weight, said.large_weight) == (False, True, 1.0, 20.0)
    assert shadow_labels(compared(True, 0.5), weight_cap=20).large_weight == 2.0
    assert shadow_labels(compared(True, 0.01), weight_cap=20).large_weight == 20.0  # capped
    learning = learner(helpdesk)
    before = learning.online.model.estimate(Query(TEXT, tenant="acme"))
    assert learning.learn("queries.shadows", 0, 0, compared(False, 0.05).model_dump_json().encode())
    assert not learning.learn("queries.outcomes", 0, 0, compared(False, 0.05).model_dump_json().encode())  # not an outcome
    after = learning.online.model.estimate(Query(TEXT, tenant="acme"))
    assert after.fail > before.fail and after.large_ok > before.large_ok


def test_shadow_evaluation_samples_by_query_id_within_the_share_and_the_tenant_ceiling():
    from modelyard_events import RoutingPolicy, shadow_sampled
    from modelyard_router.decision import shadow_plan

    pricing = load_pricing()
    sharing = tenant("acme").model_copy(update={"policy": RoutingPolicy(shadow_share=0.2)})
    ids = [str(uuid.uuid4()) for _ in range(2000)]
    picked = [q for q in ids if shadow_sampled(q, 0.2)]
    assert 0.16 < len(picked) / len(ids) < 0.24 and picked == [q for q in ids if shadow_sampled(q, 0.2)]
    request = QueryRequest(text=TEXT)
    slm = decide(request, sharing, pricing)
    plan = shadow_plan(picked[0], request, slm, sharing, pricing)
    assert plan is not None and (plan.model_class, plan.model, plan.share) == (LLM, "gpt-4o", 0.2)
    unpicked = next(q for q in ids if not shadow_sampled(q, 0.2))
    assert shadow_plan(unpicked, request, slm, sharing, pricing) is None
    assert shadow_plan(picked[0], request, slm, tenant("acme"), pricing) is None  # share 0: off
    capped = sharing.model_copy(update={"policy": RoutingPolicy(shadow_share=0.2, max_class=SLM)})
    assert shadow_plan(picked[0], request, decide(request, capped, pricing), capped, pricing) is None
    pinned = QueryRequest(text=TEXT, requested_class=SLM)
    assert shadow_plan(picked[0], pinned, decide(pinned, sharing, pricing), sharing, pricing) is None
