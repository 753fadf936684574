"""Router service throughput on the real broker and MongoDB-protocol server.

One `modelyard router` process (started here, or an external one) drains a backlog of queries from
many tenants with quotas too high to bind. The backlog is published while the router is frozen
(SIGSTOP), so that producing it does not compete with the router for the CPU; the clock starts when
the router is let go (SIGCONT) and stops at the broker timestamp of the last routed or outcome event
for the backlog. Completion is read from the end offsets of the routed and outcome topics, which
costs the machine next to nothing while the router works.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


from modelyard_core.bus import ensure_topics
from modelyard_core.kafka_clients import make_admin
from modelyard_core.settings import Settings
from modelyard_events import TIER_LIMITS, Industry, QuerySubmitted, RoutingPolicy, TenantSnapshot, Tier
from modelyard_harness.kafka import kafka_settings
from modelyard_harness import EndOffsets, Process, cpu_seconds, drop_run, free_port, produce_raw

from .classifier import bench_texts

OUTPUTS = ("routed_slm", "routed_llm", "outcomes")


@dataclass
class RouterBench:
    queries: int = 50_000
    tenants: int = 50
    kafka: str = "127.0.0.1:9092"
    mongo_url: str = "mongodb://127.0.0.1:27017"
    partitions: int = 8
    #: Topic prefix; a fresh one by default. With ``external``, the prefix of the running router.
    prefix: str | None = None
    database: str | None = None
    #: Measure a router that is already running (on ``prefix``) instead of starting one.
    external: bool = False
    #: Router processes to start (one consumer group; each takes a share of the partitions).
    routers: int = 1
    #: Record the router with py-spy while it drains the backlog (collapsed stacks written here).
    profile: Path | None = None
    keep: bool = False
    timeout_s: float = 600.0
    log_dir: Path = field(default_factory=lambda: Path(".run") / "bench-logs")
    router_env: dict[str, str] = field(default_factory=dict)
    #: Command that runs the router (default: this Python's `modelyard router`), e.g. to try a variant.
    router_cmd: list[str] | None = None


def bench_tenants(n: int) -> list[TenantSnapshot]:
    industries = list(Industry)
    tiers = list(Tier)
    out = []
    for i in range(n):
        tier = tiers[i % len(tiers)]
        out.append(TenantSnapshot(
            tenant_id=f"bench-tenant-{i:03d}", version=1, name=f"Bench tenant {i}", tier=tier,
            industry=industries[i % len(industries)], policy=RoutingPolicy(),
            limits=TIER_LIMITS[tier].model_copy(update={"api_calls_per_day": 1_000_000_000}),
        ))
    return out


def backlog(tenants: list[TenantSnapshot], n: int) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs of ``n`` submitted queries, tenants and texts in rotation."""
    texts = bench_texts()
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        t = tenants[i % len(tenants)]
        spec = texts[(i * 7) % len(texts)]
        q = QuerySubmitted(tenant_id=t.tenant_id, query_id=f"bench-{i}-{uuid.uuid4().hex[:8]}", time=now,
                           text=spec["text"], user_role=spec.get("user_role"), agent_type=spec.get("agent_type"))
        out.append((t.tenant_id.encode(), q.model_dump_json().encode()))
    return out


def _py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise RuntimeError("py-spy is not installed (it is in the workspace's dev group: uv sync)")
    return found


def _summarise_profile(raw: Path, top: int = 12) -> list[tuple[str, float, float]]:
    """(frame, inclusive share, self share) of the hottest frames in py-spy's collapsed stacks."""
    inclusive: Tally[str] = Tally()
    own: Tally[str] = Tally()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        for f in set(frames):
            inclusive[f] += n
        own[frames[-1]] += n
    if not total:
        return []
    hot = sorted(own, key=own.__getitem__, reverse=True)[:top]
    return [(f, inclusive[f] / total, own[f] / total) for f in hot]


