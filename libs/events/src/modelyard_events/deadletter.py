"""What a consumer publishes when it cannot process a message."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from .base import Model, new_id, utcnow


class DeadLetter(Model):
    """A message a consumer gave up on, on that service's dead-letter topic.

    The original bytes are kept (base64) so nothing is lost: fix the cause, then replay them.
    """

    TYPE: ClassVar[str] = "modelyard.deadletter.v1"
    type: Literal["modelyard.deadletter.v1"] = "modelyard.deadletter.v1"

    event_id: str = Field(default_factory=new_id)
    time: datetime = Field(default_factory=utcnow)
    service: str
    source_topic: str
    partition: int
    offset: int
    key: str | None = None
    error_type: str = Field(description="decode, schema, processing, ...")
    error: str = Field(description="Why the message could not be processed.")
    value_base64: str | None = Field(description="The original message value, base64; None for a null value.")
    headers: dict[str, str] = Field(default_factory=dict)
