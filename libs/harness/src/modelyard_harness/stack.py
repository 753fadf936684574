"""A whole modelyard deployment as real processes, isolated by a topic prefix and a database of its own.

System tests (and the fault suite) use it: every service is the same `modelyard <service>` command
an operator runs, against the real broker and MongoDB-protocol server. Helpers to act as an upstream
system (create a tenant through the API, publish queries, group outcomes) live here too.
"""

from __future__ import annotations

import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import ConsumerRecord

from modelyard_events import QueryOutcome, QuerySubmitted

from .kafka import produce_raw
from .processes import Process, free_port

#: The development admin token (``modelyard_tenancy.DEV_ADMIN_TOKEN``) as a header: stacks run with it.
ADMIN = {"Authorization": "Bearer dev-admin-token"}


#: The variable that sets a command's HTTP port; every other command serves its ops endpoints on MODELYARD_OPS_PORT.
PORT_VARIABLES = {
    "tenant": "MODELYARD_API_PORT",
    "simulator": "MODELYARD_SIMULATOR_PORT",
    "ingress": "MODELYARD_INGRESS_PORT",
    "dashboard": "MODELYARD_DASHBOARD_PORT",
}


def unique_prefix(name: str) -> str:
    """A topic prefix no other run uses: ``t<8 hex>-<name>.``."""
    return f"t{uuid.uuid4().hex[:8]}-{name}."


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
    #: Where each process's HTTP port comes from (a benchmark confined to a port range gives its own).
    port_source: Callable[[], int] = free_port

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
        port = self.port_source()
        env.setdefault(PORT_VARIABLES.get(args[0], "MODELYARD_OPS_PORT"), str(port))
        proc = Process(name, args, self.env(**env), f"http://127.0.0.1:{port}{ready_path}", self.log_dir / f"{name}.log")
        self.processes[name] = proc
        return proc

    def start(self, *names: str, timeout_s: float = 90.0) -> None:
        for name in names:
            self.processes[name].start()
        for name in names:
            self.processes[name].wait_ready(timeout_s)

    @contextmanager
    def running(self, timeout_s: float = 90.0) -> Iterator[Stack]:
        """Every process started and ready for the block, all stopped after it (also those already up when
        another never got ready)."""
        try:
            self.start(*self.processes, timeout_s=timeout_s)
            yield self
        finally:
            self.stop()

    def restart(self, name: str) -> None:
        proc = self.processes[name]
        proc.start()
        proc.wait_ready()

    def stop(self) -> None:
        for proc in reversed(list(self.processes.values())):
            proc.stop()


def isolated_stack(kafka: str, mongo_url: str, prefix: str, log_dir: Path | None = None, **fields: Any) -> Stack:
    """An empty deployment under ``prefix``: a database named after it, logs in ``log_dir``
    (default: ``.run/test-logs/<prefix>`` under the working directory)."""
    log_dir = log_dir or Path.cwd() / ".run" / "test-logs" / prefix.rstrip(".")
    log_dir.mkdir(parents=True, exist_ok=True)
    return Stack(kafka, mongo_url, prefix, f"t_{prefix.strip('.').replace('-', '_')}", log_dir, **fields)


def build_stack(kafka: str, mongo_url: str, prefix: str, log_dir: Path | None = None, *,
                simulator_env: dict[str, str] | None = None, extra_env: dict[str, str] | None = None,
                with_tenant_api: bool = True, single_process: bool = False,
                port_source: Callable[[], int] = free_port) -> Stack:
    """Declare the full pipeline: simulator, router, both inference pools, metering (and the tenant API);
    ``single_process``: the four as one `modelyard serve --all` process named ``serve-all``."""
    stack = isolated_stack(kafka, mongo_url, prefix, log_dir, simulator_env=simulator_env or {},
                           extra_env=extra_env or {}, port_source=port_source)
    sim = stack.add("simulator", ["simulator"], "/v1/models", **stack.simulator_env)
    stack.simulator_url = sim.ready_url.removesuffix("/models")
    backend = {"MODELYARD_BACKEND_BASE_URL": stack.simulator_url}
    if single_process:
        stack.add("serve-all", ["serve", "--all"], "/readyz", **backend)
    else:
        stack.add("router", ["router"], "/readyz")
        stack.add("inference-slm", ["inference", "--pool", "slm"], "/readyz", **backend)
        stack.add("inference-llm", ["inference", "--pool", "llm"], "/readyz", **backend)
        stack.add("metering", ["metering"], "/readyz")
    if with_tenant_api:
        tenant = stack.add("tenant", ["tenant"], "/healthz")
        stack.api_url = tenant.ready_url.removesuffix("/healthz")
    return stack


# --------------------------------------------------------------------------------------------------
# Acting as the upstream system


async def create_tenant(api_url: str, name: str, *, industry: str = "tech", tier: str = "basic",
                        headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Create an organisation through the tenant API (as the platform administrator); its JSON."""
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as http:
        resp = await http.post("/v1/tenants", headers=headers or ADMIN, json={
            "organization_name": name, "admin_email": f"admin@{name.lower().replace(' ', '')}.example",
            "industry": industry, "subscription_tier": tier,
        })
        resp.raise_for_status()
        return resp.json()


async def publish_queries(kafka: str, topic: str, queries: list[QuerySubmitted]) -> None:
    """Publish submitted queries as an upstream system does: keyed by tenant."""
    await produce_raw(kafka, topic, [(q.tenant_id.encode(), q.model_dump_json().encode()) for q in queries])


def outcomes_by_query(records: list[ConsumerRecord]) -> dict[str, list[QueryOutcome]]:
    out: dict[str, list[QueryOutcome]] = defaultdict(list)
    for r in records:
        o = QueryOutcome.model_validate_json(r.value)
        out[o.query_id].append(o)
    return out
