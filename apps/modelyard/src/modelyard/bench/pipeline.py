"""`modelyard bench pipeline`: end-to-end throughput, latency and memory of a running stack.

Run it against `make up` with the simulator in its 0 ms mode. Phases:

1. raw Kafka: one aiokafka producer and one consumer move small messages through a bench topic on the
   same broker — the reference for what the pipeline's hops cost;
2. fixed rate: queries from many tenants at ``--rate`` per second; submit→outcome latency percentiles;
3. maximum rate: ``--queries`` queries published as fast as one client can; end-to-end queries/s;
4. (``--soak S``) S seconds at ``--rate``, sampling every process's resident memory.

Every query must get its outcome; ``lost`` counts those that did not within the deadline.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import psutil
from aiokafka.admin import NewTopic
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from modelyard_core.bus import encode
from modelyard_core.kafka_clients import make_admin, make_consumer, make_producer
from modelyard_core.runtime import tune_gc
from modelyard_core.settings import Settings
from modelyard_events import QuerySubmitted
from modelyard_harness import cpu_seconds as process_cpu_seconds
from modelyard_harness import drop_topics, rss_mb

from .hops import hop_latencies

QUERIES = [
    "What is the status of ticket #{n}?",
    "How to reset my password for the billing portal?",
    "Who is assigned to ticket #{n}?",
    "How do I connect to the VPN from a new laptop?",
    "Analyze the root cause of the payments outage and propose a remediation strategy",
    "Design a disaster recovery plan for the CRM across two regions",
]


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


@dataclass
class Tracker:
    """Submit times and outcome times by query id, fed by one outcomes consumer."""

    submitted: dict[str, float] = field(default_factory=dict)
    done: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)

    def latencies_ms(self, ids) -> list[float]:
        return [(self.done[i] - self.submitted[i]) * 1000 for i in ids if i in self.done]


def service_pids(run_dir: Path) -> dict[str, int]:
    pids = {}
    for pidfile in sorted((run_dir / "pids").glob("*.pid")):
        pids[pidfile.stem] = int(pidfile.read_text())
    for name in ("kafka", "ferretdb"):
        f = run_dir / name / f"{name}.pid"
        if f.exists():
            pids[name] = int(f.read_text())
    return {n: p for n, p in pids.items() if psutil.pid_exists(p)}


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) each process has used so far, this load generator's included."""
    out = {"bench (load generator)": process_cpu_seconds(os.getpid())}
    for name, pid in pids.items():
        try:
            out[name] = process_cpu_seconds(pid)
        except psutil.Error:  # gone (or not ours to read): no figure rather than a wrong one
            continue
    return out


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {n: after[n] - before[n] for n in after if n in before}


