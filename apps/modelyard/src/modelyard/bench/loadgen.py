"""A lean closed-loop HTTP/1.1 load generator on asyncio streams.

Benchmarks on a 2-core machine share the CPU with what they measure, so the client must be cheap:
one keep-alive connection per worker, requests pre-encoded as bytes, responses read by
Content-Length (or chunked), no JSON parsing. General-purpose clients (httpx) spend several times
more CPU per request at this concurrency and would measure themselves.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit


def encode_post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[str, int, bytes]:
    """``(host, port, request bytes)`` of a keep-alive POST of a JSON body."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"only http:// URLs are supported, not {url!r}")
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
             f"Content-Length: {len(body)}", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """``(status, body, keep_alive)`` of one HTTP/1.1 response."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length: int | None = None
    chunked = False
    keep_alive = True
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and value.strip().lower() == b"close":
            keep_alive = False
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers are sent by the servers measured here
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return status, b"".join(parts), keep_alive
    if length is None:
        return status, await reader.read(), False
    return status, await reader.readexactly(length), keep_alive


@dataclass
class LoadResult:
    seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)  # successful (2xx) requests only
    statuses: Counter = field(default_factory=Counter)
    connection_errors: int = 0
    marked: int = 0  # 2xx responses whose body contains the marker

    @property
    def ok(self) -> int:
        return len(self.latencies_s)

    @property
    def failed(self) -> int:
        return sum(n for s, n in self.statuses.items() if not 200 <= s < 300) + self.connection_errors

    def percentile_ms(self, q: float) -> float | None:
        if not self.latencies_s:
            return None
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def summary(self) -> dict:
        return {
            "requests": self.ok + self.failed,
            "ok": self.ok,
            "failed": self.failed,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "seconds": round(self.seconds, 3),
            "requests_per_s": round(self.ok / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": _round(self.percentile_ms(0.50)),
            "p90_ms": _round(self.percentile_ms(0.90)),
            "p99_ms": _round(self.percentile_ms(0.99)),
            "max_ms": _round(max(self.latencies_s) * 1000 if self.latencies_s else None),
        }


def _round(v: float | None) -> float | None:
    return round(v, 2) if v is not None else None


#: One request's exchange on an open connection: reads the response (the request was written at
#: ``started``), records what it measures, returns whether the connection may be kept.
Exchange = Callable[[asyncio.StreamReader, float], Awaitable[bool]]


async def closed_loop(requests: list[tuple[str, int, bytes]], *, concurrency: int, seconds: float, exchange: Exchange,
                      on_connection_error: Callable[[], None], request_timeout_s: float = 120.0) -> float:
    """``concurrency`` workers send the requests round-robin, back to back, for ``seconds``; the seconds taken."""
    if not requests:
        raise ValueError("no requests to send")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    counter = 0

    async def worker() -> None:
        nonlocal counter
        reader = writer = None
        try:
            while loop.time() < deadline:
                host, port, raw = requests[counter % len(requests)]
                counter += 1
                try:
                    if writer is None:
                        reader, writer = await asyncio.open_connection(host, port)
                    started = time.perf_counter()
                    writer.write(raw)
                    keep_alive = await asyncio.wait_for(exchange(reader, started), request_timeout_s)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
                    on_connection_error()
                    if writer is not None:
                        writer.close()
                    reader = writer = None
                    await asyncio.sleep(0.05)  # a refused connection must not spin
                    continue
                if not keep_alive:
                    writer.close()
                    reader = writer = None
        finally:
            if writer is not None:
                writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def run_load(requests: list[tuple[str, int, bytes]], *, concurrency: int, seconds: float,
                   marker: bytes | None = None, request_timeout_s: float = 120.0) -> LoadResult:
    """``concurrency`` workers send the requests round-robin, back to back, for ``seconds``."""
    result = LoadResult()

    async def exchange(reader: asyncio.StreamReader, started: float) -> bool:
        status, body, keep_alive = await read_response(reader)
        elapsed = time.perf_counter() - started
        result.statuses[status] += 1
        if 200 <= status < 300:
            result.latencies_s.append(elapsed)
            if marker is not None and marker in body:
                result.marked += 1
        return keep_alive

    def connection_error() -> None:
        result.connection_errors += 1

    result.seconds = await closed_loop(requests, concurrency=concurrency, seconds=seconds, exchange=exchange,
                                       on_connection_error=connection_error, request_timeout_s=request_timeout_s)
    return result
