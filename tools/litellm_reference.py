"""The LiteLLM reference of issue 22: modelyard's HTTP ingress and a LiteLLM proxy in front of the same
simulator, measured by the same load generator (`modelyard bench http --reference-url`) in one run.

It starts a stack of real processes (simulator, tenant API, router, both pools, metering, ingress) on the
broker and MongoDB-protocol server given, and `litellm --config <one model: the simulator> --num_workers 2`
(``--timeout_worker_healthcheck 60``: only a longer start-up allowance; installed apart from the project: ``uv venv .cache/litellm-venv && uv pip install --python
.cache/litellm-venv/bin/python 'litellm[proxy]'``). Then it runs ``bench http`` ``--rounds`` times at
concurrency 16, writes each round's JSON to ``--out``, and stops everything.

    .venv/bin/python tools/litellm_reference.py --kafka 127.0.0.1:39192 --mongo-url mongodb://127.0.0.1:38117 \\
        --litellm .cache/litellm-venv/bin/litellm --ports 39200-39280 --litellm-port 39290 --out .run/litellm
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from modelyard.bench.variants import PortRange
from modelyard_harness import build_stack, unique_prefix

MASTER_KEY = "sk-bench-master"


def wait_for_litellm(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"LiteLLM did not answer at {url} within {timeout_s:g} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kafka", required=True)
    parser.add_argument("--mongo-url", required=True)
    parser.add_argument("--litellm", required=True, help="the litellm command of its own environment")
    parser.add_argument("--ports", default="39200-39280", help="HTTP ports of the stack's processes, FIRST-LAST")
    parser.add_argument("--litellm-port", type=int, default=39290)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--out", type=Path, default=Path(".run/litellm"))
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    first, _, last = args.ports.partition("-")
    stack = build_stack(args.kafka, args.mongo_url, unique_prefix("bench-litellm"), args.out / "logs",
                        port_source=PortRange(int(first), int(last or first)))
    ingress = stack.add("ingress", ["ingress"], "/readyz")
    stack.start(*stack.processes, timeout_s=180)
    config = args.out / "litellm.yaml"
    config.write_text(f"model_list:\n  - model_name: gpt-4o-mini\n    litellm_params:\n      model: openai/gpt-4o-mini\n"
                      f"      api_base: {stack.simulator_url}\n      api_key: simulator\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env.update(LITELLM_MASTER_KEY=MASTER_KEY, LITELLM_LOCAL_MODEL_COST_MAP="True")  # no internet: its bundled prices
    with open(args.out / "litellm.log", "ab") as log:
        litellm = subprocess.Popen([args.litellm, "--config", str(config), "--port", str(args.litellm_port),
                                    # uvicorn kills a worker that does not answer its health check within
                                    # 5 s, which LiteLLM's start-up on a loaded 2-core machine often does not
                                    "--num_workers", "2", "--timeout_worker_healthcheck", "60"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    reference = f"http://127.0.0.1:{args.litellm_port}"
    try:
        wait_for_litellm(reference, 240)
        modelyard = str(Path(sys.executable).with_name("modelyard"))
        for r in range(1, args.rounds + 1):
            print(f"round {r}: load average {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
            done = subprocess.run([modelyard, "bench", "http", "--concurrency", "16", "--seconds", str(args.seconds),
                                   "--ingress-url", ingress.ready_url.removesuffix("/readyz"),
                                   "--simulator-url", stack.simulator_url, "--api-url", stack.api_url,
                                   "--reference-url", reference, "--reference-key", MASTER_KEY],
                                  capture_output=True, text=True, check=True)
            sys.stderr.write(done.stdout)
            (args.out / f"round{r}.json").write_text(done.stdout.strip().splitlines()[-1])
            print(f"after round {r}: load average {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
    finally:
        os.killpg(litellm.pid, signal.SIGTERM)
        try:
            litellm.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(litellm.pid, signal.SIGKILL)
        stack.stop()


if __name__ == "__main__":
    main()