class PipelineBench:
    def __init__(self, settings: Settings, api_url: str, admin_token: str, tenants: int, console: Console) -> None:
        self.settings = settings
        self.api_url = api_url
        self.admin_token = admin_token
        self.n_tenants = tenants
        self.console = console
        self.tracker = Tracker()
        self.tenant_ids: list[str] = []

    async def ensure_tenants(self) -> int:
        """The bench's tenants ``bench-0`` .. ``bench-<n-1>``: reused when an earlier run created them,
        created otherwise; returns how many were created.

        Reuse keeps runs on one stack comparable: a run that made new tenants every time would grow
        the router's tenant view and metering's usage documents with each run, and on FerretDB a
        metering flush costs more the more usage documents exist.
        """
        wanted = {f"bench-{i}": i for i in range(self.n_tenants)}
        found: dict[int, str] = {}
        async with httpx.AsyncClient(base_url=self.api_url, timeout=30,
                                     headers={"Authorization": f"Bearer {self.admin_token}"}) as http:
            offset = 0
            while True:
                resp = await http.get("/v1/tenants", params={"tier": "enterprise", "status": "active",
                                                             "offset": offset, "limit": 500})
                resp.raise_for_status()
                page = resp.json()
                for tenant in page["items"]:
                    i = wanted.get(tenant["organization_name"])
                    if i is not None:
                        found.setdefault(i, tenant["tenant_id"])
                offset += len(page["items"])
                if not page["items"] or offset >= page["total"]:
                    break
            created = 0
            for i in range(self.n_tenants):
                if i in found:
                    continue
                resp = await http.post("/v1/tenants", json={
                    "organization_name": f"bench-{i}", "admin_email": f"bench{i}@example.com",
                    "industry": ["tech", "finance", "healthcare", "other"][i % 4], "subscription_tier": "enterprise",
                })
                resp.raise_for_status()
                found[i] = resp.json()["tenant_id"]
                created += 1
        self.tenant_ids = [found[i] for i in range(self.n_tenants)]
        return created

    async def follow_outcomes(self, consumer: AIOKafkaConsumer) -> None:
        tracker = self.tracker
        while True:
            batch = await consumer.getmany(timeout_ms=100, max_records=5000)
            now = time.perf_counter()
            for records in batch.values():
                for r in records:
                    # Two fields of the outcome are all the bench needs: the load generator shares the
                    # machine with the stack, so it does not validate what the contract tests cover.
                    o = orjson.loads(r.value)
                    qid = o.get("query_id")
                    if qid in tracker.submitted and qid not in tracker.done:
                        tracker.done[qid] = now
                        tracker.statuses[qid] = o.get("status")

    def make(self, i: int) -> tuple[str, bytes, bytes, list]:
        tenant = self.tenant_ids[i % len(self.tenant_ids)]
        q = QuerySubmitted(tenant_id=tenant, query_id=str(uuid.uuid4()), text=QUERIES[i % len(QUERIES)].format(n=i))
        body, headers = encode(q, "bench")
        return q.query_id, tenant.encode(), body, [(k, v.encode()) for k, v in headers.items()]

    async def publish_at_rate(self, producer: AIOKafkaProducer, rate: float, seconds: float, progress, label: str,
                              memory: MemorySampler | None = None) -> list[str]:
        topic = self.settings.topics.name("submitted")
        total = int(rate * seconds)
        bar = progress.add_task(label, total=total)
        ids, futures = [], []
        start = time.perf_counter()
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            qid, key, body, headers = self.make(i)
            self.tracker.submitted[qid] = time.perf_counter()
            futures.append(await producer.send(topic, body, key=key, headers=headers))
            ids.append(qid)
            if i % 50 == 0:
                progress.update(bar, completed=i)
                if memory is not None:
                    memory.sample()
        await asyncio.gather(*futures)
        progress.update(bar, completed=total)
        return ids

    async def publish_all(self, producer: AIOKafkaProducer, n: int) -> list[str]:
        topic = self.settings.topics.name("submitted")
        ids, futures = [], []
        for i in range(n):
            qid, key, body, headers = self.make(i)
            self.tracker.submitted[qid] = time.perf_counter()
            futures.append(await producer.send(topic, body, key=key, headers=headers))
            ids.append(qid)
        await asyncio.gather(*futures)
        return ids

    async def wait_done(self, ids: list[str], timeout_s: float, progress, label: str,
                        memory: MemorySampler | None = None) -> float:
        bar = progress.add_task(label, total=len(ids))
        deadline = time.perf_counter() + timeout_s
        while True:
            finished = sum(1 for i in ids if i in self.tracker.done)
            progress.update(bar, completed=finished)
            if memory is not None:
                memory.sample()
            if finished == len(ids) or time.perf_counter() > deadline:
                return max((self.tracker.done.get(i, 0) for i in ids), default=0.0)
            await asyncio.sleep(0.1)


class MemorySampler:
    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.samples: dict[str, list[tuple[float, float]]] = {n: [] for n in pids}
        self.last = 0.0

    def sample(self, every_s: float = 1.0) -> None:
        now = time.monotonic()
        if now - self.last < every_s:
            return
        self.last = now
        for name, pid in self.pids.items():
            try:
                self.samples[name].append((now, rss_mb(pid)))
            except psutil.Error:
                pass

    def peak(self) -> dict[str, float]:
        return {n: max((v for _, v in s), default=0.0) for n, s in self.samples.items()}

    def growth_after_warmup(self, warmup_s: float) -> dict[str, float]:
        """% growth of resident memory from the end of the warm-up to the end of the run."""
        out = {}
        for name, s in self.samples.items():
            if not s:
                continue
            t0 = s[0][0] + warmup_s
            after = [v for t, v in s if t >= t0]
            if len(after) >= 2 and after[0] > 0:
                out[name] = round(100 * (statistics.mean(after[-3:]) - after[0]) / after[0], 1)
        return out


