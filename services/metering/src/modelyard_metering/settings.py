from pydantic import Field

from modelyard_core.settings import Settings


class MeteringSettings(Settings):
    group_id: str = "modelyard-metering"
    #: Flush at this many usage events ...
    flush_events: int = Field(default=5_000, ge=1)
    #: ... or after this many milliseconds, whichever comes first.
    flush_ms: int = Field(default=200, ge=1)
    #: How long event ids are remembered for de-duplication.
    dedup_retention_days: int = Field(default=7, ge=1)
