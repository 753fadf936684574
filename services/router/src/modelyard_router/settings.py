from pydantic import BaseModel, Field

from modelyard_core.ratelimit import RateLimitSettings
from modelyard_core.settings import Settings


class LearnedRouting(BaseModel):
    """The learned router model and its online learning (``MODELYARD_ROUTER__*``; issue 16)."""

    #: A model file, or a shipped one by name (``helpdesk``, ``mmlu``); unset: the keyword analysis decides,
    #: until a model is published on ``router.models`` (a published ``default`` takes precedence over this).
    model: str | None = None
    #: Follow ``router.models`` (published models and the learner's snapshots).
    follow_published: bool = True
    #: Learn from outcomes in this process (one learner per deployment: ``modelyard router learner`` runs it alone).
    learn: bool = False
    #: Seconds between the learner's snapshots on ``router.models`` (what every replica then serves).
    snapshot_interval_s: float = Field(default=10.0, gt=0)
    #: Seconds and outcomes between the learner's checkpoints (weights, optimiser state, offsets) in MongoDB.
    checkpoint_interval_s: float = Field(default=10.0, gt=0)
    checkpoint_every: int = Field(default=500, ge=1)
    #: Weight of an accepted small-model answer as a "small model was right" label (the cascade accepts some
    #: wrong answers); an escalated one weighs 1.
    accepted_weight: float = Field(default=0.5, gt=0, le=1)
    #: How settled the starting model's weights are: the squared gradient each is taken to have seen (FTRL's n).
    #: 0 lets every shared weight move as fast as a tenant's new correction; the default makes them ~8x slower.
    prior_n: float = Field(default=50.0, ge=0)
    #: The value of a tenant's correction feature: larger lets a tenant's routing follow its outcomes sooner (4: a
    #: tenant whose small answers all escalate has most of its queries sent up within ~15 outcomes; docs/benchmarks.md).
    tenant_value: float = Field(default=4.0, gt=0, le=16)
    #: A shadow comparison's large-model label weighs min(cap, 1 / the tenant's shadow share).
    shadow_weight_cap: float = Field(default=20.0, ge=1)
    #: Most optimiser coordinates per head the learner keeps (bounded memory; the smallest unused go first).
    max_coordinates: int = Field(default=300_000, ge=1_000)
    #: The collections of published model files and of the learner's checkpoints (in the router's database).
    models_collection: str = "router_models"
    checkpoints_collection: str = "router_learner"


class RouterSettings(Settings):
    group_id: str = "modelyard-router"
    #: The learned router model and its online learning (``MODELYARD_ROUTER__MODEL``, ``..._LEARN``, ...).
    router: LearnedRouting = Field(default_factory=LearnedRouting)
    #: Model calls one query may make in total (first answer plus escalations).
    max_attempts: int = Field(default=3, ge=1, le=5)
    #: Per-tenant request and token rates by tier (``MODELYARD_RATE_LIMITS__*``), decided with the quota.
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    #: How long to wait for the tenant view to catch up before calling a tenant unknown.
    tenant_sync_timeout_s: float = 2.0
    #: Submitted queries per batch at most: a batch costs one admission write, whatever its size.
    submitted_batch_records: int = Field(default=2_000, ge=1)
    #: How long a batch of submitted queries may wait for more after its first. Every batch costs one
    #: admission write, so a linger trades latency for fewer writes at low rates. 0 (the default): with
    #: commits off the poll loop the 5 ms of earlier versions was half the router's hop at 100 q/s and saved
    #: no measurable CPU on an idle machine (10-20 % at 100 q/s on a loaded one; docs/benchmarks.md, #22).
    submitted_linger_ms: int = Field(default=0, ge=0, le=1_000)
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
