from pydantic import Field

from modelyard_core.ratelimit import RateLimitSettings
from modelyard_core.settings import Settings


class RouterSettings(Settings):
    group_id: str = "modelyard-router"
    #: Model calls one query may make in total (first answer plus escalations).
    max_attempts: int = Field(default=3, ge=1, le=5)
    #: Per-tenant request and token rates by tier (``MODELYARD_RATE_LIMITS__*``), decided with the quota.
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    #: How long to wait for the tenant view to catch up before calling a tenant unknown.
    tenant_sync_timeout_s: float = 2.0
    #: Submitted queries per batch at most: a batch costs one admission write, whatever its size.
    submitted_batch_records: int = Field(default=2_000, ge=1)
    #: How long a batch of submitted queries may wait for more after its first: every batch costs one
    #: admission write, so at low rates this trades a little latency for fewer writes.
    submitted_linger_ms: int = Field(default=5, ge=0, le=1_000)
    #: The admission logs (one per router process and day; see ``admission``). Named for the format:
    #: the whole-document format of earlier versions lived in ``admission_counters``.
    admission_collection: str = "admission_log"
    #: The router's own database (default: ``<MODELYARD_MONGO__DATABASE>_router``). Its write is on every
    #: query's path, so it does not share a database with metering's large flushes (on FerretDB/SQLite
    #: a database is a file with one writer at a time).
    admission_database: str | None = None

    @property
    def admission_database_name(self) -> str:
        return self.admission_database or f"{self.mongo.database}_router"
    #: Days of admission documents kept (today included); older ones are pruned.
    admission_keep_days: int = Field(default=3, ge=2)
    admission_prune_interval_s: float = Field(default=3600.0, gt=0)
