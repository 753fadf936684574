"""The router on the real broker and FerretDB/MongoDB: exact quotas under concurrency and restarts,
escalations, tenant status changes.

A slim stack: only the `modelyard router` process. Tenants are published as snapshots straight to
the compacted snapshots topic (key = tenant id), as the tenant service would.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from signal import SIGCONT, SIGSTOP

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
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
    QuerySubmitted,
    RejectCode,
    RoutingDecision,
    TenantSnapshot,
    TenantStatus,
    Tier,
)
from modelyard_router.admission import AdmissionConflict, AdmissionStore
from modelyard_router.service import routed_event_id
from modelyard_router.settings import RouterSettings
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from modelyard_harness import Stack, TopicReader, isolated_stack, produce_raw, publish_queries, unique_prefix


pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def router_stack(kafka: str, mongo_url: str) -> Iterator[Stack]:
    prefix = unique_prefix("router")
    stack = isolated_stack(kafka, mongo_url, prefix)
    # These tests are about daily quotas: thousands of queries at one instant, above any rate limit
    # (rates have their own tests, tests/test_rate_limits_system.py).
    stack.add("router", ["router"], "/readyz", MODELYARD_RATE_LIMITS__ENABLED="false")
    stack.start("router")
    try:
        yield stack
    finally:
        stack.stop()



def snapshot(*, limit: int, tier: Tier = Tier.BASIC, version: int = 1,
             status: TenantStatus = TenantStatus.ACTIVE, tenant_id: str | None = None) -> TenantSnapshot:
    tenant_id = tenant_id or f"tenant-{uuid.uuid4().hex[:10]}"
    return TenantSnapshot(tenant_id=tenant_id, version=version, name=tenant_id, tier=tier, industry=Industry.OTHER,
                          status=status, limits=TIER_LIMITS[tier].model_copy(update={"api_calls_per_day": limit}))


async def put_tenant(stack: Stack, t: TenantSnapshot) -> None:
    await produce_raw(stack.kafka, stack.topic("tenants.snapshots"), [(t.tenant_id.encode(), t.model_dump_json().encode())])


def queries(tenant_id: str, n: int, text: str = "What is the status of ticket #123?") -> list[QuerySubmitted]:
    # One submission time for all: a test that straddles midnight UTC still counts against one day.
    now = datetime.now(UTC)
    return [QuerySubmitted(tenant_id=tenant_id, query_id=str(uuid.uuid4()), text=text, time=now) for _ in range(n)]


@dataclass
class Decided:
    """Every decision the router published for a set of queries: routed events and outcomes."""

    routed: dict[str, list[QueryRouted]]
    outcomes: dict[str, list[QueryOutcome]]

    def admitted(self) -> set[str]:
        return set(self.routed)

    def rejected(self, code: RejectCode | None = None) -> set[str]:
        return {q for q, os in self.outcomes.items()
                if any(o.status is OutcomeStatus.REJECTED and (code is None or o.reject_code is code) for o in os)}


class Watch:
    """Reads the router's output topics (both routed pools and the outcomes) from their beginning."""

    def __init__(self, stack: Stack) -> None:
        self.readers = [TopicReader(stack.kafka, stack.topic(t))
                        for t in ("queries.routed.slm", "queries.routed.llm", "queries.outcomes")]

    async def __aenter__(self) -> Watch:
        for r in self.readers:
            await r.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for r in self.readers:
            await r.__aexit__(*exc)

    def decided(self, query_ids: set[str]) -> Decided:
        routed: dict[str, list[QueryRouted]] = defaultdict(list)
        outcomes: dict[str, list[QueryOutcome]] = defaultdict(list)
        for reader in self.readers[:2]:
            for rec in list(reader.records):
                e = QueryRouted.model_validate_json(rec.value)
                if e.query_id in query_ids:
                    routed[e.query_id].append(e)
        for rec in list(self.readers[2].records):
            o = QueryOutcome.model_validate_json(rec.value)
            if o.query_id in query_ids:
                outcomes[o.query_id].append(o)
        return Decided(dict(routed), dict(outcomes))

    async def until(self, predicate, timeout_s: float, what: str):
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
            await asyncio.sleep(0.05)

    async def all_decided(self, qs: list[QuerySubmitted], timeout_s: float = 60) -> Decided:
        ids = {q.query_id for q in qs}

        def done() -> Decided | None:
            d = self.decided(ids)
            return d if len(d.routed.keys() | d.outcomes.keys()) == len(ids) else None

        return await self.until(done, timeout_s, f"a decision for each of {len(ids)} queries")


