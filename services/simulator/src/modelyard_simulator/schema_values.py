"""JSON schemas of tool parameters and structured output: checking them as OpenAI does, generating values
that validate against them, and breaking such a value on purpose (the defect knobs).

Generation covers what function and response schemas use: ``type`` (also lists, with ``null``), objects
(required properties always, optional ones half the time, no extra keys), arrays (``minItems`` /
``maxItems`` / ``uniqueItems``), ``enum``, ``const``, ``anyOf`` / ``oneOf`` / ``allOf``, ``$ref`` into
``$defs`` / ``definitions``, numeric bounds and ``multipleOf``, string lengths and the simple formats
(date, date-time, time, email, uri, uuid, hostname, ipv4, ipv6, duration). ``pattern`` is not honoured.
Values come from the conversation where the property name suggests it (an ``answer`` gets the final
answer, a ``summary`` prose, a ``query`` the question, numbers the numbers of the prompt).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as _JsonSchemaError


class SchemaError(ValueError):
    """A schema OpenAI would refuse; the message says where (``In context=(...)``)."""


_VALIDATORS: dict[bytes, Draft202012Validator] = {}
_MAX_CACHED = 512


def validator_for(schema: dict[str, Any], *, strict: bool, root_object: bool) -> Draft202012Validator:
    """A validator of ``schema`` once it passed the checks (cached: clients repeat their schemas)."""
    key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS) + (b"\x01" if strict else b"\x00")
    cached = _VALIDATORS.get(key)
    if cached is not None:
        return cached
    try:
        Draft202012Validator.check_schema(schema)
    except _JsonSchemaError as exc:
        raise SchemaError(exc.message) from None
    if root_object and _types(schema) != ["object"]:
        shown = schema.get("type")
        raise SchemaError(f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{shown}\"'.")
    if strict:
        _check_strict(schema, ())
    if len(_VALIDATORS) >= _MAX_CACHED:
        _VALIDATORS.clear()
    validator = _VALIDATORS[key] = Draft202012Validator(schema)
    return validator


def _types(node: Any) -> list[str]:
    if not isinstance(node, dict):
        return []
    kind = node.get("type")
    if kind is None:
        return ["object"] if "properties" in node else (["array"] if "items" in node else [])
    return list(kind) if isinstance(kind, list) else [kind]


def _check_strict(node: Any, context: tuple[str, ...]) -> None:
    """OpenAI's strict mode: every object closes its properties and requires all of them."""
    if not isinstance(node, dict):
        return
    if "object" in _types(node):
        if node.get("additionalProperties", True) is not False:
            raise SchemaError(
                f"In context={context!r}, 'additionalProperties' is required to be supplied and to be false."
            )
        required = node.get("required") or []
        for key in node.get("properties") or {}:
            if key not in required:
                raise SchemaError(
                    f"In context={context!r}, 'required' is required to be supplied and to be an array including "
                    f"every key in properties. Missing '{key}'."
                )
    for key, sub in (node.get("properties") or {}).items():
        _check_strict(sub, (*context, "properties", key))
    for group in ("$defs", "definitions"):
        for key, sub in (node.get(group) or {}).items():
            _check_strict(sub, (*context, group, key))
    for group in ("anyOf", "allOf"):
        for k, sub in enumerate(node.get(group) or []):
            _check_strict(sub, (*context, group, str(k)))
    if isinstance(node.get("items"), dict):
        _check_strict(node["items"], (*context, "items"))


# --- generating values ---------------------------------------------------------------------------------

_ANSWER_NAMES = ("answer", "result", "total", "solution")
_PROSE_NAMES = ("reason", "explanation", "summary", "text", "content", "message", "response", "description",
                "detail", "body", "reply", "analysis", "comment", "note", "steps", "rationale")
_QUERY_NAMES = ("query", "question", "prompt", "search", "keyword")