class RouterProcesses:
    """The router processes a run starts: one consumer group, frozen and released together."""

    def __init__(self, cfg: RouterBench, prefix: str, database: str) -> None:
        self.cfg = cfg
        self.prefix = prefix
        self.database = database
        self.procs: list[Process] = []

    @property
    def logs(self) -> list[Path]:
        return [p.log_path for p in self.procs]

    async def start(self, progress: Callable[[str], None]) -> None:
        cfg = self.cfg
        base = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
        base.update({
            "MODELYARD_KAFKA__BOOTSTRAP_SERVERS": cfg.kafka, "MODELYARD_KAFKA__PARTITIONS": str(cfg.partitions),
            "MODELYARD_MONGO__URL": cfg.mongo_url, "MODELYARD_MONGO__DATABASE": self.database,
            "MODELYARD_TOPICS__PREFIX": self.prefix, "MODELYARD_LOG_FORMAT": "console",
            # The backlog is a throughput measure: neither quotas nor rates may bind.
            "MODELYARD_RATE_LIMITS__ENABLED": "false", **cfg.router_env,
        })
        cmd = cfg.router_cmd or [sys.executable, "-m", "modelyard.cli", "router"]
        for i in range(cfg.routers):
            port = free_port()
            proc = Process(f"router-{i}", [], {**base, "MODELYARD_OPS_PORT": str(port)}, f"http://127.0.0.1:{port}/readyz",
                           cfg.log_dir / f"{self.prefix.rstrip('.')}-{i}.log", command=cmd)
            progress(f"starting router {i} (log: {proc.log_path})")
            proc.start()
            self.procs.append(proc)
        for proc in self.procs:
            await asyncio.to_thread(proc.wait_ready, 120)
        await self._group_stable(f"{self.prefix}modelyard-router", len(self.procs) * 2)  # two subscribers each

    async def _group_stable(self, group: str, members: int, timeout_s: float = 120) -> None:
        admin = make_admin(kafka_settings(self.cfg.kafka))
        await admin.start()
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                (described,) = (await admin.describe_consumer_groups([group]))[0].groups
                if described[2] == "Stable" and len(described[5]) >= members:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"consumer group {group} not stable with {members} members")
                await asyncio.sleep(0.2)
        finally:
            await admin.close()

    def signal(self, sig: int) -> None:
        for p in self.procs:
            p.signal(sig)

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            p.stop()


async def run(cfg: RouterBench, progress: Callable[[str], None] = lambda s: None) -> dict:
    run_id = uuid.uuid4().hex[:8]
    prefix = cfg.prefix or f"bench{run_id}-router."
    database = cfg.database or f"bench_router_{run_id}"
    settings = Settings(kafka={"bootstrap_servers": cfg.kafka, "partitions": cfg.partitions},
                        topics={"prefix": prefix}, mongo={"url": cfg.mongo_url, "database": database})
    topics = settings.topics
    await ensure_topics(settings, topics.all_topics())

    tenants = bench_tenants(cfg.tenants)
    await produce_raw(cfg.kafka, topics.name("tenant_snapshots"),
                   [(t.tenant_id.encode(), t.model_dump_json().encode()) for t in tenants])

    routers = RouterProcesses(cfg, prefix, database)
    watch = EndOffsets(cfg.kafka, [topics.name(t) for t in OUTPUTS])
    profiler: subprocess.Popen | None = None
    try:
        if not cfg.external:
            await routers.start(progress)
        await watch.start()
        # Warm-up: one query per tenant, so that the view is loaded and every partition is owned.
        progress("warming up")
        await produce_raw(cfg.kafka, topics.name("submitted"), backlog(tenants, len(tenants)))
        await watch.wait_for(len(tenants), 120)
        await watch.rebase()

        progress(f"building a backlog of {cfg.queries:,} queries from {cfg.tenants} tenants")
        pairs = backlog(tenants, cfg.queries)
        routers.signal(signal.SIGSTOP)
        try:
            p0 = time.perf_counter()
            await produce_raw(cfg.kafka, topics.name("submitted"), pairs)
            publish_s = time.perf_counter() - p0
        finally:
            cpu0 = routers.cpu_seconds()
            if cfg.profile is not None and routers.procs:
                cfg.profile.parent.mkdir(parents=True, exist_ok=True)
                profiler = subprocess.Popen([_py_spy(), "record", "--pid", str(routers.procs[0].pid), "--format", "raw",
                                             "--rate", "97", "--nonblocking", "--output", str(cfg.profile)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            routers.signal(signal.SIGCONT)
        t0 = time.time()
        progress("draining")
        ends = await watch.wait_for(cfg.queries, cfg.timeout_s)
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(60)
        t1 = await watch.last_timestamp_ms(ends) / 1000
        cpu = routers.cpu_seconds() - cpu0 if routers.procs else None
        per_topic = watch.tally(ends)
    finally:
        await watch.stop()
        routers.stop()
        if not cfg.keep and not cfg.external:  # benchmarks must not fill the shared dev servers
            await drop_run(cfg.kafka, prefix, cfg.mongo_url, database)

    drain_s = max(t1 - t0, 1e-6)
    result = {
        "queries": cfg.queries,
        "router_qps": round(cfg.queries / drain_s),
        "drain_s": round(drain_s, 3),
        "routers": cfg.routers if not cfg.external else None,
        "tenants": cfg.tenants,
        "partitions": cfg.partitions,
        "publish_s": round(publish_s, 3),
        "router_cpu_s": round(cpu, 2) if cpu is not None else None,
        "queries_per_router_cpu_s": round(cfg.queries / cpu) if cpu else None,
        "routed_slm": per_topic.get(topics.name("routed_slm"), 0),
        "routed_llm": per_topic.get(topics.name("routed_llm"), 0),
        "outcomes": per_topic.get(topics.name("outcomes"), 0),
        "router": "external" if cfg.external else "started",
        "logs": [str(p) for p in routers.logs],
    }
    if cfg.profile is not None and cfg.profile.exists():
        result["profile"] = str(cfg.profile)
        result["profile_top"] = [
            {"frame": f, "inclusive": round(inc, 3), "self": round(own, 3)} for f, inc, own in _summarise_profile(cfg.profile)
        ]
    return result
