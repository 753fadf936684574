from pydantic import Field

from modelyard_core.settings import Settings


class RouterSettings(Settings):
    group_id: str = "modelyard-router"
    #: Model calls one query may make in total (first answer plus escalations).
    max_attempts: int = Field(default=3, ge=1, le=5)
    #: How long to wait for the tenant view to catch up before calling a tenant unknown.
    tenant_sync_timeout_s: float = 2.0
    #: Submitted queries per batch: the admission store costs one read and one write per tenant per
    #: batch, whatever the batch size, so bigger batches are cheaper per query.
    submitted_batch_records: int = Field(default=2_000, ge=1)
    admission_collection: str = "admission_counters"
    #: Counters per bulk write (FerretDB 1.x stalls on bulk updates of more than ~50 documents).
    admission_write_chunk: int = Field(default=32, ge=1, le=500)
    #: Days of counters kept (today included); older ones are pruned.
    admission_keep_days: int = Field(default=3, ge=2)
    admission_prune_interval_s: float = Field(default=3600.0, gt=0)