async def raw_kafka_rate(settings: Settings, n: int = 100_000) -> float:
    """Messages/s of one producer and one consumer moving n small messages through a fresh topic."""
    topic = f"{settings.topics.prefix}bench.raw.{uuid.uuid4().hex[:8]}"
    admin = make_admin(settings.kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=settings.kafka.partitions, replication_factor=1)])
    finally:
        await admin.close()
    producer = make_producer(settings.kafka, linger_ms=5,
                             max_batch_size=256 * 1024, enable_idempotence=True)
    consumer = make_consumer(settings.kafka, group_id=None,
                             auto_offset_reset="earliest", enable_auto_commit=False)
    await producer.start()
    await consumer.start()
    try:
        consumer.subscribe([topic])
        payload = b'{"tenant_id":"t","query_id":"q","text":"What is the status of ticket #123?"}'
        start = time.perf_counter()

        async def produce() -> None:
            futures = [await producer.send(topic, payload, key=str(i % 50).encode()) for i in range(n)]
            await asyncio.gather(*futures)

        async def consume() -> None:
            got = 0
            while got < n:
                batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
                got += sum(len(v) for v in batch.values())

        await asyncio.gather(produce(), consume())
        return n / (time.perf_counter() - start)
    finally:
        await producer.stop()
        await consumer.stop()
        await drop_topics(settings.kafka.bootstrap_servers, topic)


async def simulator_zero_latency(simulator_url: str, on: bool) -> None:
    """Switch the running simulator to its 0 ms mode for the run, and back to its start-up knobs after."""
    async with httpx.AsyncClient(base_url=simulator_url, timeout=10) as http:
        if on:
            resp = await http.post("/admin/config", json={"all_models": {"latency_ms": 0}})
        else:
            resp = await http.post("/admin/reset", json={"config": True})
        resp.raise_for_status()


async def run_pipeline_bench(*, api_url: str, simulator_url: str, rate: float, seconds: float, queries: int,
                             tenants: int, soak_s: float, timeout_s: float, run_dir: Path, warmup_s: float = 5.0) -> dict:
    console = Console(stderr=True, width=None if Console(stderr=True).is_terminal else 130)
    settings = Settings()
    tune_gc(settings.gc_gen0_threshold)  # the load generator shares the machine with the stack
    await simulator_zero_latency(simulator_url, True)
    try:
        return await _run(console, settings, api_url=api_url, rate=rate, seconds=seconds, queries=queries,
                          tenants=tenants, soak_s=soak_s, timeout_s=timeout_s, run_dir=run_dir, warmup_s=warmup_s)
    finally:
        await simulator_zero_latency(simulator_url, False)