def assert_one_decision_each(d: Decided, qs: list[QuerySubmitted]) -> None:
    """Each query decided once; a redelivered duplicate is the same event (same id), never a different one."""
    for q in qs:
        routed, outcomes = d.routed.get(q.query_id, []), d.outcomes.get(q.query_id, [])
        assert bool(routed) != bool(outcomes), f"{q.query_id}: routed {len(routed)}x and {len(outcomes)} outcomes"
        events = routed or outcomes
        assert len({e.event_id for e in events}) == 1, f"{q.query_id}: different decisions {events}"
        assert len({e.model_dump_json(exclude={"time"}) for e in events}) == 1, f"{q.query_id}: {events}"


def admission_collection(stack: Stack, mongo: AsyncMongoClient) -> AsyncCollection:
    return mongo[f"{stack.database}_router"][RouterSettings.model_fields["admission_collection"].default]


def admission_store(stack: Stack, mongo: AsyncMongoClient, **options) -> AdmissionStore:
    """One router process's admission store on the stack's database."""
    return AdmissionStore(admission_collection(stack, mongo), stack.topic("queries.submitted"), **options)


@pytest.fixture
async def mongo(router_stack: Stack) -> AsyncIterator[AsyncMongoClient]:
    client = AsyncMongoClient(router_stack.mongo_url)
    try:
        yield client
    finally:
        await client.close()


async def counted(stack: Stack, tenant_id: str, day: str) -> int:
    mongo = AsyncMongoClient(stack.mongo_url)
    try:
        return await admission_store(stack, mongo).used_today(tenant_id, day)
    finally:
        await mongo.close()


# --- admission ---------------------------------------------------------------------------------------


async def test_fifty_concurrent_publishers_against_a_quota_of_100_admit_exactly_100(router_stack):
    t = snapshot(limit=100)
    await put_tenant(router_stack, t)
    qs = queries(t.tenant_id, 200)
    async with Watch(router_stack) as watch:
        await asyncio.gather(*(publish_queries(router_stack.kafka, router_stack.topic("queries.submitted"), qs[i::50])
                               for i in range(50)))
        d = await watch.all_decided(qs)
    assert_one_decision_each(d, qs)
    assert len(d.admitted()) == 100
    assert d.rejected(RejectCode.QUOTA) == {q.query_id for q in qs} - d.admitted()
    reason = next(iter(d.outcomes.values()))[0].reason
    assert "daily API call limit of 100 (basic tier)" in reason and "the professional tier allows 10,000" in reason
    assert await counted(router_stack, t.tenant_id, qs[0].time.date().isoformat()) == 100


async def test_unknown_suspended_and_just_created_tenants(router_stack):
    suspended = snapshot(limit=1_000, status=TenantStatus.SUSPENDED)
    await put_tenant(router_stack, suspended)
    fresh = snapshot(limit=1_000)
    unknown = queries("no-such-tenant", 1)
    of_suspended = queries(suspended.tenant_id, 2)
    of_fresh = queries(fresh.tenant_id, 1)
    async with Watch(router_stack) as watch:
        # The snapshot goes out immediately before the query: the router must catch up, not say "unknown".
        await put_tenant(router_stack, fresh)
        await publish_queries(router_stack.kafka, router_stack.topic("queries.submitted"), unknown + of_suspended + of_fresh)
        d = await watch.all_decided(unknown + of_suspended + of_fresh)
    assert d.rejected(RejectCode.UNKNOWN_TENANT) == {unknown[0].query_id}
    assert d.rejected(RejectCode.SUSPENDED) == {q.query_id for q in of_suspended}
    assert "suspended" in d.outcomes[of_suspended[0].query_id][0].reason
    assert d.admitted() == {of_fresh[0].query_id}
    assert await counted(router_stack, suspended.tenant_id, of_suspended[0].time.date().isoformat()) == 0


