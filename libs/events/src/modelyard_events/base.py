"""The envelope every modelyard event shares (CloudEvents-style attributes in the body).

The same attributes travel as binary-mode ``ce_*`` Kafka headers (see ``modelyard_core.bus``), so a
consumer can route on them without parsing the body; the body stays the source of truth.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

#: Identifiers are opaque strings; this bound keeps a hostile producer from sending megabytes of id.
ID_MAX = 128


def new_id() -> str:
    return str(uuid.uuid4())


#: The UUIDv5 namespace of ``derived_id`` (public, for code that computes the same ids faster).
DERIVED_ID_NAMESPACE = uuid.UUID("6f1c2a9e-3b7d-4c55-9a51-0d6f3f1c9a01")


def derived_id(*parts: str) -> str:
    """A deterministic event id for an event derived from others (e.g. a query's outcome).

    Reprocessing the same input after a crash yields the same id, so a redelivered duplicate is
    recognisable downstream.
    """
    return str(uuid.uuid5(DERIVED_ID_NAMESPACE, "/".join(parts)))


def utcnow() -> datetime:
    return datetime.now(UTC)


class Model(BaseModel):
    """Base for every value object in the contract: immutable, tolerant of fields it does not know."""

    # Unknown fields are ignored, not rejected: a consumer keeps working when a producer of a newer
    # minor revision adds an optional field (additive evolution within a version).
    model_config = ConfigDict(extra="ignore", frozen=True)


class Event(Model):
    """Attributes every event carries.

    Each concrete event declares ``type`` as a ``Literal`` with its versioned name (also ``TYPE``), so
    the JSON Schema pins it. Within a version only additive (optional) fields may be added; a breaking
    change is a new class with a new type.
    """

    TYPE: ClassVar[str]

    event_id: str = Field(default_factory=new_id, max_length=ID_MAX, description="Unique per event; consumers dedupe on it.")
    type: str = Field(description="Versioned event type, e.g. modelyard.query.submitted.v1.")
    time: datetime = Field(default_factory=utcnow, description="When the producer created the event (UTC).")
    tenant_id: str = Field(min_length=1, max_length=ID_MAX, description="Owner of the event; the Kafka key.")


class QueryEvent(Event):
    """An event about one query; ``query_id`` is the correlation id across every hop."""

    query_id: str = Field(min_length=1, max_length=ID_MAX, description="Correlation id of the query.")
