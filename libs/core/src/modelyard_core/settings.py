"""Configuration by environment: every setting is ``MODELYARD_<NAME>`` (nested: ``MODELYARD_KAFKA__...``).

Settings objects own the topic names; no service spells a topic itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, FilePath, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .runtime import DEFAULT_GEN0_THRESHOLD


def per_tier_overrides(given: Any, defaults: Mapping[Any, BaseModel]) -> Any:
    """A per-tier table from configuration laid over its defaults, field by field: one variable such as
    ``MODELYARD_RATE_LIMITS__TIERS__BASIC__REQUESTS_PER_MINUTE=120`` changes that value only."""
    if not isinstance(given, Mapping):
        return given
    merged = {str(k.value if hasattr(k, "value") else k): v.model_dump() for k, v in defaults.items()}
    for key, fields in given.items():
        name = str(key.value if hasattr(key, "value") else key).lower()
        if isinstance(fields, BaseModel):
            fields = fields.model_dump()
        merged[name] = {**merged.get(name, {}), **fields} if isinstance(fields, Mapping) else fields
    return merged


class Topics(BaseModel):
    """Topic names. ``prefix`` namespaces all of them (tests use one per test, operators per environment)."""

    prefix: str = ""
    submitted: str = "queries.submitted"
    routed_slm: str = "queries.routed.slm"
    routed_llm: str = "queries.routed.llm"
    escalations: str = "queries.escalations"
    outcomes: str = "queries.outcomes"
    shadows: str = "queries.shadows"
    #: Streamed tokens of final routes (``QueryChunk``); read once, so kept for ``streams_retention_ms`` only.
    streams: str = "queries.streams"
    usage: str = "usage.recorded"
    metering: str = "metering.usage"
    tenant_snapshots: str = "tenants.snapshots"
    tenant_agents: str = "tenants.agents"
    tenant_alerts: str = "tenants.alerts"
    tenant_events: str = "tenants.events"
    webhooks_parked: str = "webhooks.parked"
    billing_statements: str = "billing.statements"
    meter_events: str = "billing.meter_events"
    revocations: str = "tenants.revocations"
    audit: str = "audit.events"
    router_models: str = "router.models"
    deadletter_prefix: str = "deadletter."
    streams_retention_ms: int = Field(default=3_600_000, ge=60_000, description="Retention of the streams topic.")

    def name(self, topic: str) -> str:
        return f"{self.prefix}{getattr(self, topic)}"

    def routed(self, pool: str) -> str:
        return self.name("routed_slm" if pool == "slm" else "routed_llm")

    def deadletter(self, service: str) -> str:
        return f"{self.prefix}{self.deadletter_prefix}{service}"

    def compacted(self) -> set[str]:
        return {self.name("tenant_snapshots"), self.name("tenant_agents"), self.name("revocations"), self.name("router_models")}

    def configs(self, name: str) -> dict[str, str]:
        """Topic configuration to create ``name`` with: compacted, short-lived, or the broker's defaults."""
        if name in self.compacted():
            return {"cleanup.policy": "compact"}
        if name == self.name("streams"):
            return {"retention.ms": str(self.streams_retention_ms)}
        return {}

    def all_topics(self, services: tuple[str, ...] = ("router", "inference", "metering", "tenant", "ingress", "webhooks")) -> list[str]:
        names = [self.name(f) for f, info in type(self).model_fields.items()
                 if f not in ("prefix", "deadletter_prefix") and info.annotation is str]
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
    direct_send: bool = Field(default=True, description="Events go to the broker's aiokafka producer directly "
                              "rather than through FastStream's publish (the same producer and settings).")
    commit_in_background: bool = Field(default=True, description="A batch consumer's offset commit runs beside its "
                                       "next poll instead of before it (``bus``); False: FastStream commits "
                                       "before the next poll.")
    # Connection security: every client gets these through ``kafka_clients.connection_params``.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = Field(default=None, description="Never printed: a SecretStr.")
    ssl_ca_file: FilePath | None = Field(default=None, description="CA certificates (PEM) that signed the brokers' "
                                     "certificates; the system trust store when unset.")
    ssl_cert_file: FilePath | None = Field(default=None, description="Client certificate (PEM), for brokers that "
                                       "authenticate clients by certificate.")
    ssl_key_file: FilePath | None = Field(default=None, description="The client certificate's private key (PEM), "
                                      "unless it is in ssl_cert_file.")
    ssl_check_hostname: bool = Field(default=True, description="Check that a broker's certificate names its host.")

    @model_validator(mode="after")
    def _security_is_complete(self) -> KafkaSettings:
        """Refuse a half-configured connection at start-up rather than failing to connect later."""
        sasl = self.security_protocol.startswith("SASL_")
        if sasl and (self.sasl_mechanism is None or not self.sasl_username or self.sasl_password is None):
            raise ValueError(f"security_protocol {self.security_protocol} needs sasl_mechanism, sasl_username "
                             "and sasl_password")
        if not sasl and self.sasl_mechanism is not None:
            raise ValueError(f"sasl_mechanism {self.sasl_mechanism} needs security_protocol SASL_PLAINTEXT or SASL_SSL")
        tls_files = [n for n in ("ssl_ca_file", "ssl_cert_file", "ssl_key_file") if getattr(self, n) is not None]
        if tls_files and not self.security_protocol.endswith("SSL"):
            raise ValueError(f"{', '.join(tls_files)} need security_protocol SSL or SASL_SSL")
        if self.ssl_key_file is not None and self.ssl_cert_file is None:
            raise ValueError("ssl_key_file needs ssl_cert_file")
        return self


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
    #: Fernet keys (comma-separated: the first encrypts, all decrypt) of the secrets modelyard stores and
    #: reads back: webhook signing secrets, tenants' model API keys (see ``modelyard_core.secrets``).
    master_keys: SecretStr | None = None
