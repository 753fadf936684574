"""Where a query's latency goes, hop by hop, from the records' own timestamps (for `bench pipeline`).

Every record carries the time its producer handed it to the client (Kafka's ``CreateTime``, in
milliseconds). After a phase, the topics a query passes through are read back from the beginning, and
each query's path is cut at those times:

* ``router``: ``queries.submitted`` → ``queries.routed.*`` (the router's fetch, its linger, the admission
  count in MongoDB, classification);
* ``slm`` / ``llm``: ``queries.routed.<pool>`` → the worker's outcome or escalation (the fetch, the model
  call, judging);
* ``escalation``: ``queries.escalations`` → ``queries.routed.llm`` (the router again);
* ``outcome → load generator``: the outcome's time → the load generator's consumer saw it.

A producer's acknowledgement wait and the next consumer's fetch fall into the hop after the record's
timestamp. Reading back costs the stack nothing: it runs after the phase, on records already written.
"""

from __future__ import annotations

import time
from collections import defaultdict

import orjson
from aiokafka import TopicPartition

from modelyard_core.kafka_clients import make_consumer
from modelyard_core.settings import Settings


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


async def read_times(settings: Settings, topics: list[str], ids: set[str]) -> dict[str, list[tuple[str, int]]]:
    """query id → [(topic, CreateTime ms)] in time order, for ``ids``, over the whole of ``topics``."""
    consumer = make_consumer(settings.kafka, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    times: dict[str, list[tuple[str, int]]] = defaultdict(list)
    try:
        parts = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())]
        if not parts:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - a fresh client knows no topics yet
            parts = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        left = {tp for tp in parts if end[tp] > 0}
        deadline = time.monotonic() + 60
        while left and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(*left, timeout_ms=500, max_records=10_000)).items():
                for r in records:
                    if r.value:
                        qid = orjson.loads(r.value).get("query_id")
                        if qid in ids:
                            times[qid].append((tp.topic, r.timestamp))
                if await consumer.position(tp) >= end[tp]:
                    left.discard(tp)
    finally:
        await consumer.stop()
    for path in times.values():
        path.sort(key=lambda x: x[1])
    return times


async def hop_latencies(settings: Settings, done_wall_ms: dict[str, float]) -> dict:
    """Per hop: p50, p99 and mean ms over the queries of ``done_wall_ms`` (query id → when the load
    generator saw its outcome, wall-clock ms), and how many queries took each path."""
    t = settings.topics
    names = {t.name("submitted"): "submitted", t.routed("slm"): "slm", t.routed("llm"): "llm",
             t.name("escalations"): "escalated", t.name("outcomes"): "outcome"}
    times = await read_times(settings, list(names), set(done_wall_ms))
    return cut({qid: [(names[topic], ts) for topic, ts in path] for qid, path in times.items()}, done_wall_ms)


def cut(paths: dict[str, list[tuple[str, float]]], done_wall_ms: dict[str, float]) -> dict:
    """Hop statistics of each query's path: [(step, ms)] in time order, steps named submitted, slm, llm,
    escalated and outcome. A path not read back whole (no submission or no outcome) is left out."""
    hops: dict[str, list[float]] = defaultdict(list)
    routes: dict[str, int] = defaultdict(int)
    for qid, steps in paths.items():
        kinds = [k for k, _ in steps]
        if kinds[:1] != ["submitted"] or kinds[-1:] != ["outcome"] or qid not in done_wall_ms:
            continue
        routes["→".join(kinds[1:-1]) or "rejected"] += 1
        for (a, ta), (_, tb) in zip(steps, steps[1:]):
            hop = {"submitted": "router", "escalated": "escalation (router)"}.get(a, f"{a} worker")
            hops[hop].append(tb - ta)
        hops["outcome → load generator"].append(done_wall_ms[qid] - steps[-1][1])
        hops["total (submitted record → load generator)"].append(done_wall_ms[qid] - steps[0][1])
    return {"paths": dict(routes), "hops_ms": {
        h: {"n": len(v), "p50": round(_pct(v, 50), 1), "p99": round(_pct(v, 99), 1), "mean": round(sum(v) / len(v), 1)}
        for h, v in hops.items()}}
