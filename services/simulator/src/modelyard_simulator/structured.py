"""Structured output: validating ``response_format`` like OpenAI and answering with JSON.

``{"type": "json_object"}`` answers a JSON object (OpenAI also requires the word "json" somewhere in the
messages); ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`` answers JSON that
validates against the schema (strict schemas must close and require every object's properties, as
OpenAI demands). The model knob ``invalid_json_rate`` makes that share of answers defective on purpose.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

import orjson
from jsonschema import Draft202012Validator

from modelyard_simulator.errors import ApiError, invalid_type, invalid_value, missing, missing_or_wrong
from modelyard_simulator.schema_values import Hints, SchemaError, generate, spoil, validator_for

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    kind: str  # "json_object" or "json_schema"
    name: str | None = None
    schema: dict[str, Any] | None = None
    validator: Draft202012Validator | None = None


def parse_response_format(body: dict[str, Any], mentions_json: Any) -> ResponseFormat | None:
    """``None`` for plain text. ``mentions_json()`` is asked only for ``json_object``."""
    value = body.get("response_format")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_type("response_format", "an object", value)
    kind = value.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        if not mentions_json():
            raise ApiError(
                400,
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
                "'json_object'.",
                param="messages",
            )
        return ResponseFormat("json_object")
    if kind != "json_schema":
        raise invalid_value(
            "response_format.type", f"expected one of 'text', 'json_object', 'json_schema', got {kind!r}."
        )
    spec = value.get("json_schema")
    if not isinstance(spec, dict):
        raise missing_or_wrong("response_format.json_schema", "an object", spec)
    name = spec.get("name")
    if not isinstance(name, str):
        raise missing("response_format.json_schema.name")
    if not _NAME.match(name):
        raise invalid_value(
            "response_format.json_schema.name", "expected at most 64 characters of a-z, A-Z, 0-9, '_' and '-'."
        )
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise invalid_type("response_format.json_schema.strict", "a boolean", strict)
    schema = spec.get("schema")
    if schema is None:
        return ResponseFormat("json_schema", name)
    if not isinstance(schema, dict):
        raise invalid_type("response_format.json_schema.schema", "an object", schema)
    try:
        validator = validator_for(schema, strict=bool(strict), root_object=bool(strict))
    except SchemaError as exc:
        raise ApiError(
            400,
            f"Invalid schema for response_format '{name}': {exc}",
            param="response_format",
            code="invalid_json_schema",
        ) from None
    return ResponseFormat("json_schema", name, schema, validator)


def compose_json(
    fmt: ResponseFormat, hints: Hints, invalid_rate: float, rng: random.Random
) -> tuple[str, str | None]:
    """The JSON answer and its defect (None, "unparsable" or "schema"). Without a schema: ``{"answer":
    <prose>, "topic": ...}``, or ``{"reasoning": <worked solution>, "answer": <final answer>}``."""
    if fmt.schema is not None:
        value = generate(fmt.schema, rng, hints)
    elif hints.answer is not None:
        value = {"reasoning": hints.prose, "answer": hints.answer}
    else:
        value = {"answer": hints.prose, "topic": hints.words[0] if hints.words else "request"}
    if invalid_rate and rng.random() < invalid_rate:
        return spoil(value, fmt.schema, fmt.validator, rng)
    return orjson.dumps(value).decode(), None
