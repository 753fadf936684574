"""Configuration by environment: every setting is ``MODELYARD_<NAME>`` (nested: ``MODELYARD_KAFKA__...``).

Settings objects own the topic names; no service spells a topic itself.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .runtime import DEFAULT_GEN0_THRESHOLD


class Topics(BaseModel):
    """Topic names. ``prefix`` namespaces all of them (tests use one per test, operators per environment)."""

    prefix: str = ""
    submitted: str = "queries.submitted"
    routed_slm: str = "queries.routed.slm"
    routed_llm: str = "queries.routed.llm"
    escalations: str = "queries.escalations"
    outcomes: str = "queries.outcomes"
    usage: str = "usage.recorded"
    metering: str = "metering.usage"
    tenant_snapshots: str = "tenants.snapshots"
    tenant_agents: str = "tenants.agents"
    tenant_alerts: str = "tenants.alerts"
    deadletter_prefix: str = "deadletter."

    def name(self, topic: str) -> str:
        return f"{self.prefix}{getattr(self, topic)}"

    def routed(self, pool: str) -> str:
        return self.name("routed_slm" if pool == "slm" else "routed_llm")

    def deadletter(self, service: str) -> str:
        return f"{self.prefix}{self.deadletter_prefix}{service}"

    def compacted(self) -> set[str]:
        return {self.name("tenant_snapshots"), self.name("tenant_agents")}

    def all_topics(self, services: tuple[str, ...] = ("router", "inference", "metering", "tenant", "ingress")) -> list[str]:
        names = [self.name(f) for f in type(self).model_fields if f not in ("prefix", "deadletter_prefix")]
        return names + [self.deadletter(s) for s in services]


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:9092"
    partitions: int = Field(default=8, ge=1, description="Partitions of topics created at start-up.")
    replication_factor: int = Field(default=1, ge=1)
    linger_ms: int = Field(default=1, ge=0, description="How long a producer waits to fill a batch.")
    max_batch_records: int = Field(default=500, ge=1, description="Records a batch consumer takes per poll.")
    batch_timeout_ms: int = Field(default=100, ge=1, description="Longest wait of one poll of a batch consumer; "
                                  "a poll returns as soon as any record arrives.")
    handler_attempts: int = Field(default=3, ge=1, description="Tries of a failing handler before per-message isolation.")
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None


class MongoSettings(BaseModel):
    url: str = "mongodb://127.0.0.1:27017"
    database: str = "modelyard"
    timeout_ms: int = 5_000


class Settings(BaseSettings):
    """Settings every service shares. Service-specific settings subclass this."""

    model_config = SettingsConfigDict(env_prefix="MODELYARD_", env_nested_delimiter="__", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    mongo: MongoSettings = Field(default_factory=MongoSettings)
    topics: Topics = Field(default_factory=Topics)
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|console)$")
    #: Port of the /healthz, /readyz and /metrics endpoints; 0 disables them.
    ops_port: int = 0
    shutdown_timeout_s: float = 20.0
    #: Net container allocations between young-generation garbage collections (Python's default: 700),
    #: with start-up objects frozen out of collections; 0 keeps Python's defaults (see runtime.tune_gc).
    gc_gen0_threshold: int = Field(default=DEFAULT_GEN0_THRESHOLD, ge=0)
    pricing_file: str | None = Field(default=None, description="Override the built-in pricing table (JSON).")
