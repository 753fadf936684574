"""The HTTP side of a model call, two ways: the ``openai`` SDK, or a lean aiohttp client (``backend_client``).

Both send a body the backend encoded once (orjson) to ``<base_url>/chat/completions`` and hand back the
raw answer (or, streamed, its lines); ``Backend`` decodes it (``completions``) and owns retries, the
deadline of each attempt and the circuit breaker, so the two differ only in what sits between the body
and the socket:

* ``SdkClient`` — ``AsyncOpenAI.post`` on the SDK's aiohttp (or httpx) transport: the SDK's option
  merging, header building, response wrapping and error classes on every call.
* ``LeanClient`` — one ``aiohttp.ClientSession`` (one pool of persistent connections, its headers set
  once) and nothing else: about 1.6 ms of a worker's 2.1–2.7 ms of CPU per query was the SDK's request
  path (issue 22, docs/benchmarks.md). Its errors say what the SDK's say: a status error carries the
  same ``status_code``, ``body`` (the ``error`` object of OpenAI's error shape, or the text) and
  message (``Error code: 400 - <message>``), so ``backend.classify``/``model_error`` treat both alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

import aiohttp
import httpx2
import orjson
from openai import AsyncOpenAI, DefaultAioHttpClient, DefaultAsyncHttpxClient

from .settings import InferenceSettings


class ModelClient(Protocol):
    async def post(self, body: bytes) -> bytes: ...

    def stream(self, body: bytes) -> Any: ...  # an async context manager of the response's text lines

    async def probe(self) -> None: ...

    async def close(self) -> None: ...


class StatusFailure(Exception):
    """The lean client's HTTP error status, shaped as ``openai.APIStatusError`` is."""

    def __init__(self, status_code: int, raw: bytes, headers: Mapping[str, str]) -> None:
        self.status_code = status_code
        self.headers = headers
        text = raw.decode("utf-8", "replace").strip()
        body: Any = text or None
        message = f"Error code: {status_code}"
        try:
            body = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        else:
            inner = body.get("error", body) if isinstance(body, dict) else None
            if isinstance(inner, dict) and isinstance(inner.get("message"), str) and inner["message"]:
                message += f" - {inner['message']}"
        self.body = body.get("error", body) if isinstance(body, dict) else body
        self.message = message
        super().__init__(message)


class ConnectionFailed(Exception):
    """The lean client could not reach the backend or lost the connection before the answer was read."""


# --------------------------------------------------------------------------------------------------
# The openai SDK


_JSON = {"headers": {"Content-Type": "application/json"}}
#: The SDK's raw-response mode with the body left unread: a streamed call reads it as it comes.
_RAW_STREAM = {"headers": {"Content-Type": "application/json", "X-Stainless-Raw-Response": "stream"}}


def make_sdk(settings: InferenceSettings) -> AsyncOpenAI:
    """The pool's SDK client: one connection per call in flight, the SDK's retries off."""
    # The SDK's per-request timeout is a backstop; each attempt runs under the backend's own deadline.
    timeout = httpx2.Timeout(settings.backend_timeout_s + 1.0)
    limits = httpx2.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency)
    http_cls = DefaultAioHttpClient if settings.backend_transport == "aiohttp" else DefaultAsyncHttpxClient
    return AsyncOpenAI(base_url=settings.backend_base_url, api_key=settings.backend_api_key, timeout=timeout,
                       max_retries=0, http_client=http_cls(timeout=timeout, limits=limits))


class SdkClient:
    """The chat-completions call through the SDK's generic ``post`` (no typed request/response layer)."""

    def __init__(self, sdk: AsyncOpenAI) -> None:
        self.sdk = sdk

    async def post(self, body: bytes) -> bytes:
        response = await self.sdk.post("/chat/completions", cast_to=httpx2.Response, content=body, options=_JSON)
        return response.content

    @asynccontextmanager
    async def stream(self, body: bytes) -> AsyncIterator[AsyncIterator[str]]:
        response = await self.sdk.post("/chat/completions", cast_to=httpx2.Response, content=body, options=_RAW_STREAM)
        try:
            yield response.aiter_lines()
        finally:
            await response.aclose()

    async def probe(self) -> None:
        # The SDK's one-off set-up (it probes the platform in a thread on its first request) happens here.
        await self.sdk.get("/models", cast_to=httpx2.Response)

    async def close(self) -> None:
        await self.sdk.close()


# --------------------------------------------------------------------------------------------------
# The lean client


class LeanClient:
    """One aiohttp session per backend: persistent connections (up to ``concurrency``), headers built once."""

    def __init__(self, settings: InferenceSettings) -> None:
        base = settings.backend_base_url.rstrip("/")
        self.url = f"{base}/chat/completions"
        self.models_url = f"{base}/models"
        self.concurrency = settings.concurrency
        self.timeout_s = settings.backend_timeout_s + 1.0  # a backstop, as the SDK's
        self.headers = {"Authorization": f"Bearer {settings.backend_api_key}", "Content-Type": "application/json",
                        "Accept": "application/json", "User-Agent": "modelyard-inference"}
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use: an aiohttp session belongs to the running event loop, which the
        # composition root (create_app) does not have yet.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.concurrency, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, headers=self.headers,
                                                  timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        return self._session

    async def post(self, body: bytes) -> bytes:
        try:
            async with self._open().post(self.url, data=body) as response:
                raw = await response.read()
        except aiohttp.ClientError as exc:
            if isinstance(exc, TimeoutError):
                raise
            raise ConnectionFailed(f"{type(exc).__name__}: {exc}"[:300]) from exc
        if response.status >= 400:
            raise StatusFailure(response.status, raw, response.headers)
        return raw

    @asynccontextmanager
    async def stream(self, body: bytes) -> AsyncIterator[AsyncIterator[str]]:
        try:
            response = await self._open().post(self.url, data=body, headers={"Accept": "text/event-stream"})
        except aiohttp.ClientError as exc:
            if isinstance(exc, TimeoutError):
                raise
            raise ConnectionFailed(f"{type(exc).__name__}: {exc}"[:300]) from exc
        try:
            if response.status >= 400:
                raise StatusFailure(response.status, await response.read(), response.headers)
            yield _lines(response)
        finally:
            response.release()

    async def probe(self) -> None:
        async with self._open().get(self.models_url) as response:
            await response.read()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _lines(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
    try:
        async for line in response.content:
            yield line.decode()
    except aiohttp.ClientError as exc:
        if isinstance(exc, TimeoutError):
            raise
        raise ConnectionFailed(f"{type(exc).__name__}: {exc}"[:300]) from exc


def make_client(settings: InferenceSettings) -> ModelClient:
    """The client ``backend_client`` names."""
    return LeanClient(settings) if settings.backend_client == "lean" else SdkClient(make_sdk(settings))
