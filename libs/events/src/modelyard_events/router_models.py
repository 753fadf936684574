"""Learned router models published to every router replica (issue 16).

``RouterModelPublished`` travels on the compacted ``router.models`` topic (key: the model's ``name``,
``default`` for the model every tenant gets). The model file itself is stored in the router's database
under ``model_id`` (a model can be larger than a Kafka record may be); every router replica reads the
topic as a view and switches to the newest version of each name. Published by an operator
(``modelyard router publish-model``) or by the router's online learner (a snapshot of what it learned).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .base import ID_MAX, Event


class RouterModelPublished(Event):
    TYPE: ClassVar[str] = "modelyard.router.model_published.v1"
    type: Literal["modelyard.router.model_published.v1"] = "modelyard.router.model_published.v1"

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$",
                      description="The slot the model fills: `default` serves every tenant.")
    version: int = Field(ge=0, description="Grows with every publication of this name: a replica never goes back to "
                         "an older version.")
    model_id: str = Field(pattern="^[0-9a-f]{64}$", description="sha256 of the stored model file: its key in the "
                          "router's database.")
    label: str = Field(max_length=128, description="name@short id, as decisions name the model.")
    source: Literal["operator", "learner"]
    base_model_id: str | None = Field(default=None, max_length=ID_MAX, description="For a learner's snapshot: the "
                                      "operator's model it started from.")
    description: str = Field(default="", max_length=500)