async def test_a_tier_upgrade_mid_day_resumes_admissions(router_stack):
    basic = snapshot(limit=3)
    await put_tenant(router_stack, basic)
    first, second = queries(basic.tenant_id, 5), queries(basic.tenant_id, 4)
    async with Watch(router_stack) as watch:
        await publish_queries(router_stack.kafka, router_stack.topic("queries.submitted"), first)
        d1 = await watch.all_decided(first)
        upgraded = snapshot(limit=6, tier=Tier.PROFESSIONAL, version=2, tenant_id=basic.tenant_id)
        await put_tenant(router_stack, upgraded)
        await publish_queries(router_stack.kafka, router_stack.topic("queries.submitted"), second)
        d2 = await watch.all_decided(second)
    assert [q.query_id in d1.admitted() for q in first] == [True, True, True, False, False]
    assert [q.query_id in d2.admitted() for q in second] == [True, True, True, False]
    refusal = d2.outcomes[second[-1].query_id][0]
    assert "limit of 6 (professional tier)" in refusal.reason and "enterprise" in refusal.reason


async def test_a_stale_writer_cannot_overwrite_the_count(router_stack, mongo):
    # What a router that lost its partition in a rebalance (a zombie) would do: keep deciding and
    # write after the new owner took the partition over. Each store is one router process.
    old, new = admission_store(router_stack, mongo), admission_store(router_stack, mongo)
    partition, day, tenant = 7, "2025-03-01", "zombie-check"
    wanted = {(partition, day): {tenant}}

    async def admit(store: AdmissionStore, *offsets: int):
        state = (await store.load(wanted))[partition, day]
        for o in offsets:
            state.admit(tenant, o, 100)
        return state

    await old.save([await admit(old, 10)])
    # The partition moves: the new owner continues the old owner's state and fences its document.
    taken = await admit(new, 10, 11)
    assert taken.count(tenant) == 2 and taken.recorded(tenant, 10).admitted
    await new.save([taken])
    stale = await admit(old, 11, 12)  # the old owner, still running, decides from its cached state
    with pytest.raises(AdmissionConflict):
        await old.save([stale])  # ... and cannot write it: nothing it decided gets published
    assert await new.used_today(tenant, day) == 2
    # Reading again, the old owner must take the partition back to use it: it continues the new
    # owner's state (offset 11 replays), and the new owner is fenced in turn.
    again = await admit(old, 11, 12)
    assert again.count(tenant) == 3 and again.recorded(tenant, 11).admitted
    await old.save([again])
    with pytest.raises(AdmissionConflict):
        await new.save([await admit(new, 12)])
    assert await new.used_today(tenant, day) == 3


async def test_a_taker_that_died_before_writing_is_fenced_when_the_partition_moves_on(router_stack, mongo):
    # Router B fenced A's document and died (or stalled) before writing its own; router C takes over
    # from A's state and must fence B too, so that a late write of B cannot publish anything.
    a, b, c = (admission_store(router_stack, mongo) for _ in range(3))
    partition, day, tenant = 5, "2025-03-02", "taker-check"
    wanted = {(partition, day): {tenant}}
    state_a = (await a.load(wanted))[partition, day]
    state_a.admit(tenant, 0, 10)
    await a.save([state_a])
    state_b = (await b.load(wanted))[partition, day]  # fences A; B's own write comes later
    state_b.admit(tenant, 1, 10)
    state_c = (await c.load(wanted))[partition, day]
    assert state_c.count(tenant) == 1 and state_c.epoch == 2
    state_c.admit(tenant, 1, 10)
    await c.save([state_c])
    with pytest.raises(AdmissionConflict):
        await b.save([state_b])
    assert await c.used_today(tenant, day) == 2


