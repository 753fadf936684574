from pydantic import Field

from modelyard_core.settings import Settings


class MeteringSettings(Settings):
    group_id: str = "modelyard-metering"
    #: Static group membership: a stable id per replica (e.g. a StatefulSet pod name). A replica that
    #: restarts under the same id resumes its partitions at once, without waiting for the session timeout.
    group_instance_id: str | None = None
    #: Flush when this many usage events are buffered ...
    flush_events: int = Field(default=20_000, ge=1)
    #: ... or this many milliseconds after the first buffered one, whichever comes first. Every flush
    #: costs a few database writes whatever its size, so at low rates this bounds the writes per second
    #: (usage documents lag the calls by at most this much).
    flush_ms: int = Field(default=2_000, ge=1)
    #: How long event ids are remembered for de-duplication (in the database) ...
    dedup_retention_days: int = Field(default=7, ge=1)
    #: ... and how many of each partition's most recent ids are checked, in memory allocated once per
    #: partition (about 32 bytes per id: 100,000 ids take 3.4 MB per partition).
    dedup_window: int = Field(default=100_000, ge=1)
    #: Usage documents kept in memory between flushes (LRU), so that a warm flush reads nothing.
    doc_cache_size: int = Field(default=50_000, ge=1)
    #: How often expired de-duplication records are deleted.
    prune_interval_s: float = Field(default=600.0, gt=0)
    #: Usage documents per insert command when a flush writes its new states.
    write_chunk: int = Field(default=500, ge=1, le=10_000)
    #: How long a flush waits for the tenant view to catch up when it meets an unknown tenant.
    tenant_sync_timeout_s: float = Field(default=2.0, ge=0)
