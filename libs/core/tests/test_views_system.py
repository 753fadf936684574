"""A compacted-topic view on the real broker: a topic created while the view waits is found at once."""

from __future__ import annotations

import asyncio
import time
import uuid

from modelyard_core.admin import ensure_topics
from modelyard_core.settings import Settings
from modelyard_core.views import CompactedTopicView
from modelyard_events import TenantSnapshot
from modelyard_harness import drop_topics


async def test_a_view_finds_a_topic_created_after_it_subscribed(kafka):
    settings = Settings(kafka={"bootstrap_servers": kafka, "partitions": 1}, topics={"prefix": f"t{uuid.uuid4().hex[:8]}-views."})
    topic = settings.topics.name("tenant_snapshots")
    view = CompactedTopicView(settings, topic, TenantSnapshot, name="late-topic")

    async def create_later() -> None:
        await asyncio.sleep(2)  # the view has subscribed to a topic the broker does not know yet
        await ensure_topics(settings, [topic])

    started = time.monotonic()
    try:
        await asyncio.gather(view.start(timeout_s=20), create_later())
        # Without asking again the client waits for its next metadata refresh (5 minutes by default).
        assert time.monotonic() - started < 10
    finally:
        await view.stop()
        await drop_topics(kafka, settings.topics.prefix)
