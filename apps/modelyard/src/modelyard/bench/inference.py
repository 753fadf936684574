"""Benchmarks of the inference pool: one worker process on the real broker, the simulator as its backend.

``bench_worker`` starts its own simulator (fixed latency; 0 = the 0 ms mode) and one ``modelyard inference
--pool slm`` process on a fresh topic prefix, pre-publishes a backlog of routed queries that cannot
escalate (each ends in exactly one outcome and one usage record), and measures while the worker drains it:

* throughput — outcomes per second between 10 % and 90 % of the backlog (start-up and tail excluded);
* the worker's CPU over the same window (psutil): the queries/s at which it would saturate one core
  is 1 / (CPU seconds per query);
* queries in flight: records taken from Kafka and not finished (``modelyard_inference_records_in_progress``),
  model calls in flight in the worker (``modelyard_inference_in_flight``, and its peak), and requests in
  flight at the model (the simulator's own count); all sampled a few times a second while draining.

``bench_sdk`` measures the client CPU per model call of the openai SDK ways to call a chat completion
(typed ``create`` vs. the lean ``client.post``; httpx2 vs. aiohttp transport) against a 0 ms simulator.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from modelyard_core.bus import ensure_topics
from modelyard_core.settings import Settings
from modelyard_events import ComplexityLevel, ModelClass, QueryRequest, QueryRouted, RoutingDecision
from modelyard_harness import EndOffsets, Process, cpu_seconds, drop_topics, free_port, http_get, produce_raw

BENCH_TEXTS = (
    "How do I reset my password for the billing portal?",
    "What is the status of ticket #{n}?",
    "Where is my parcel {n}?",
    "How can I add a new user to the sales team workspace?",
    "Why does the VPN client disconnect every few minutes on my laptop?",
)


def start_simulator(latency_ms: float, port: int, log_path: Path) -> Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env.update({
        "MODELYARD_SIMULATOR_PORT": str(port),
        "MODELYARD_SIMULATOR_ALL_MODELS": json.dumps({"latency_ms": latency_ms, "latency_distribution": "fixed"}),
        "MODELYARD_SIMULATOR_GRACEFUL_SHUTDOWN_S": "1",
    })
    proc = Process("simulator", ["-m", "modelyard_simulator"], env, f"http://127.0.0.1:{port}/healthz", log_path,
                   command=[sys.executable])
    proc.start()
    proc.wait_ready(60)
    return proc


def routed_backlog(n: int, model: str = "gpt-4o-mini") -> list[tuple[bytes, bytes]]:
    """``n`` routed SLM queries from 20 tenants; none may escalate, so each ends in one outcome."""
    now = datetime.now(UTC)
    decision = RoutingDecision(complexity=ComplexityLevel.SIMPLE, score=0.0, model_class=ModelClass.SLM, model=model)
    out = []
    for i in range(n):
        tenant = f"bench-tenant-{i % 20:02d}"
        q = QueryRouted(tenant_id=tenant, query_id=f"bench-{i}-{uuid.uuid4().hex[:8]}", submitted_at=now,
                        request=QueryRequest(text=BENCH_TEXTS[i % len(BENCH_TEXTS)].format(n=i)),
                        decision=decision, can_escalate=False)
        out.append((tenant.encode(), q.model_dump_json().encode()))
    return out


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


@dataclass
class Samples:
    """What is sampled every tick while the backlog drains."""

    t: list[float] = field(default_factory=list)
    outcomes: list[int] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    simulator_cpu_s: list[float] = field(default_factory=list)
    worker_in_progress: list[float | None] = field(default_factory=list)
    worker_in_flight: list[float | None] = field(default_factory=list)
    model_in_flight: list[float | None] = field(default_factory=list)


@dataclass
class WorkerBench:
    latency_ms: float
    queries: int = 5_000
    concurrency: int = 512
    kafka: str = "127.0.0.1:9092"
    partitions: int = 8
    transport: str = "aiohttp"
    #: MODELYARD_BACKEND_CLIENT of the worker: lean (aiohttp, no SDK) or openai (the SDK on ``transport``)
    client: str = "lean"
    logprobs: bool = True
    timeout_s: float = 300.0
    keep_logs: Path | None = None
    #: extra environment of the worker process (e.g. other MODELYARD_* knobs)
    worker_env: dict[str, str] = field(default_factory=dict)


def _at(samples: Samples, fraction: float, total: int) -> int:
    """Index of the first sample at which ``fraction`` of the backlog was done."""
    goal = fraction * total
    return next(i for i, n in enumerate(samples.outcomes) if n >= goal)


async def bench_worker(cfg: WorkerBench, progress: Callable[[str], None] = lambda s: None) -> dict:
    prefix = f"bench-inf-{uuid.uuid4().hex[:8]}."
    settings = Settings(_env_file=None)
    settings.kafka.bootstrap_servers = cfg.kafka
    settings.kafka.partitions = cfg.partitions
    settings.topics.prefix = prefix
    topics = settings.topics
    routed, outcomes_topic = topics.routed("slm"), topics.name("outcomes")
    logs = cfg.keep_logs or Path(os.environ.get("TMPDIR", "/tmp")) / f"modelyard-{prefix.rstrip('.')}"
    logs.mkdir(parents=True, exist_ok=True)
    sim_port, ops_port = free_port(), free_port()
    simulator: Process | None = None
    worker: Process | None = None
    watch = EndOffsets(cfg.kafka, [outcomes_topic])
    try:
        progress(f"simulator at {cfg.latency_ms:g} ms fixed latency on :{sim_port}")
        simulator = start_simulator(cfg.latency_ms, sim_port, logs / "simulator.log")
        await ensure_topics(settings, topics.all_topics())
        progress(f"publishing {cfg.queries:,} routed queries to {routed}")
        t0 = time.perf_counter()
        await produce_raw(cfg.kafka, routed, routed_backlog(cfg.queries))
        publish_s = time.perf_counter() - t0
        await watch.start()

        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
        env.update({
            "MODELYARD_KAFKA__BOOTSTRAP_SERVERS": cfg.kafka,
            "MODELYARD_TOPICS__PREFIX": prefix,
            "MODELYARD_OPS_PORT": str(ops_port),
            "MODELYARD_BACKEND_BASE_URL": f"http://127.0.0.1:{sim_port}/v1",
            "MODELYARD_BACKEND_TRANSPORT": cfg.transport,
            "MODELYARD_BACKEND_CLIENT": cfg.client,
            "MODELYARD_CONCURRENCY": str(cfg.concurrency),
            "MODELYARD_REQUEST_LOGPROBS": "true" if cfg.logprobs else "false",
            "MODELYARD_LOG_LEVEL": "WARNING",
            "MODELYARD_LOG_FORMAT": "console",
            **cfg.worker_env,
        })
        progress("starting one inference worker (pool slm)")
        worker = Process("worker", ["inference", "--pool", "slm"], env, f"http://127.0.0.1:{ops_port}/readyz", logs / "worker.log")
        worker.start()
        samples = await _sample_until_drained(cfg, watch, worker.pid, simulator.pid, sim_port, ops_port, progress)
        peak = _metric((http_get(f"http://127.0.0.1:{ops_port}/metrics") or b"").decode(), "modelyard_inference_in_flight_peak")
    finally:
        for proc in (worker, simulator):
            if proc is not None:
                proc.stop(20)
        await watch.stop()
        if worker is not None:
            await drop_topics(cfg.kafka, prefix)

    lo, hi = _at(samples, 0.1, cfg.queries), _at(samples, 0.9, cfg.queries)
    window_s = samples.t[hi] - samples.t[lo]
    done = samples.outcomes[hi] - samples.outcomes[lo]
    cpu = samples.cpu_s[hi] - samples.cpu_s[lo]
    sim_cpu = samples.simulator_cpu_s[hi] - samples.simulator_cpu_s[lo]
    def steady(series: list[float | None]) -> list[float]:
        return [v for v in series[lo:hi + 1] if v is not None]

    in_progress, calls, at_model = steady(samples.worker_in_progress), steady(samples.worker_in_flight), \
        steady(samples.model_in_flight)
    qps = done / window_s if window_s > 0 else float("nan")
    cpu_ms = 1000 * cpu / done if done else float("nan")
    return {
        "latency_ms": cfg.latency_ms,
        "queries": cfg.queries,
        "concurrency": cfg.concurrency,
        "transport": cfg.transport,
        "client": cfg.client,
        "logprobs": cfg.logprobs,
        "throughput_qps": round(qps, 1),
        "worker_cpu_pct": round(100 * cpu / window_s, 1) if window_s > 0 else None,
        "worker_cpu_ms_per_query": round(cpu_ms, 3),
        "saturation_qps_one_core": round(1000 / cpu_ms, 1) if cpu_ms == cpu_ms and cpu_ms > 0 else None,
        "simulator_cpu_pct": round(100 * sim_cpu / window_s, 1) if window_s > 0 else None,
        "simulator_cpu_ms_per_query": round(1000 * sim_cpu / done, 3) if done else None,
        "queries_in_progress_mean": round(statistics.fmean(in_progress), 1) if in_progress else None,
        "queries_in_progress_max_sampled": max(in_progress) if in_progress else None,
        "model_calls_in_flight_peak": int(peak) if peak is not None else None,
        "model_calls_in_flight_mean": round(statistics.fmean(calls), 1) if calls else None,
        "requests_at_model_mean": round(statistics.fmean(at_model), 1) if at_model else None,
        "requests_at_model_max_sampled": max(at_model) if at_model else None,
        "drain_s": round(samples.t[-1] - samples.t[0], 2),
        "publish_s": round(publish_s, 2),
        "logs": str(logs),
    }


async def _sample_until_drained(cfg: WorkerBench, watch: EndOffsets, pid: int, sim_pid: int, sim_port: int,
                                ops_port: int, progress: Callable[[str], None]) -> Samples:
    samples = Samples()
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + cfg.timeout_s
    last_report = 0.0
    while True:
        count = await watch.count()
        metrics_text, stats = await asyncio.gather(
            loop.run_in_executor(None, http_get, f"http://127.0.0.1:{ops_port}/metrics"),
            loop.run_in_executor(None, http_get, f"http://127.0.0.1:{sim_port}/admin/stats"),
        )
        now = time.perf_counter()
        if count > 0 or samples.t:  # the clock starts with the first outcome
            samples.t.append(now)
            samples.outcomes.append(count)
            samples.cpu_s.append(cpu_seconds(pid))
            samples.simulator_cpu_s.append(cpu_seconds(sim_pid))
            text = metrics_text.decode() if metrics_text else ""
            # a scrape that failed is no sample (None), not a zero
            samples.worker_in_progress.append(_metric(text, "modelyard_inference_records_in_progress"))
            samples.worker_in_flight.append(_metric(text, "modelyard_inference_in_flight"))
            samples.model_in_flight.append(float(json.loads(stats)["in_flight"]) if stats else None)
        if count >= cfg.queries:
            return samples
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count:,} of {cfg.queries:,} outcomes after {cfg.timeout_s:.0f}s")
        if now - last_report > 2:
            progress(f"{count:,} / {cfg.queries:,} outcomes")
            last_report = now
        await asyncio.sleep(0.25)  # scraping /metrics costs the worker CPU too: a few times a second only


# --------------------------------------------------------------------------------------------------
# SDK overhead


SDK_MESSAGES = [
    {"role": "system", "content": "You are the helpdesk agent of Acme. Answer briefly and precisely."},
    {"role": "user", "content": "How do I reset my password for the billing portal?"},
]
SDK_VARIANTS = (
    ("httpx2", "create"),
    ("httpx2", "lean"),
    ("aiohttp", "create"),
    ("aiohttp", "lean"),
)


def _cpu_self() -> float:
    return cpu_seconds(os.getpid())


async def _sdk_variant(base_url: str, transport: str, mode: str, calls: int, concurrency: int, logprobs: bool) -> float:
    """Client CPU milliseconds per call of one way to call the SDK."""
    import httpx2
    import orjson
    from openai import AsyncOpenAI, DefaultAioHttpClient, DefaultAsyncHttpxClient

    http = DefaultAioHttpClient() if transport == "aiohttp" else DefaultAsyncHttpxClient()
    client = AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0, http_client=http)
    body = {"model": "gpt-4o-mini", "messages": SDK_MESSAGES, "max_tokens": 512}
    if logprobs:
        body["logprobs"] = True

    async def call() -> str:
        if mode == "create":  # typed: request-body transform, pydantic response (logprobs included)
            reply = await client.chat.completions.create(**body)
            return reply.choices[0].message.content or ""
        response = await client.post("/chat/completions", cast_to=httpx2.Response, content=orjson.dumps(body),
                                     options={"headers": {"Content-Type": "application/json"}})
        return orjson.loads(response.content)["choices"][0]["message"]["content"] or ""

    slots = asyncio.Semaphore(concurrency)

    async def bounded() -> None:
        async with slots:
            await call()

    try:
        await asyncio.gather(*(bounded() for _ in range(min(concurrency, calls))))  # warm the pool
        started = _cpu_self()
        await asyncio.gather(*(bounded() for _ in range(calls)))
        return 1000 * (_cpu_self() - started) / calls
    finally:
        await client.close()


def bench_sdk(*, calls: int = 3_000, concurrency: int = 128, rounds: int = 2, logprobs: bool = True,
              progress: Callable[[str], None] = lambda s: None) -> dict:
    """Client CPU per chat-completion call for each SDK variant (best of ``rounds``), 0 ms simulator."""
    import uvloop

    port = free_port()
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / f"modelyard-bench-sdk-{port}"
    logs.mkdir(parents=True, exist_ok=True)
    simulator = start_simulator(0, port, logs / "simulator.log")
    results: dict[str, list[float]] = {f"{t}/{m}": [] for t, m in SDK_VARIANTS}
    try:
        for r in range(rounds):
            for transport, mode in SDK_VARIANTS:  # interleaved, so machine load hits every variant alike
                ms = uvloop.run(_sdk_variant(f"http://127.0.0.1:{port}/v1", transport, mode, calls, concurrency,
                                             logprobs))
                results[f"{transport}/{mode}"].append(ms)
                progress(f"round {r + 1}: {transport}/{mode} {ms:.2f} ms CPU per call")
    finally:
        simulator.stop(20)
    best = {k: round(min(v), 3) for k, v in results.items()}
    return {"calls": calls, "concurrency": concurrency, "logprobs": logprobs, "rounds": rounds,
            "cpu_ms_per_call": best, "all_rounds": {k: [round(x, 3) for x in v] for k, v in results.items()}}
