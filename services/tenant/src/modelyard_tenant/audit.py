"""The audit trail: one ``AuditRecorded`` event per mutating call of the API, success or failure.

``AuditMiddleware`` (pure ASGI) watches every request whose method changes something (POST, PUT,
PATCH, DELETE). When the handler has answered, it records who called (the principal that
``current_principal`` resolved, or ``anonymous``), with which role, on which tenant, the operation
(the route's name, e.g. ``revoke_key``), the target (the path, plus the id a creation returned), the
request id (``X-Request-ID``, or a new one, echoed back), the source address, and the outcome. The
last byte of the response is held back until the record is stored, so a caller who has the answer
can already find it in ``GET /v1/audit``.

``AuditTrail`` stores the event in the ``audit_log`` collection (the queryable copy: kept when the
tenant is deleted, since it says who deleted it) and publishes it on ``audit.events``. A record
whose publication failed keeps ``published: false`` and is sent by ``run_sweeper`` later.

Nothing secret goes in: no body, no header other than the request id; keys appear by their id only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

import orjson
from modelyard_core.bus import Bus
from modelyard_events import PLATFORM_TENANT, AuditOutcome, AuditRecorded
from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

log = logging.getLogger(__name__)

AUDIT_LOG = "audit_log"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: A caller-supplied request id is kept only if it looks like one (no room for log injection).
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
#: How much of a creation's response is read to find the new resource's id.
CREATED_BODY_MAX = 64 * 1024


def _from_doc(doc: dict[str, Any]) -> AuditRecorded:
    return AuditRecorded.model_validate({k: v for k, v in doc.items() if k not in ("_id", "published")})


class AuditTrail:
    def __init__(self, db: AsyncDatabase, bus: Bus | None, topic: str, *, timeout_s: float) -> None:
        self.collection = db[AUDIT_LOG]
        self.bus = bus
        self.topic = topic
        self.timeout_s = timeout_s

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("tenant_id", 1), ("time", DESCENDING)])
        await self.collection.create_index([("time", DESCENDING)])

    async def record(self, event: AuditRecorded) -> None:
        doc = {"_id": event.event_id, **event.model_dump(mode="python"), "published": False}
        await self.collection.insert_one(doc)
        await self._publish(event)

    async def _publish(self, event: AuditRecorded) -> bool:
        if self.bus is None:
            return False
        try:
            async with asyncio.timeout(self.timeout_s):
                await self.bus.publish_one(self.topic, event, key=event.tenant_id)
        except Exception as exc:  # noqa: BLE001 - stored already; the sweeper publishes it later
            log.warning("publishing audit event %s failed, left for the sweeper: %r", event.event_id, exc)
            return False
        await self.collection.update_one({"_id": event.event_id}, {"$set": {"published": True}})
        return True

    async def sweep(self, older_than: timedelta) -> int:
        cutoff = datetime.now().astimezone() - older_than
        docs = await self.collection.find({"published": False, "time": {"$lt": cutoff}}).to_list(1000)
        return sum([await self._publish(_from_doc(d)) for d in docs])

    async def run_sweeper(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                if n := await self.sweep(timedelta(seconds=interval_s)):
                    log.info("audit sweeper published %d events", n)
            except Exception:  # noqa: BLE001 - the next round retries
                log.exception("audit sweep failed")

    async def query(self, flt: dict[str, Any], *, offset: int, limit: int) -> tuple[list[AuditRecorded], int]:
        cursor = self.collection.find(flt).sort([("time", DESCENDING), ("_id", DESCENDING)]).skip(offset).limit(limit)
        return [_from_doc(d) async for d in cursor], await self.collection.count_documents(flt)


def _created_id(body: bytes) -> str | None:
    with contextlib.suppress(ValueError):
        doc = orjson.loads(body)
        if isinstance(doc, dict):
            for field in ("key_id", "id", "tenant_id"):
                if isinstance(doc.get(field), str):
                    return doc[field]
    return None


class AuditMiddleware:
    """Records every mutating call through ``trail()`` (looked up per request: the trail is built in
    the app's lifespan, after the middleware)."""

    def __init__(self, app: Any, *, trail: Callable[[], AuditTrail | None], service: str) -> None:
        self.app = app
        self.trail = trail
        self.service = service

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if REQUEST_ID.match(given) else str(uuid.uuid4())
        status = 500
        created = bytearray()
        recorded = False

        async def audited_send(message: dict) -> None:
            nonlocal status, recorded
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            elif message["type"] == "http.response.body":
                if status == 201 and len(created) < CREATED_BODY_MAX:
                    created.extend(message.get("body", b""))
                if not message.get("more_body", False) and not recorded:
                    recorded = True
                    await self._record(scope, request_id, status, bytes(created))
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        finally:
            if not recorded:  # the handler raised before answering: still on the record
                await self._record(scope, request_id, status, b"")

    async def _record(self, scope: dict, request_id: str, status: int, created: bytes) -> None:
        trail = self.trail()
        if trail is None:
            return
        try:
            await trail.record(self.event(scope, request_id, status, created))
        except Exception:  # noqa: BLE001 - the call itself happened; say so loudly
            log.exception("could not record the audit event of request %s", request_id)

    def event(self, scope: dict, request_id: str, status: int, created: bytes) -> AuditRecorded:
        principal = (scope.get("state") or {}).get("principal")
        route = scope.get("route")
        params = scope.get("path_params") or {}
        target_id = _created_id(created) if status == 201 else None
        path = scope.get("path", "")
        tenant_id = params.get("tenant_id") or (principal.tenant_id if principal is not None else None)
        if tenant_id is None and getattr(route, "name", "") == "create_tenant" and target_id:
            tenant_id = target_id
        client = scope.get("client")
        success = status < 400
        return AuditRecorded(
            tenant_id=(tenant_id or PLATFORM_TENANT)[:128],
            service=self.service,
            actor=principal.subject if principal is not None else "anonymous",
            role=principal.role.value if principal is not None else None,
            action=getattr(route, "name", None) or "unmatched",
            method=scope["method"],
            target=(f"{path} -> {target_id}" if target_id else path)[:512],
            request_id=request_id,
            source_address=client[0] if client else None,
            outcome=AuditOutcome.SUCCESS if success else AuditOutcome.FAILURE,
            status_code=status,
            reason=None if success else _reason(status),
        )


def _reason(status: int) -> str:
    with contextlib.suppress(ValueError):
        return HTTPStatus(status).phrase.lower().replace(" ", "_")
    return str(status)
