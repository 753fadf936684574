"""modelyard processes seen from outside: start one, wait until it answers, measure it, stop it.

The test plugin's stack and every benchmark start services the way an operator does (the `modelyard`
command, or a module run by this interpreter), each with its own port and log file.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psutil

T = TypeVar("T")


def modelyard_command() -> str:
    """The `modelyard` console script of the running interpreter's environment (else the one on the PATH)."""
    beside = Path(sys.executable).with_name("modelyard")
    if beside.exists():
        return str(beside)
    return shutil.which("modelyard") or str(beside)


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 1.0) -> bytes | None:
    """The body of a 2xx answer to GET ``url``, or None (no answer, or another status)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read() if 200 <= resp.status < 300 else None
    except OSError:
        return None


def http_ok(url: str, timeout: float = 1.0) -> bool:
    return http_get(url, timeout) is not None


def wait_until(predicate: Callable[[], T], timeout_s: float, what: str, interval: float = 0.05) -> T:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def rss_mb(pid: int) -> float:
    """Resident memory of the process, in MiB."""
    return psutil.Process(pid).memory_info().rss / 2**20


@dataclass
class Process:
    """One service process: ``command`` (default: the `modelyard` command) plus ``args``, ready when
    ``ready_url`` answers 2xx, its output in ``log_path``."""

    name: str
    args: list[str]
    env: dict[str, str]
    ready_url: str
    log_path: Path
    command: list[str] = field(default_factory=lambda: [modelyard_command()])
    popen: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was not started"
        return self.popen.pid

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.popen = subprocess.Popen([*self.command, *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        def ready() -> bool:
            if self.popen is not None and self.popen.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode} during start-up:\n{tail}")
            return http_ok(self.ready_url)

        wait_until(ready, timeout_s, f"{self.name} to be ready at {self.ready_url} (log: {self.log_path})")

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.running():
            assert self.popen is not None
            self.popen.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, exactly like a crash."""
        if self.running():
            assert self.popen is not None
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (a graceful shutdown), SIGKILL after ``timeout_s``; the exit code."""
        if self.popen is None or self.popen.poll() is not None:
            return self.popen.returncode if self.popen else None
        self.popen.send_signal(signal.SIGCONT)  # a frozen process (SIGSTOP) cannot shut down
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(10)
