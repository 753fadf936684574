"""Topic administration: create the topics a deployment needs, compacted where the contract says so."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from .kafka_clients import make_admin
from .settings import Settings

log = logging.getLogger(__name__)


async def ensure_topics(settings: Settings, names: Sequence[str]) -> None:
    """Create missing topics (compacted or short-lived where the contract says so); existing ones are left alone."""
    k = settings.kafka
    admin = make_admin(k, client_id="modelyard-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in dict.fromkeys(names) if n not in existing]
        if not missing:
            return
        new = [
            NewTopic(
                name=n,
                num_partitions=k.partitions,
                replication_factor=k.replication_factor,
                topic_configs=settings.topics.configs(n),
            )
            for n in missing
        ]
        try:
            await admin.create_topics(new)
        except TopicAlreadyExistsError:
            pass  # another service created them first
        log.info("created topics %s", ", ".join(missing))
    finally:
        await admin.close()
