"""The metering service as a real process on the real broker and MongoDB-protocol server.

A slim stack: only the `modelyard metering` process (static group member, so that a restart after
SIGKILL resumes at once), fed by this test through Kafka exactly as the inference workers feed it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from modelyard_events import (
    TIER_LIMITS, AlertMetric, DeadLetter, Industry, MeteringUsage, TenantAlert, TenantSnapshot, Tier, UsageRecorded,
)
from modelyard_harness import Stack, isolated_stack, produce_raw, unique_prefix
from modelyard_harness.usage import expected_totals, stored_totals, synthetic_usage
from modelyard_usage import MONTHLY, TENANT_DAILY
from pymongo import AsyncMongoClient

pytestmark = pytest.mark.system

GROUP = "modelyard-metering"


@pytest.fixture(scope="module")
def stack(kafka: str, mongo_url: str) -> Iterator[Stack]:
    prefix = unique_prefix("metering")
    s = isolated_stack(kafka, mongo_url, prefix)
    s.add("metering", ["metering"], "/readyz", MODELYARD_GROUP_INSTANCE_ID="metering-0",
          MODELYARD_FLUSH_EVENTS="1000", MODELYARD_FLUSH_MS="50")
    s.start("metering")
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
async def db(stack: Stack) -> AsyncIterator:
    client = AsyncMongoClient(stack.mongo_url, tz_aware=True)
    try:
        yield client[stack.database]
    finally:
        await client.drop_database(stack.database)
        await client.close()



async def publish(stack: Stack, name: str, items: list[tuple[str | None, bytes | None]]) -> None:
    """One producer, batched (linger): as fast as the broker takes them."""
    await produce_raw(stack.kafka, stack.topic(name), [(k.encode() if k else None, v) for k, v in items])


async def publish_usage(stack: Stack, events: list[UsageRecorded]) -> None:
    await publish(stack, "usage.recorded", [(e.tenant_id, e.model_dump_json().encode()) for e in events])


async def read_topic(stack: Stack, name: str) -> list:
    """Every record of a topic, from its beginning to its end as of this call."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.subscribe([stack.topic(name)])  # without a group: every partition, from the beginning
        deadline = time.monotonic() + 10
        while not consumer.assignment():
            assert time.monotonic() < deadline, f"no partitions of {name}"
            await asyncio.sleep(0.02)
        partitions = list(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        records = []
        async def behind() -> bool:
            return any([await consumer.position(tp) < end for tp, end in ends.items()])

        while await behind():
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(r for r in batch if r.offset < ends[TopicPartition(r.topic, r.partition)])
        return records
    finally:
        await consumer.stop()


async def consumed_to_end(stack: Stack, name: str = "usage.recorded") -> bool:
    """Has the metering group committed every record of the topic (i.e. finished with them)?"""
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka)
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(f"{stack.prefix}{GROUP}")
        partitions = [tp for tp in committed if tp.topic == stack.topic(name)]
        ends = await consumer.end_offsets(partitions) if partitions else {}
        return bool(ends) and all(committed[tp].offset >= end for tp, end in ends.items())
    finally:
        await consumer.stop()
        await admin.close()