async def test_each_batch_appends_only_its_changes_and_snapshots_bound_the_log(router_stack, mongo):
    collection = admission_collection(router_stack, mongo)
    store = admission_store(router_stack, mongo, snapshot_every=4)
    partition, day = 2, "2025-03-03"
    tenants = [f"log-check-{i}" for i in range(100)]
    state = (await store.load({(partition, day): tenants}))[partition, day]
    for offset, t in enumerate(tenants):
        state.admit(t, offset, 3)
    await store.save([state])
    for offset in range(100, 110):  # ten batches of one query of one tenant
        state = (await store.load({(partition, day): [tenants[0]]}))[partition, day]
        state.admit(tenants[0], offset, 3)
        await store.save([state])
    await store.close()  # the deletes after a snapshot run off the write path
    entries = [e async for e in collection.find({"doc": store.key(day)})]
    seqs = sorted(e["seq"] for e in entries)
    # 11 appends, snapshots at 5 and 10: the entries before the last snapshot are gone.
    assert seqs == [10, 11]
    last = max(entries, key=lambda e: e["seq"])
    assert [t["t"] for t in last["partitions"][0]["tenants"]] == [tenants[0]]  # one tenant, not a hundred
    # Another router taking the partition over reads the same counts from the snapshot and what follows.
    taker = admission_store(router_stack, mongo)
    taken = (await taker.load({(partition, day): tenants}))[partition, day]
    assert taken.count(tenants[0]) == 3 and taken.count(tenants[1]) == 1 and taken.position == 109
    assert not taken.admit(tenants[0], 109, 3).admitted  # a replay of a refusal stays a refusal
    assert await taker.used_today(tenants[99], day) == 1


# --- escalations --------------------------------------------------------------------------------------


def escalation(tenant_id: str, classes: list[ModelClass], best: Answer | None) -> QueryEscalated:
    model = {ModelClass.SLM: "gpt-4o-mini", ModelClass.LLM: "gpt-4o", ModelClass.LLM_PLUS: "gpt-4-turbo"}
    steps = [CascadeStep(model_class=c, model=model[c], confidence=0.3, input_tokens=5, output_tokens=7, cost_usd=0.001)
             for c in classes]
    last = classes[-1]
    return QueryEscalated(
        tenant_id=tenant_id, query_id=str(uuid.uuid4()), request=QueryRequest(text="Why does the export time out?"),
        decision=RoutingDecision(complexity=ComplexityLevel.MODERATE, score=2.5, model_class=last, model=model[last]),
        submitted_at=datetime.now(UTC), cascade=steps, cascade_threshold=0.6, best_answer=best, reasons=["low confidence"],
    )


async def publish_escalations(stack: Stack, es: list[QueryEscalated]) -> None:
    await produce_raw(stack.kafka, stack.topic("queries.escalations"),
                      [(e.tenant_id.encode(), e.model_dump_json().encode()) for e in es])


async def test_escalations_go_one_class_up_and_end_with_the_best_answer(router_stack):
    t = snapshot(limit=1_000, tier=Tier.PROFESSIONAL)
    gone = snapshot(limit=1_000, tier=Tier.PROFESSIONAL)
    await put_tenant(router_stack, t)
    await put_tenant(router_stack, gone)
    slm_answer = Answer(text="try restarting the export", model_class=ModelClass.SLM, model="gpt-4o-mini", confidence=0.3)
    up = escalation(t.tenant_id, [ModelClass.SLM], slm_answer)
    top = escalation(t.tenant_id, [ModelClass.SLM, ModelClass.LLM_PLUS], slm_answer)
    nothing = escalation(t.tenant_id, [ModelClass.SLM, ModelClass.LLM, ModelClass.LLM_PLUS], None)
    orphan = escalation(gone.tenant_id, [ModelClass.SLM], slm_answer)
    async with Watch(router_stack) as watch:
        # The tenant is deleted (tombstone) while its query is in flight.
        await produce_raw(router_stack.kafka, router_stack.topic("tenants.snapshots"), [(gone.tenant_id.encode(), None)])
        await publish_escalations(router_stack, [up, top, nothing, orphan])
        ids = {e.query_id for e in (up, top, nothing, orphan)}
        d = await watch.until(lambda: (x := watch.decided(ids)) and len(x.routed.keys() | x.outcomes.keys()) == 4 and x,
                              60, "four escalations handled")
        llm_topic = [r.value for r in watch.readers[1].records]
    assert set(d.routed) == {up.query_id}
    routed = d.routed[up.query_id][0]
    assert routed.model_dump_json().encode() in llm_topic
    assert routed.decision.model_class is ModelClass.LLM and routed.cascade == up.cascade
    assert routed.best_answer == slm_answer and routed.can_escalate
    assert routed.event_id == routed_event_id(up.query_id, 2)
    done = d.outcomes[top.query_id][0]
    assert done.status is OutcomeStatus.COMPLETED and done.answer == slm_answer.text
    assert done.model_class is ModelClass.SLM and done.cascade == top.cascade and "highest" in done.reason
    failed = d.outcomes[nothing.query_id][0]
    assert failed.status is OutcomeStatus.FAILED
    kept = d.outcomes[orphan.query_id][0]
    assert kept.status is OutcomeStatus.COMPLETED and kept.answer == slm_answer.text
    assert "tenant no longer exists" in kept.reason


