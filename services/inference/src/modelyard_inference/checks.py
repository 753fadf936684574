"""Answers without text to judge: tool calls and refusals (issue 19).

* A tool call is an answer only when it names an offered tool and its arguments parse as a JSON object
  that validates against the tool's ``parameters`` schema (``functions`` / ``function_call`` alike); the
  schema check is the answer verifiers' own (``answers.verifiers.schema_error``), as for
  ``response_format``, which the verifiers judge on text answers.
* A refusal (OpenAI's ``message.refusal``) is no answer.

``defects`` returns the hard findings against a choice (empty: it passes); the worker escalates such an
answer (or, at the top of the cascade, keeps the best one).
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from modelyard_events import Choice, Generation

from .answers.verifiers import HARD, Finding, schema_error


def _parameters(generation: Generation) -> dict[str, Any]:
    """The offered functions by name: their parameter schemas."""
    offered = [t.get("function") or {} for t in generation.tools or () if t.get("type", "function") == "function"]
    offered += list(generation.functions or ())
    return {f.get("name"): f.get("parameters") for f in offered if isinstance(f, dict) and f.get("name")}


def _call_defect(call: dict[str, Any], offered: dict[str, Any]) -> str | None:
    name, raw = call.get("name"), call.get("arguments")
    if name not in offered:
        return f"{name!r} was not offered"
    try:
        arguments = json.loads(raw) if isinstance(raw, str) else None
    except ValueError as exc:
        return f"{name}: arguments do not parse as JSON ({exc})"
    if not isinstance(arguments, dict):
        return f"{name}: arguments are not a JSON object"
    schema = offered[name]
    try:
        why = schema_error(arguments, schema) if isinstance(schema, dict) else None
    except jsonschema.SchemaError:
        return None  # a schema that is none: the model accepted it, nothing to check against
    return f"{name}: arguments do not match its parameters {why}"[:400] if why else None


def calls_of(choice: Choice) -> list[dict[str, Any]]:
    """The functions a choice calls (``tool_calls``, or the deprecated ``function_call``)."""
    calls = [c.get("function") or {} for c in choice.tool_calls or ()]
    if choice.function_call is not None:
        calls.append(choice.function_call)
    return calls


def defects(choice: Choice, generation: Generation | None) -> list[Finding]:
    """Why ``choice`` cannot be kept as the answer to a request with ``generation`` (empty: nothing)."""
    found = []
    if choice.refusal:
        found.append(Finding("refusal", HARD, f"the model refused ({choice.refusal[:120]!r})"))
    offered = _parameters(generation) if generation is not None else {}
    found += [Finding("tool_call", HARD, why) for call in calls_of(choice) if (why := _call_defect(call, offered))]
    return found
