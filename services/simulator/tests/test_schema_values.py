"""Values generated from JSON schemas validate against them; broken ones do not (pure logic, no server)."""

from __future__ import annotations

import random

import jsonschema
import pytest
from modelyard_simulator.schema_values import Hints, SchemaError, break_value, generate, spoil, validator_for

SCHEMAS = [
    {"type": "object", "properties": {"when": {"type": "string", "format": f}}, "required": ["when"]}
    for f in ("date", "date-time", "time", "email", "uri", "hostname", "uuid", "ipv4", "ipv6")
] + [
    {"type": "object", "properties": {"n": {"type": "integer", "minimum": 10, "maximum": 12, "multipleOf": 2}}, "required": ["n"]},
    {"type": "object", "properties": {"x": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}}, "required": ["x"]},
    {"type": "object", "properties": {"x": {"type": "integer", "maximum": -5}}, "required": ["x"]},
    {"type": "object", "properties": {"s": {"type": "string", "minLength": 30, "maxLength": 40}}, "required": ["s"]},
    {"type": "object", "properties": {"c": {"const": "fixed"}, "e": {"enum": [1, "two", None]}}, "required": ["c", "e"]},
    {"type": "object", "properties": {"v": {"oneOf": [{"type": "integer"}, {"type": "string", "format": "email"}]}}, "required": ["v"]},
    {"type": "object", "allOf": [{"properties": {"a": {"type": "boolean"}}, "required": ["a"]},
                                 {"properties": {"b": {"type": "null"}}, "required": ["b"]}]},
    {"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/definitions/item"},
                                                "minItems": 2, "maxItems": 2}},
     "required": ["items"], "definitions": {"item": {"type": "object", "properties": {"sku": {"type": "string"}},
                                                    "required": ["sku"], "additionalProperties": False}}},
    {"type": "object", "properties": {"tree": {"$ref": "#"}, "name": {"type": "string"}}, "required": ["name"]},
    {"type": "object", "properties": {"flags": {"type": "array", "items": {"type": "boolean"}, "uniqueItems": True,
                                                "maxItems": 2}}, "required": ["flags"]},
    {"type": "object", "properties": {"maybe": {"type": ["integer", "null"]}}, "required": ["maybe"]},
    {},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_generated_values_validate(schema) -> None:
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    hints = Hints(["printer", "paper", "floor"], "My printer jams on the third floor", "Clear the tray.", None, [3, 7])
    for seed in range(40):
        validator.validate(generate(schema, random.Random(seed), Hints(**vars(hints) | {"numbers": [3, 7]})))


def test_hints_fill_answer_prose_query_and_numbers() -> None:
    schema = {"type": "object", "properties": {"final_answer": {"type": "integer"}, "explanation": {"type": "string"},
                                               "search_query": {"type": "string"}, "count": {"type": "integer"}},
              "required": ["final_answer", "explanation", "search_query", "count"]}
    value = generate(schema, random.Random(1), Hints(["boxes"], "How many boxes?", "Add them up.", 42, [5]))
    assert value == {"final_answer": 42, "explanation": "Add them up.", "search_query": "How many boxes?", "count": 5}


@pytest.mark.parametrize("schema", [s for s in SCHEMAS if s.get("required") or s.get("allOf")])
def test_broken_values_parse_but_do_not_validate(schema) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    value = generate(schema, random.Random(0), Hints(["word"]))
    broken, changed = break_value(value, schema, validator)
    assert broken and not validator.is_valid(changed)


def test_spoil_never_yields_valid_json_of_the_schema() -> None:
    import json

    schema = SCHEMAS[-3]
    validator = validator_for(schema, strict=False, root_object=True)
    for seed in range(50):
        rng = random.Random(seed)
        text, kind = spoil(generate(schema, rng, Hints(["w"])), schema, validator, rng)
        if kind == "unparsable":
            with pytest.raises(json.JSONDecodeError):
                json.loads(text)
        else:
            assert kind == "schema" and not validator.is_valid(json.loads(text))


@pytest.mark.parametrize(
    ("schema", "strict", "message"),
    [
        ({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}, True,
         "In context=(), 'required' is required to be supplied and to be an array including every key in "
         "properties. Missing 'a'."),
        ({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "object", "properties": {}}}},
          "required": ["a"], "additionalProperties": False}, True,
         "In context=('properties', 'a', 'items'), 'additionalProperties' is required to be supplied and to be false."),
        ({"type": "string"}, False, "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"string\"'."),
        ({"type": "object", "minProperties": -1}, False, "-1 is less than the minimum of 0"),
    ],
)
def test_schemas_openai_refuses(schema, strict, message) -> None:
    with pytest.raises(SchemaError) as caught:
        validator_for(schema, strict=strict, root_object=True)
    assert str(caught.value) == message
