"""`modelyard bench pipeline --variants ...`: deployments compared side by side in one run.

Each variant is a whole stack of real processes (``modelyard_harness.build_stack``: simulator, tenant API,
and the pipeline as four processes or one `serve --all`) under a topic prefix and database of its own,
on the broker and MongoDB-protocol server given, with the model-call client it names. The variants run
one after another, interleaved over ``rounds`` (A B C, then C B A, ...) so that on a shared machine they
see the same load; each run is the same phases as against `make up` (warm-up, fixed rate, maximum rate)
and records the load average before and after it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from modelyard_core.settings import KafkaSettings, Settings, Topics
from modelyard_harness import Stack, build_stack, unique_prefix
from modelyard_harness.kafka import drop_run

from .pipeline import _run, service_pids, simulator_zero_latency
from .router import _py_spy, _summarise_profile

#: variant → (one `serve --all` process?, MODELYARD_BACKEND_CLIENT)
VARIANTS = {
    "separate-openai": (False, "openai"),
    "separate-lean": (False, "lean"),
    "all-openai": (True, "openai"),
    "all-lean": (True, "lean"),
}


def parse_variant(spec: str) -> tuple[str, dict[str, str]]:
    """``base[+NAME=VALUE...]`` → (base variant, extra environment of its processes): a setting changed in
    one variant only, so that a change is measured before and after in the same run
    (``separate-lean+MODELYARD_SUBMITTED_LINGER_MS=0``)."""
    base, *assignments = spec.split("+")
    if base not in VARIANTS:
        raise ValueError(f"unknown variant {base!r} in {spec!r}: one of {', '.join(VARIANTS)}")
    env = {}
    for a in assignments:
        name, eq, value = a.partition("=")
        if not eq or not name.startswith("MODELYARD_"):
            raise ValueError(f"{a!r} in {spec!r} is not MODELYARD_NAME=VALUE")
        env[name] = value
    return base, env


#: Processes that are not the deployment under test.
NOT_SERVICES = {"bench (load generator)"}
#: ... and that a production deployment does not run beside it.
NOT_PIPELINE = NOT_SERVICES | {"simulator"}


class PortRange:
    """HTTP ports from a range the run was given, skipping any in use."""

    def __init__(self, first: int, last: int) -> None:
        self.next, self.last = first, last

    def __call__(self) -> int:
        while self.next <= self.last:
            port, self.next = self.next, self.next + 1
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
        raise RuntimeError(f"no free port left in the range up to {self.last}")


@dataclass
class VariantRun:
    kafka: str
    mongo_url: str
    infra_run_dir: Path  # where kafka.sh / ferretdb.sh keep their pid files (their CPU counts too)
    port_first: int
    port_last: int
    rate: float
    seconds: float
    warmup_s: float
    queries: int
    tenants: int
    timeout_s: float
    log_dir: Path
    #: Record the SLM worker (or the single process) with py-spy during the maximum-rate phase of these variants.
    profile: tuple[str, ...] = ()
    native: bool = True
    #: Seconds of soak at ``rate`` after the maximum-rate phase, sampling every process's memory (0: none).
    soak_s: float = 0.0


def _total(cpu: dict[str, float], leave_out: set[str]) -> float:
    return round(sum(v for k, v in cpu.items() if k not in leave_out), 3)


async def start_stack(cfg: VariantRun, variant: str, ports: PortRange, console: Console, round_no: int) -> Stack:
    """The variant's stack, started. The range's ports are also the kernel's ephemeral ones: a client
    connection can take one between the check and the bind, so a clash starts over on the next ports."""
    base, env = parse_variant(variant)
    single, client = VARIANTS[base]
    loop = asyncio.get_running_loop()
    for attempt in range(3):
        stack = build_stack(cfg.kafka, cfg.mongo_url, unique_prefix(f"bench-{base}"), cfg.log_dir / variant,
                            extra_env={"MODELYARD_BACKEND_CLIENT": client, **env}, single_process=single,
                            port_source=ports)
        console.print(f"[bold]{variant}[/bold] (round {round_no}): starting {', '.join(stack.processes)} ...")
        try:
            await loop.run_in_executor(None, lambda: stack.start(*stack.processes, timeout_s=180))
            return stack
        except RuntimeError as exc:
            await loop.run_in_executor(None, stack.stop)
            if "address already in use" not in str(exc) or attempt == 2:
                raise
            console.print(f"[yellow]a port was taken meanwhile; starting over ({exc!s:.80})[/yellow]")
    raise AssertionError("unreachable")


async def run_variant(cfg: VariantRun, variant: str, ports: PortRange, console: Console, round_no: int) -> dict:
    single, client = VARIANTS[parse_variant(variant)[0]]
    stack = await start_stack(cfg, variant, ports, console, round_no)
    loop = asyncio.get_running_loop()
    try:
        await simulator_zero_latency(stack.simulator_url.removesuffix("/v1"), True)
        pids = {name: p.pid for name, p in stack.processes.items()}
        pids.update({n: p for n, p in service_pids(cfg.infra_run_dir).items() if n in ("kafka", "ferretdb")})
        settings = Settings(_env_file=None, kafka=KafkaSettings(bootstrap_servers=cfg.kafka, partitions=4),
                            topics=Topics(prefix=stack.prefix))
        load_before = os.getloadavg()
        target = stack.processes["serve-all" if single else "inference-slm"]
        profiler = _profile(cfg, variant, target.pid) if variant in cfg.profile else None
        result = await _run(console, settings, api_url=stack.api_url, rate=cfg.rate, seconds=cfg.seconds,
                            queries=cfg.queries, tenants=cfg.tenants, soak_s=cfg.soak_s, timeout_s=cfg.timeout_s,
                            run_dir=cfg.infra_run_dir, warmup_s=cfg.warmup_s, pids=pids, raw_phase=False)
        if profiler is not None:
            result.update(_profile_stop(*profiler))
        cpu = result["cpu_ms_per_query"]
        result.update({
            "variant": variant, "round": round_no, "client": client, "single_process": single,
            "cpu_ms_per_query_all_services": _total(cpu, NOT_SERVICES),
            "cpu_ms_per_query_pipeline": _total(cpu, NOT_PIPELINE),
            "cores_at_fixed_rate_all_services": _total(result["cores_at_fixed_rate"], NOT_SERVICES),
            "load_avg_1m_before": round(load_before[0], 2), "load_avg_1m_after": round(os.getloadavg()[0], 2),
        })
        return result
    finally:
        await loop.run_in_executor(None, stack.stop)
        try:
            await drop_run(cfg.kafka, stack.prefix, cfg.mongo_url, stack.database)
        except Exception as exc:  # noqa: BLE001 - leftovers of a bench run are not worth failing it
            console.print(f"[yellow]could not drop {stack.prefix}: {exc!r}[/yellow]")


def _profile(cfg: VariantRun, variant: str, pid: int) -> tuple[subprocess.Popen, Path]:
    """py-spy on ``pid`` from now until the run's end (warm-up and fixed rate included: the maximum-rate
    phase is most of its samples)."""
    out = cfg.log_dir / f"{variant}.pyspy.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    args = [_py_spy(), "record", "--pid", str(pid), "--format", "raw", "--rate", "97", "--output", str(out)]
    # --native cannot sample without pausing the process; without it, py-spy reads it running
    args.append("--native" if cfg.native else "--nonblocking")
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT), out


def _profile_stop(proc: subprocess.Popen, out: Path) -> dict:
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    if not out.exists():
        return {"profile": None}
    return {"profile": str(out), "profile_top": [
        {"frame": f, "inclusive": round(inc, 3), "self": round(own, 3)} for f, inc, own in _summarise_profile(out, top=15)]}


async def run_variants(cfg: VariantRun, variants: list[str], rounds: int, console: Console) -> dict:
    ports = PortRange(cfg.port_first, cfg.port_last)
    runs: list[dict] = []
    started = time.time()
    for r in range(rounds):
        for variant in variants if r % 2 == 0 else list(reversed(variants)):
            ports.next = cfg.port_first  # the previous stack has stopped: its ports are free again
            runs.append(await run_variant(cfg, variant, ports, console, r + 1))
    table = Table(title=f"bench pipeline: variants side by side (fixed rate {cfg.rate:g} q/s; loaded shared machine)")
    for col in ("variant", "round", "q/s max", "CPU ms/q all services", "... pipeline only", "p50 ms", "p99 ms",
                "lost", "load before/after"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for x in runs:
        table.add_row(x["variant"], str(x["round"]), f"{x['throughput_qps']:,.0f}", f"{x['cpu_ms_per_query_all_services']:.2f}",
                      f"{x['cpu_ms_per_query_pipeline']:.2f}", f"{x['p50_ms']:.1f}", f"{x['p99_ms']:.1f}", str(x["lost"]),
                      f"{x['load_avg_1m_before']:.1f}/{x['load_avg_1m_after']:.1f}")
    console.print(table)
    return {"variants": variants, "rounds": rounds, "runs": runs, "started_unix": round(started),
            "seconds": round(time.time() - started), "cpus": os.cpu_count()}