@dataclass
class Hints:
    """What the conversation offers to fill values with."""

    words: list[str]
    question: str = ""
    prose: str = ""
    answer: int | None = None
    numbers: list[int] = field(default_factory=list)

    def word(self, rng: random.Random, name: str) -> str:
        return rng.choice(self.words) if self.words else (name or "value")

    def text(self, rng: random.Random, name: str) -> str:
        lowered = name.lower()
        if self.answer is not None and any(n in lowered for n in _ANSWER_NAMES):
            return str(self.answer)
        if any(n in lowered for n in _PROSE_NAMES) or any(n in lowered for n in _ANSWER_NAMES):
            return self.prose or " ".join(self.words[:6]) or "No details."
        if any(n in lowered for n in _QUERY_NAMES):
            return self.question[:200] or self.word(rng, name)
        return self.word(rng, name)

    def number(self, rng: random.Random, name: str) -> int | None:
        if self.answer is not None and any(n in name.lower() for n in _ANSWER_NAMES):
            return self.answer
        return self.numbers.pop(0) if self.numbers else None


_FORMATS = {
    "date": lambda rng, word: f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
    "date-time": lambda rng, word: f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
    f"{rng.randint(0, 59):02d}:00Z",
    "time": lambda rng, word: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00",
    "email": lambda rng, word: f"{word.lower()}@example.com",
    "uri": lambda rng, word: f"https://example.com/{word.lower()}",
    "url": lambda rng, word: f"https://example.com/{word.lower()}",
    "hostname": lambda rng, word: f"{word.lower()}.example.com",
    "uuid": lambda rng, word: "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}".format(
        rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12), rng.getrandbits(12), rng.getrandbits(48)
    ),
    "ipv4": lambda rng, word: f"192.0.2.{rng.randint(1, 254)}",
    "ipv6": lambda rng, word: f"2001:db8::{rng.randint(1, 0xFFFF):x}",
    "duration": lambda rng, word: f"PT{rng.randint(1, 59)}M",
}


class _Generator:
    def __init__(self, root: dict[str, Any], rng: random.Random, hints: Hints) -> None:
        self.root, self.rng, self.hints = root, rng, hints

    def resolve(self, node: Any) -> Any:
        for _ in range(32):  # a chain of references, never a cycle
            if not isinstance(node, dict) or not isinstance(node.get("$ref"), str):
                return node
            target: Any = self.root
            for part in node["$ref"].removeprefix("#").strip("/").split("/"):
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if part else target
            node = target
        return {}

    def value(self, node: Any, name: str = "", depth: int = 0) -> Any:
        node = self.resolve(node)
        if not isinstance(node, dict) or not node:
            return None if node is False else self.hints.text(self.rng, name)
        if "const" in node:
            return node["const"]
        if node.get("enum"):
            return self.rng.choice(node["enum"])
        for group in ("anyOf", "oneOf"):
            if node.get(group):
                branches = [b for b in node[group] if _types(self.resolve(b)) != ["null"]] or node[group]
                return self.value(self.rng.choice(branches), name, depth)
        if node.get("allOf"):
            merged = {k: v for k, v in node.items() if k != "allOf"}
            for part in node["allOf"]:
                resolved = self.resolve(part)
                merged = {**merged, **resolved,
                          "properties": {**merged.get("properties", {}), **resolved.get("properties", {})},
                          "required": [*merged.get("required", []), *resolved.get("required", [])]}
            return self.value(merged, name, depth)
        types = [t for t in _types(node) if t != "null"] or _types(node) or ["string"]
        kind = types[0]
        if kind == "object":
            return self.object(node, depth)
        if kind == "array":
            return self.array(node, name, depth)
        if kind in ("integer", "number"):
            return self.number(node, name, kind)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self.string(node, name)

    def object(self, node: dict[str, Any], depth: int) -> dict[str, Any]:
        required = set(node.get("required") or ())
        out = {}
        for key, sub in (node.get("properties") or {}).items():
            if key in required or (depth < 4 and self.rng.random() < 0.5):
                out[key] = self.value(sub, key, depth + 1)
        return out

    def array(self, node: dict[str, Any], name: str, depth: int) -> list[Any]:
        low = node.get("minItems", 1 if depth < 4 else 0)
        high = node.get("maxItems", max(low, 3))
        count = self.rng.randint(low, max(low, min(high, low + 2)))
        items = node.get("items", {})
        values: list[Any] = []
        for _ in range(count * 4 if node.get("uniqueItems") else count):
            item = self.value(items, name, depth + 1)
            if not node.get("uniqueItems") or item not in values:
                values.append(item)
            if len(values) == count:
                break
        return values

    def number(self, node: dict[str, Any], name: str, kind: str) -> int | float:
        low_in, low_ex = node.get("minimum"), node.get("exclusiveMinimum")
        high_in, high_ex = node.get("maximum"), node.get("exclusiveMaximum")
        step = node.get("multipleOf")

        def fits(v: float) -> bool:
            return ((low_in is None or v >= low_in) and (low_ex is None or v > low_ex)
                    and (high_in is None or v <= high_in) and (high_ex is None or v < high_ex)
                    and (not step or abs(v / step - round(v / step)) < 1e-9))

        hinted = self.hints.number(self.rng, name)
        if hinted is not None and fits(hinted):
            return hinted if kind == "integer" else float(hinted)
        low = max((b for b in (low_in, low_ex) if b is not None), default=None)
        high = min((b for b in (high_in, high_ex) if b is not None), default=None)
        low = low if low is not None else (high - 100 if high is not None else 1)
        high = high if high is not None else low + 100
        value: float = (low + high) / 2
        for _ in range(16):
            candidate = self.rng.uniform(low, high)
            candidate = step * round(candidate / step) if step else candidate
            candidate = round(candidate) if kind == "integer" else round(candidate, 2)
            if fits(candidate):
                value = candidate
                break
        return int(value) if kind == "integer" else float(value)

    def string(self, node: dict[str, Any], name: str) -> str:
        form = _FORMATS.get(node.get("format", ""))
        text = form(self.rng, self.hints.word(self.rng, name)) if form else self.hints.text(self.rng, name)
        low, high = node.get("minLength", 0), node.get("maxLength")
        while len(text) < low:
            text += " " + self.hints.word(self.rng, name)
        return text[:high] if high is not None else text