async def wait_until(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


async def wait_folded(stack: Stack, db, events: list[UsageRecorded], timeout_s: float = 60.0) -> dict:
    """Wait until every expected call is in the documents and the group has committed to the end."""
    expected = expected_totals(events)
    tenants = sorted(expected)
    calls = sum(t["calls"] for t in expected.values())

    async def done() -> bool:
        stored = await stored_totals(db, tenants, TENANT_DAILY)
        return sum(t["calls"] for t in stored.values()) >= calls and await consumed_to_end(stack)

    await wait_until(done, timeout_s, f"{calls} calls folded and committed")
    return expected


async def assert_exact(db, expected: dict[str, dict[str, int]]) -> None:
    tenants = sorted(expected)
    for collection in ("usage_daily", TENANT_DAILY, MONTHLY):
        assert await stored_totals(db, tenants, collection) == expected, collection


async def assert_usage_messages_add_up(stack: Stack, db, tenants: list[str]) -> list[MeteringUsage]:
    """metering.usage, de-duplicated by event id: the deltas add up to the stored day totals."""
    by_id: dict[str, bytes] = {}
    for r in await read_topic(stack, "metering.usage"):
        m = MeteringUsage.model_validate_json(r.value)
        if m.tenant_id in tenants:
            assert by_id.setdefault(m.event_id, r.value) == r.value, "a re-sent message differs from the original"
    messages = [MeteringUsage.model_validate_json(v) for v in by_id.values()]
    calls: dict[str, int] = defaultdict(int)
    tokens: dict[str, int] = defaultdict(int)
    for m in messages:
        calls[m.tenant_id] += m.delta.calls
        tokens[m.tenant_id] += m.delta.input_tokens + m.delta.output_tokens
    stored = await stored_totals(db, tenants, TENANT_DAILY)
    assert {t: (calls[t], tokens[t]) for t in tenants} == {t: (stored[t]["calls"], stored[t]["tokens"]) for t in tenants}
    return messages


def tenants_named(label: str, n: int) -> list[str]:
    return [f"{label}-{uuid.uuid4().hex[:6]}-{i}" for i in range(n)]


# --------------------------------------------------------------------------------------------------


async def test_the_same_events_published_twice_are_counted_once(stack, db):
    tenants = tenants_named("twice", 5)
    events = synthetic_usage(1_000, tenants, seed=1)
    await publish_usage(stack, events)
    expected = await wait_folded(stack, db, events)
    await assert_exact(db, expected)

    await publish_usage(stack, events)  # the same event ids, at new offsets
    await wait_folded(stack, db, events)  # i.e. consumed and committed
    await assert_exact(db, expected)
    messages = await assert_usage_messages_add_up(stack, db, tenants)
    assert {m.tenant_id for m in messages} == set(tenants)


async def test_malformed_usage_events_are_dead_lettered_and_the_rest_counted(stack, db):
    tenants = tenants_named("dlq", 2)
    events = synthetic_usage(200, tenants, seed=2)
    negative = json.loads(events[0].model_dump_json()) | {"event_id": str(uuid.uuid4()), "input_tokens": -5}
    items = [(e.tenant_id, e.model_dump_json().encode()) for e in events[:100]]
    items += [(tenants[0], b"{not json"), (tenants[0], json.dumps(negative).encode())]
    items += [(e.tenant_id, e.model_dump_json().encode()) for e in events[100:]]
    await publish(stack, "usage.recorded", items)
    expected = await wait_folded(stack, db, events)
    await assert_exact(db, expected)

    letters = [DeadLetter.model_validate_json(r.value) for r in await read_topic(stack, "deadletter.metering")]
    mine = {base64.b64decode(d.value_base64 or ""): d for d in letters if d.key == tenants[0]}
    bad_json, bad_schema = mine[b"{not json"], mine[json.dumps(negative).encode()]
    assert (bad_json.error_type, bad_json.service, bad_json.source_topic) == ("decode", "metering", stack.topic("usage.recorded"))
    assert bad_schema.error_type == "schema" and "input_tokens" in bad_schema.error


async def test_one_alert_per_threshold_when_1000_calls_cross_it(stack, db):
    tenant = tenants_named("alerts", 1)[0]
    snapshot = TenantSnapshot(tenant_id=tenant, version=1, name="Alerted", tier=Tier.BASIC, industry=Industry.TECH,
                              limits=TIER_LIMITS[Tier.BASIC])  # 1,000 API calls per day
    await publish(stack, "tenants.snapshots", [(tenant, snapshot.model_dump_json().encode())])
    # 1,000 queries (no cascade steps) in five parts, each folded before the next is sent: 80% is
    # reached by the fourth flush, and the flushes after it must not alert again.
    events = [e.model_copy(update={"cascade_step": False}) for e in synthetic_usage(1_000, [tenant], seed=3)]
    for i in range(0, 1_000, 200):
        await publish_usage(stack, events[i:i + 200])
        await wait_folded(stack, db, events[:i + 200])

    alerts = [TenantAlert.model_validate_json(r.value) for r in await read_topic(stack, "tenants.alerts")]
    mine = [a for a in alerts if a.tenant_id == tenant]
    assert sorted(a.threshold_pct for a in mine) == [80, 100]
    a80 = next(a for a in mine if a.threshold_pct == 80)
    assert (a80.metric, a80.limit, a80.period) == (AlertMetric.API_CALLS_PER_DAY, 1000, events[0].time.date().isoformat())
    assert a80.value == 800 and next(a for a in mine if a.threshold_pct == 100).value == 1000


async def test_sigkill_ten_times_during_a_20000_event_stream_every_total_exact(stack, db):
    rng = random.Random(5)
    tenants = tenants_named("kill", 20)
    events = synthetic_usage(20_000, tenants, seed=4)
    metering = stack.processes["metering"]
    started = time.monotonic()
    chunk = len(events) // 10
    for i in range(10):
        await publish_usage(stack, events[i * chunk:(i + 1) * chunk])
        # Let it get into the chunk (reading, folding, writing or publishing: a chunk takes a few
        # hundred milliseconds), then kill it.
        await asyncio.sleep(rng.uniform(0.0, 0.5))
        metering.kill()
        await asyncio.to_thread(stack.restart, "metering")
    expected = await wait_folded(stack, db, events, timeout_s=90)
    await assert_exact(db, expected)
    await assert_usage_messages_add_up(stack, db, tenants)
    log = metering.log_path.read_text(errors="replace")
    print(f"10 kills in {time.monotonic() - started:.1f}s; flushes replaying after a kill: {log.count(' replayed, ')}, "
          f"interrupted flushes finished from the journal: {log.count('interrupted flush')}")