async def _run(console: Console, settings: Settings, *, api_url: str, rate: float, seconds: float, queries: int,
               tenants: int, soak_s: float, timeout_s: float, run_dir: Path, warmup_s: float,
               pids: dict[str, int] | None = None, raw_phase: bool = True) -> dict:
    """One run against a stack; ``pids``: its processes (default: `make up`'s, from ``run_dir``)."""
    bench = PipelineBench(settings, api_url, os.environ.get("MODELYARD_ADMIN_TOKEN", "dev-admin-token"), tenants, console)
    console.print(f"finding or creating {tenants} enterprise tenants (bench-0 ..) through {api_url} ...")
    created = await bench.ensure_tenants()
    console.print(f"  {tenants - created} reused, {created} created")

    consumer = make_consumer(settings.kafka, group_id=None,
                             auto_offset_reset="latest", enable_auto_commit=False)
    producer = make_producer(settings.kafka, linger_ms=2,
                             enable_idempotence=True, max_batch_size=256 * 1024)
    await consumer.start()
    await producer.start()
    memory = MemorySampler(pids if pids is not None else service_pids(run_dir))
    result: dict = {}
    warm_ids: list[str] = []
    try:
        consumer.subscribe([settings.topics.name("outcomes")])
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        for tp in consumer.assignment():
            await consumer.position(tp)
        follower = asyncio.create_task(bench.follow_outcomes(consumer))

        with Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as progress:
            raw = None
            if raw_phase:
                raw_task = progress.add_task("raw Kafka produce→consume", total=None)
                raw = await raw_kafka_rate(settings)
                progress.update(raw_task, total=1, completed=1)

            if warmup_s > 0:
                # New tenants, cold caches and connections: measured, but not part of the latency figures.
                warm_ids = await bench.publish_at_rate(producer, rate, warmup_s, progress, f"warm-up {rate:.0f}/s")
                await bench.wait_done(warm_ids, timeout_s, progress, "  outcomes (warm-up)")
            cpu_before, fixed_start, fixed_wall = cpu_seconds(memory.pids), time.perf_counter(), time.time()
            fixed_ids = await bench.publish_at_rate(producer, rate, seconds, progress, f"fixed rate {rate:.0f}/s")
            cores_at_rate = {n: v / (time.perf_counter() - fixed_start)
                             for n, v in cpu_used(cpu_before, cpu_seconds(memory.pids)).items()}
            fixed_end = time.time()
            await bench.wait_done(fixed_ids, timeout_s, progress, "  outcomes (fixed rate)")
            lat = bench.tracker.latencies_ms(fixed_ids)
            wall_ms = (time.time() - time.perf_counter()) * 1000
            hops = await hop_latencies(settings, {i: bench.tracker.done[i] * 1000 + wall_ms
                                                  for i in fixed_ids if i in bench.tracker.done})

            start, cpu_before, max_wall = time.perf_counter(), cpu_seconds(memory.pids), time.time()
            max_ids = await bench.publish_all(producer, queries)
            last = await bench.wait_done(max_ids, timeout_s, progress, f"max rate ({queries:,} queries)", memory)
            max_end = time.time()
            finished = [i for i in max_ids if i in bench.tracker.done]
            throughput = len(finished) / (last - start) if finished and last > start else 0.0
            cpu_ms_per_query = {n: 1000 * v / max(1, len(finished))
                                for n, v in cpu_used(cpu_before, cpu_seconds(memory.pids)).items()}
            peak = memory.peak()

            soak: dict = {}
            if soak_s > 0:
                soak_memory = MemorySampler(memory.pids)
                soak_ids = await bench.publish_at_rate(producer, rate, soak_s, progress, f"soak {soak_s:.0f}s", soak_memory)
                await bench.wait_done(soak_ids, timeout_s, progress, "  outcomes (soak)", soak_memory)
                soak = {"soak_s": soak_s, "soak_lost": sum(1 for i in soak_ids if i not in bench.tracker.done),
                        "soak_growth_pct": soak_memory.growth_after_warmup(min(120.0, soak_s / 5)),
                        "soak_peak_mb": {k: round(v, 1) for k, v in soak_memory.peak().items()}}
                fixed_ids += soak_ids
        follower.cancel()
    finally:
        await producer.stop()
        await consumer.stop()

    all_ids = warm_ids + fixed_ids + max_ids
    lost = sum(1 for i in all_ids if i not in bench.tracker.done)
    result = {
        "throughput_qps": round(throughput, 1),
        "p50_ms_at_200": round(percentile(lat, 50), 1),
        "p95_ms_at_200": round(percentile(lat, 95), 1),
        "p99_ms_at_200": round(percentile(lat, 99), 1),
        # the same percentiles under rate-neutral names (the fixed rate is --rate, fixed_rate_qps)
        "p50_ms": round(percentile(lat, 50), 1),
        "p95_ms": round(percentile(lat, 95), 1),
        "p99_ms": round(percentile(lat, 99), 1),
        "raw_kafka_msgs_per_s": round(raw, 1) if raw is not None else None,
        "lost": lost,
        "fixed_rate_qps": rate,
        "queries": len(all_ids),
        "peak_rss_mb": {k: round(v, 1) for k, v in peak.items()},
        # Where the CPU goes: cores each process used while queries came at the fixed rate, and CPU
        # milliseconds per query during the maximum-rate phase (2 cores = 2,000 ms of CPU per second).
        "cores_at_fixed_rate": {k: round(v, 3) for k, v in cores_at_rate.items()},
        "cpu_ms_per_query": {k: round(v, 3) for k, v in cpu_ms_per_query.items()},
        # latency at the fixed rate by hop (``hops``), and the phases' wall-clock times (unix seconds)
        # to line up with the broker's request counts
        "hops_at_fixed_rate": hops,
        "phases_unix": {"fixed_rate": [round(fixed_wall, 2), round(fixed_end, 2)], "max_rate": [round(max_wall, 2), round(max_end, 2)]},
        **soak,
    }
    table = Table(title="modelyard bench pipeline (model simulator backend)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for k in ("throughput_qps", "p50_ms_at_200", "p95_ms_at_200", "p99_ms_at_200", "raw_kafka_msgs_per_s", "lost"):
        table.add_row(k, f"{result[k]:,}" if result[k] is not None else "-")
    for name, mb in result["peak_rss_mb"].items():
        table.add_row(f"peak RSS {name} (MB)", f"{mb:,.1f}")
    console.print(table)
    cpu = Table(title="CPU by process")
    cpu.add_column("process")
    cpu.add_column(f"cores at {rate:.0f} q/s", justify="right")
    cpu.add_column("CPU ms per query at max rate", justify="right")
    for name in sorted(cores_at_rate, key=lambda n: -cpu_ms_per_query.get(n, 0)):
        cpu.add_row(name, f"{cores_at_rate[name]:.2f}", f"{cpu_ms_per_query.get(name, 0):.2f}")
    cpu.add_row("all", f"{sum(cores_at_rate.values()):.2f}", f"{sum(cpu_ms_per_query.values()):.2f}")
    console.print(cpu)
    if rate != 200:
        console.print(f"[yellow]note: latency percentiles were measured at {rate:.0f} queries/s, not 200[/yellow]")
    return result