def generate(schema: dict[str, Any] | None, rng: random.Random, hints: Hints) -> Any:
    """A value that validates against ``schema`` (for the keywords listed in the module docstring)."""
    if not schema:
        return {}
    return _Generator(schema, rng, hints).value(schema)


def spoil(
    value: Any, schema: dict[str, Any] | None, validator: Draft202012Validator | None, rng: random.Random
) -> tuple[str, str]:
    """A defective rendering of ``value``: ``(text, "schema")`` that parses but does not validate (when the
    schema leaves something to violate), or ``(text, "unparsable")`` -- cut short, or wrapped in a
    Markdown code fence, as models do."""
    if schema and validator is not None and rng.random() < 0.5:
        broken, changed = break_value(value, schema, validator)
        if broken:
            return orjson.dumps(changed).decode(), "schema"
    text = orjson.dumps(value).decode()
    if isinstance(value, (dict, list)) and len(text) > 2 and rng.random() < 0.5:
        return text[: max(1, len(text) * 2 // 3)], "unparsable"
    return f"```json\n{text}\n```", "unparsable"


def break_value(value: Any, schema: dict[str, Any], validator: Draft202012Validator) -> tuple[bool, Any]:
    """``(True, value changed so that it parses but no longer validates)``, or ``(False, None)`` when the
    schema leaves nothing to violate (``{}``, say)."""
    generator = _Generator(schema, random.Random(0), Hints(words=[]))
    node = generator.resolve(schema)
    candidates: list[Any] = []
    if isinstance(value, dict):
        for key in node.get("required") or ():
            if key in value:
                candidates.append({k: v for k, v in value.items() if k != key})
        for key, sub in (node.get("properties") or {}).items():
            if key in value:
                candidates.append({**value, key: _wrong_type(generator.resolve(sub))})
    candidates.append(_wrong_type(node))
    for candidate in candidates:
        if not validator.is_valid(candidate):
            return True, candidate
    return False, None


def _wrong_type(node: Any) -> Any:
    types = _types(node)
    if "string" not in types and not (isinstance(node, dict) and "enum" in node):
        return "not a valid value"
    if "integer" not in types and "number" not in types:
        return 12345
    return [["not", "valid"]]
