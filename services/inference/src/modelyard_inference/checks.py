"""Answers the caller's own contract rules out, whatever their confidence (issue 19).

* A tool call is an answer only when it names an offered tool and its arguments parse as a JSON object
  that validates against the tool's ``parameters`` schema (``functions`` / ``function_call`` alike).
* With ``response_format`` ``json_object`` the text must parse as a JSON object; with ``json_schema`` it
  must validate against the schema. An application hands such text to ``json.loads`` as it is, so text
  wrapped in a Markdown fence does not parse.
* A refusal is no answer either.

``defects`` returns why a choice fails (empty: it passes); the worker escalates such an answer (or, at
the top of the cascade, keeps the best one). One small function, so the cascade scorer's verifiers
(issue 17) can take its place.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonschema
from modelyard_events import Choice, Generation


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    """A compiled validator per distinct schema (requests repeat theirs); None for a schema that is not one."""
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError:
        return None
    return cls(schema)


def schema_violation(value: Any, schema: Any) -> str | None:
    """Why ``value`` does not validate against ``schema`` (None: it does, or there is no usable schema)."""
    if not isinstance(schema, dict):
        return None
    validator = _validator(json.dumps(schema, sort_keys=True))
    error = next(iter(validator.iter_errors(value)), None) if validator is not None else None
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"at {where}: {error.message}"[:300]


def _parameters(generation: Generation) -> dict[str, Any]:
    """The offered functions by name: their parameter schemas."""
    offered = [t.get("function") or {} for t in generation.tools or () if t.get("type", "function") == "function"]
    offered += list(generation.functions or ())
    return {f.get("name"): f.get("parameters") for f in offered if isinstance(f, dict) and f.get("name")}


def _call_defect(call: dict[str, Any], offered: dict[str, Any]) -> str | None:
    name, raw = call.get("name"), call.get("arguments")
    if name not in offered:
        return f"tool call of {name!r}, which was not offered"
    try:
        arguments = json.loads(raw) if isinstance(raw, str) else None
    except ValueError as exc:
        return f"tool call {name}: arguments do not parse as JSON ({exc})"
    if not isinstance(arguments, dict):
        return f"tool call {name}: arguments are not a JSON object"
    if (why := schema_violation(arguments, offered[name])) is not None:
        return f"tool call {name}: arguments do not match its parameters {why}"
    return None


def _format_defect(text: str, response_format: dict[str, Any]) -> str | None:
    kind = response_format.get("type")
    if kind not in ("json_object", "json_schema"):
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        return f"response_format {kind}: the answer does not parse as JSON ({exc})"
    if not isinstance(value, dict):
        return f"response_format {kind}: the answer is a JSON {type(value).__name__}, not an object"
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if (why := schema_violation(value, schema)) is not None:
            return f"response_format json_schema: the answer does not match the schema {why}"
    return None


def defects(choice: Choice, generation: Generation | None) -> list[str]:
    """Why ``choice`` cannot be kept as the answer to a request with ``generation`` (empty: nothing)."""
    found = []
    if choice.refusal:
        found.append(f"the model refused: {choice.refusal[:120]!r}")
    calls = [c.get("function") or {} for c in choice.tool_calls or ()]
    if choice.function_call is not None:
        calls.append(choice.function_call)
    if calls:
        offered = _parameters(generation) if generation is not None else {}
        found += [why for call in calls if (why := _call_defect(call, offered)) is not None]
    elif generation is not None and generation.response_format and choice.content is not None:
        if (why := _format_defect(choice.content, generation.response_format)) is not None:
            found.append(why)
    return found
