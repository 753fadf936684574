"""The learned models a router serves: the configured file and what ``router.models`` publishes.

A model is published in two steps (``publish``): its file goes into the router's database under the
sha256 of its bytes (a model can be larger than a Kafka record may be), then a ``RouterModelPublished``
naming it goes onto the compacted ``router.models`` topic under the model's name. Every router replica
reads the topic as a view (``ModelRegistry``): on a new version of a name it fetches the file, checks
its digest, builds a scorer and swaps it in; an older version never replaces a newer one, so every
replica serves the same sequence of models. A tombstone withdraws a name.

Which model decides a query: the tenant's named model if its policy names one and it is published,
else the published ``default``, else the configured file (``MODELYARD_ROUTER__MODEL``), else none
(the keyword analysis alone, exactly as without this feature).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import zlib
from collections.abc import Mapping
from typing import Any, Protocol

from modelyard_core.bus import Bus
from modelyard_events import PLATFORM_TENANT, RouterModelPublished, TenantSnapshot
from modelyard_learn import modelfile

from .learned import LearnedRouter

log = logging.getLogger(__name__)

DEFAULT = "default"


class ModelFiles(Protocol):
    """Where published model files are kept, by content digest (``mongo.MongoModelFiles``)."""

    async def put(self, model_id: str, body: bytes, label: str, *, source: str = "operator") -> None: ...

    async def get(self, model_id: str) -> bytes | None: ...


def encode(doc: Mapping[str, Any]) -> tuple[str, bytes]:
    """(the model's digest, its canonical JSON compressed): what the database stores."""
    raw = modelfile.canonical(doc)
    return hashlib.sha256(raw).hexdigest(), zlib.compress(raw, 6)


def decode(model_id: str, body: bytes) -> dict:
    raw = zlib.decompress(body)
    if hashlib.sha256(raw).hexdigest() != model_id:
        raise ValueError(f"stored model {model_id[:12]} does not match its digest")
    return json.loads(raw)


async def publish(bus: Bus, files: ModelFiles, doc: Mapping[str, Any], *, name: str = DEFAULT, source: str = "operator",
                  base_model_id: str | None = None, description: str = "", version: int | None = None) -> RouterModelPublished:
    """Store a model file and announce it on ``router.models`` under ``name``."""
    modelfile.from_json(doc)  # refuse what no router could load, before anything is stored
    model_id, body = encode(doc)
    label = f"{name}@{model_id[:12]}"
    await files.put(model_id, body, label, source=source)
    event = RouterModelPublished(tenant_id=PLATFORM_TENANT, name=name, version=version or time.time_ns() // 1000,
                                 model_id=model_id, label=label, source=source, base_model_id=base_model_id,
                                 description=description)
    await bus.publish_one(bus.topics.name("router_models"), event, key=name)
    return event


async def withdraw(bus: Bus, name: str = DEFAULT) -> None:
    """Stop serving the model published under ``name`` (routers fall back as the module says)."""
    await bus.tombstone(bus.topics.name("router_models"), name)


class ModelRegistry:
    def __init__(self, configured: LearnedRouter | None, files: ModelFiles | None = None) -> None:
        self.configured = configured
        self.files = files
        self.published: dict[str, LearnedRouter] = {}
        self.versions: dict[str, int] = {}
        self.events: dict[str, RouterModelPublished] = {}  # the newest announcement of each name
        self._loading: set[asyncio.Task] = set()

    def for_tenant(self, tenant: TenantSnapshot | None) -> LearnedRouter | None:
        name = getattr(tenant.policy, "router_model", None) if tenant is not None else None
        if name and name in self.published:
            return self.published[name]
        return self.published.get(DEFAULT) or self.configured

    # -- following router.models (the view's on_change, then an async fetch) ------------------------

    def on_change(self, name: str, event: RouterModelPublished | None) -> None:
        if event is None:
            self.published.pop(name, None)
            self.versions.pop(name, None)
            self.events.pop(name, None)
            log.info("router model %s withdrawn", name)
            return
        if event.version <= self.versions.get(name, -1):
            return
        self.versions[name] = event.version
        self.events[name] = event
        task = asyncio.get_running_loop().create_task(self._load(event), name=f"router-model-{name}")
        self._loading.add(task)
        task.add_done_callback(self._loading.discard)

    async def settled(self) -> None:
        """Wait until every model announced so far is loaded (or failed to load)."""
        while self._loading:
            await asyncio.gather(*list(self._loading), return_exceptions=True)

    async def _load(self, event: RouterModelPublished) -> None:
        try:
            assert self.files is not None
            body = await self.files.get(event.model_id)
            if body is None:
                raise ValueError("no stored file under its id")
            doc = await asyncio.to_thread(decode, event.model_id, body)
            model = await asyncio.to_thread(LearnedRouter, doc, event.name, event.model_id)
        except Exception:  # noqa: BLE001 - keep serving the model in hand
            log.exception("router model %s (%s) could not be loaded; keeping the current one", event.label, event.model_id)
            return
        if event.version >= self.versions.get(event.name, -1) and self.versions.get(event.name) is not None:
            self.published[event.name] = model
            log.info("serving router model %s (%s, version %d)", model.label, event.source, event.version)