# --- restarts (last: they stop the module's router) --------------------------------------------------


async def committed_offset(stack: Stack, partition: int) -> int:
    """The router group's committed offset on a partition of the submitted topic (-1: none)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka, group_id=f"{stack.prefix}modelyard-router",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        committed = await consumer.committed(TopicPartition(stack.topic("queries.submitted"), partition))
        return -1 if committed is None else committed
    finally:
        await consumer.stop()


@pytest.mark.parametrize("signal", ["sigterm", "sigkill"])
async def test_a_router_restart_mid_stream_keeps_the_count_exact(router_stack, signal):
    quota, total, trigger = 2_500, 3_000, 300
    t = snapshot(limit=quota)
    await put_tenant(router_stack, t)
    qs = queries(t.tenant_id, total)
    day = qs[0].time.date().isoformat()
    router = router_stack.processes["router"]
    mongo = AsyncMongoClient(router_stack.mongo_url)
    store = admission_store(router_stack, mongo)
    try:
        async with Watch(router_stack) as watch:
            # Freeze the router while the backlog goes out, so that it takes the backlog in big batches.
            router.popen.send_signal(SIGSTOP)
            try:
                await publish_queries(router_stack.kafka, router_stack.topic("queries.submitted"), qs)
            finally:
                router.popen.send_signal(SIGCONT)
            # Stop the router as soon as it has written the count of a big batch: for SIGKILL, that is
            # before the batch's decisions are all out and its offsets committed.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while (at_stop := await store.used_today(t.tenant_id, day)) < trigger:
                assert loop.time() < deadline, f"the router counted {at_stop} queries within 60s"
            if signal == "sigkill":
                router.kill()
            else:
                assert router.stop() == 0
            (doc,) = await store.holding(t.tenant_id, day)
            partition, position = doc.partition, doc.position
            replays = position >= await committed_offset(router_stack, partition)
            router_stack.restart("router")
            d = await watch.all_decided(qs, timeout_s=90)
    finally:
        await mongo.close()
    ids = {q.query_id for q in qs}
    assert trigger <= at_stop < quota
    if signal == "sigkill":
        # The test is about this case: counted but not committed, so the restarted router gets the
        # records again and must neither count them twice nor decide them differently.
        assert replays, "the kill came after the commit; the redelivery path was not exercised"
    else:
        # A graceful stop finishes and commits the batch in hand: nothing is decided twice.
        assert not replays
        assert all(len(v) == 1 for v in [*d.routed.values(), *d.outcomes.values()])
    assert_one_decision_each(d, qs)
    assert len(d.admitted()) == quota
    assert d.rejected(RejectCode.QUOTA) == ids - d.admitted()
    # Admissions are the first `quota` queries in the partition's order, i.e. in publishing order.
    assert d.admitted() == {q.query_id for q in qs[:quota]}
    assert await counted(router_stack, t.tenant_id, day) == quota
