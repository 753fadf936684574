"""Run modelyard's services as real processes against the real broker and MongoDB-protocol server.

System tests (and the fault suite) use this: every service is the same `modelyard <service>` command
an operator runs, isolated from other tests by a topic prefix and a database of its own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELYARD = str(REPO / ".venv" / "bin" / "modelyard")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except OSError:
        return False


def wait_until(predicate, timeout_s: float, what: str, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Process:
    name: str
    args: list[str]
    env: dict[str, str]
    ready_url: str
    log_path: Path
    popen: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.popen = subprocess.Popen([MODELYARD, *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        def ready() -> bool:
            if self.popen is not None and self.popen.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode} during start-up:\n{tail}")
            return http_ok(self.ready_url)

        wait_until(ready, timeout_s, f"{self.name} to be ready at {self.ready_url} (log: {self.log_path})")

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, exactly like a crash."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        if self.popen is None or self.popen.poll() is not None:
            return self.popen.returncode if self.popen else None
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(10)


@dataclass
class Stack:
    """One isolated modelyard deployment: its own topic prefix, database and ports."""

    kafka: str
    mongo_url: str
    prefix: str
    database: str
    log_dir: Path
    simulator_env: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    simulator_url: str = ""
    api_url: str = ""

    def topic(self, name: str) -> str:
        """The full name of a topic of this deployment (under its prefix)."""
        return f"{self.prefix}{name}"

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
        env.update({
            "MODELYARD_KAFKA__BOOTSTRAP_SERVERS": self.kafka,
            "MODELYARD_KAFKA__PARTITIONS": "4",
            "MODELYARD_MONGO__URL": self.mongo_url,
            "MODELYARD_MONGO__DATABASE": self.database,
            "MODELYARD_TOPICS__PREFIX": self.prefix,
            "MODELYARD_LOG_FORMAT": "console",
            "MODELYARD_SHUTDOWN_TIMEOUT_S": "10",
            **self.extra_env,
            **overrides,
        })
        return env

    def add(self, name: str, args: list[str], ready_path: str, **env: str) -> Process:
        port = free_port()
        if args[0] in ("tenant",):
            env.setdefault("MODELYARD_API_PORT", str(port))
        elif args[0] == "simulator":
            env.setdefault("MODELYARD_SIMULATOR_PORT", str(port))
        elif args[0] == "ingress":
            env.setdefault("MODELYARD_INGRESS_PORT", str(port))
        else:
            env.setdefault("MODELYARD_OPS_PORT", str(port))
        proc = Process(name, args, self.env(**env), f"http://127.0.0.1:{port}{ready_path}", self.log_dir / f"{name}.log")
        self.processes[name] = proc
        return proc

    def start(self, *names: str, timeout_s: float = 90.0) -> None:
        for name in names:
            self.processes[name].start()
        for name in names:
            self.processes[name].wait_ready(timeout_s)

    def restart(self, name: str) -> None:
        proc = self.processes[name]
        proc.start()
        proc.wait_ready()

    def stop(self) -> None:
        for proc in reversed(list(self.processes.values())):
            proc.stop()


def isolated_stack(kafka: str, mongo_url: str, prefix: str, log_dir: Path | None = None, **fields) -> Stack:
    """An empty deployment under ``prefix``: a database named after it, logs in .run/test-logs/<prefix>."""
    log_dir = log_dir or REPO / ".run" / "test-logs" / prefix.rstrip(".")
    log_dir.mkdir(parents=True, exist_ok=True)
    return Stack(kafka, mongo_url, prefix, f"t_{prefix.strip('.').replace('-', '_')}", log_dir, **fields)


def build_stack(kafka: str, mongo_url: str, prefix: str, log_dir: Path | None = None, *,
                simulator_env: dict[str, str] | None = None, extra_env: dict[str, str] | None = None,
                with_tenant_api: bool = True) -> Stack:
    """Declare the full pipeline: simulator, router, both inference pools, metering (and the tenant API)."""
    stack = isolated_stack(kafka, mongo_url, prefix, log_dir, simulator_env=simulator_env or {},
                           extra_env=extra_env or {})
    sim = stack.add("simulator", ["simulator"], "/v1/models", **stack.simulator_env)
    stack.simulator_url = sim.ready_url.removesuffix("/models")
    backend = {"MODELYARD_BACKEND_BASE_URL": stack.simulator_url}
    stack.add("router", ["router"], "/readyz")
    stack.add("inference-slm", ["inference", "--pool", "slm"], "/readyz", **backend)
    stack.add("inference-llm", ["inference", "--pool", "llm"], "/readyz", **backend)
    stack.add("metering", ["metering"], "/readyz")
    if with_tenant_api:
        tenant = stack.add("tenant", ["tenant"], "/healthz")
        stack.api_url = tenant.ready_url.removesuffix("/healthz")
    return stack


if __name__ == "__main__":  # manual use: python tests/stack.py  (starts a stack on the dev servers)
    s = build_stack(os.environ.get("MODELYARD_TEST_KAFKA", "127.0.0.1:9092"),
                    os.environ.get("MODELYARD_TEST_MONGO_URL", "mongodb://127.0.0.1:27017"),
                    f"manual{int(time.time())}.", REPO / ".run" / "manual-logs")
    s.start(*s.processes)
    print("stack ready:", {n: p.ready_url for n, p in s.processes.items()}, file=sys.stderr)
    try:
        signal.pause()
    finally:
        s.stop()
