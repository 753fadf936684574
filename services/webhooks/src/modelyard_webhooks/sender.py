"""Sending deliveries: the dispatcher's loop over the deliveries that are due.

Each round reads the pending deliveries whose time has come, and for each (up to ``concurrency`` at
once): skips it while an earlier delivery of its ordering key to the same endpoint is pending, claims
its next attempt (so two replicas never make the same attempt), signs the stored body with the
endpoint's current secrets, POSTs it (no redirects, ``timeout_s``), and records the attempt. A 2xx is
delivered; anything else is retried after ``backoff`` until ``retry_for_s`` after the first attempt,
when the delivery is parked: published on ``webhooks.parked`` (for ``modelyard webhooks replay``) and
marked so. At-least-once: a crash after the POST and before the record repeats the attempt; the
receiver recognises the repeat by ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from modelyard_core.bus import Bus, Outgoing
from modelyard_core.secrets import SecretBox, SecretUnreadable
from modelyard_events import WebhookParked, derived_id
from modelyard_hooks import Deliveries, Endpoints, Status, WebhookSettings, WebhookType, backoff, signed_headers, signing_secrets

from . import metrics

log = logging.getLogger(__name__)
USER_AGENT = "modelyard-webhooks/1"
MAX_ERROR = 300


def utcnow() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Sender:
    def __init__(self, endpoints: Endpoints, deliveries: Deliveries, box: SecretBox, settings: WebhookSettings, bus: Bus) -> None:
        self.endpoints = endpoints
        self.deliveries = deliveries
        self.box = box
        self.settings = settings
        self.bus = bus
        self.owner = uuid.uuid4().hex[:12]
        self.http = httpx.AsyncClient(follow_redirects=False, timeout=settings.timeout_s, headers={"user-agent": USER_AGENT})
        self._wake = asyncio.Event()
        self._in_flight: set[str] = set()
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._tasks: set[asyncio.Task] = set()

    def wake(self) -> None:
        """New deliveries were enqueued: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a database hiccup: the next round tries again
                log.exception("delivery round failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_s):
                    await self._wake.wait()
            self._wake.clear()

    async def round(self) -> int:
        """Start an attempt for every due delivery not already in flight here; how many were started."""
        started = 0
        for doc in await self.deliveries.due(utcnow(), limit=4 * self.settings.concurrency):
            if doc["_id"] in self._in_flight:
                continue
            self._in_flight.add(doc["_id"])
            task = asyncio.create_task(self._attempt_in_slot(doc))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.http.aclose()

    async def _attempt_in_slot(self, doc: dict) -> None:
        try:
            async with self._slots:
                await self.attempt(doc)
        except Exception:  # noqa: BLE001 - left pending: the next round retries
            log.exception("delivery %s failed unexpectedly", doc["_id"])
        finally:
            self._in_flight.discard(doc["_id"])

    async def attempt(self, doc: dict) -> str | None:
        """Make ``doc``'s next attempt if it is this replica's to make; the resulting status (None: not made)."""
        if await self.deliveries.blocked(doc):
            return None
        now = utcnow()
        claim = await self.deliveries.claim(doc, self.owner, self.settings.claim_lease_s, now)
        if claim is None:
            return None
        try:
            endpoint = await self.endpoints.find_any(doc["endpoint_id"])
            if endpoint is None:  # deleted by the tenant: nothing left to deliver to (its log went with it)
                await self.deliveries.collection.delete_one({"_id": doc["_id"]})
                return None
            status = await self._send(doc, endpoint, now)
            if doc["type"] == WebhookType.TENANT_DELETED.value and endpoint.get("detached_at") and status != Status.PENDING.value:
                await self.endpoints.remove_detached(endpoint["_id"])  # told (or given up): the tenant's last endpoint goes
            return status
        finally:
            await self.deliveries.release(claim)

    async def _send(self, doc: dict, endpoint: dict, now: datetime) -> str:
        code, error = None, None
        started = time.perf_counter()
        try:
            headers = signed_headers(signing_secrets(self.box, endpoint, now), doc["webhook_id"], doc["body"])
            resp = await self.http.post(endpoint["url"], content=doc["body"].encode(), headers=headers)
            code = resp.status_code
            if not 200 <= code < 300:
                error = f"HTTP {code}"
        except SecretUnreadable:
            error = "the endpoint's signing secret cannot be decrypted with the configured MODELYARD_MASTER_KEYS"
        except httpx.TimeoutException:
            error = f"timeout after {self.settings.timeout_s:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
        duration_ms = round(1000 * (time.perf_counter() - started), 1)
        first = doc.get("first_attempt_at") or now
        attempt = {"n": doc["attempt_count"] + 1, "at": now, "status_code": code, "error": error, "duration_ms": duration_ms}
        changes = {"first_attempt_at": first, "last_status_code": code, "last_error": error}
        if error is None:
            changes.update(status=Status.DELIVERED.value, delivered_at=utcnow(), next_attempt_at=None)
            metrics.ATTEMPTS.labels("delivered").inc()
            metrics.DELIVERY_SECONDS.observe((utcnow() - doc["created_at"]).total_seconds())
        elif (now - first).total_seconds() >= self.settings.retry_for_s:
            changes.update(status=Status.PARKED.value, next_attempt_at=None)
            await self._park(doc, endpoint, attempt["n"], first, error)
            metrics.ATTEMPTS.labels("parked").inc()
        else:
            delay = backoff(attempt["n"], self.settings.retry_base_s, self.settings.retry_max_delay_s)
            changes["next_attempt_at"] = min(now + timedelta(seconds=delay), first + timedelta(seconds=self.settings.retry_for_s))
            metrics.ATTEMPTS.labels("failed").inc()
        await self.deliveries.record(doc, attempt, changes)
        if error is not None:
            log.info("webhook %s to endpoint %s: attempt %d failed (%s)", doc["webhook_id"], endpoint["_id"], attempt["n"], error,
                     extra={"tenant_id": doc["tenant_id"]})
        return changes.get("status", Status.PENDING.value)

    async def _park(self, doc: dict, endpoint: dict, attempts: int, first: datetime, error: str) -> None:
        parked = WebhookParked(event_id=derived_id(doc["_id"], "parked", str(attempts)), tenant_id=doc["tenant_id"],
                               endpoint_id=endpoint["_id"], delivery_id=doc["_id"], webhook_id=doc["webhook_id"],
                               webhook_type=doc["type"], body=doc["body"], attempts=attempts, first_attempt_at=first,
                               last_error=error)
        await self.bus.publish([Outgoing(self.bus.topics.name("webhooks_parked"), parked, key=endpoint["_id"])])
        metrics.PARKED.inc()
        log.warning("webhook %s to endpoint %s parked after %d attempts (%s)", doc["webhook_id"], endpoint["_id"], attempts, error,
                    extra={"tenant_id": doc["tenant_id"]})
