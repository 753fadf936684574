"""The event contract in schemas/ is current, its examples are valid, and breaking changes are caught."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from modelyard.schemas import check, event_schema, generate, incompatibilities
from modelyard_events import EVENT_TYPES

ROOT = Path(__file__).resolve().parents[3] / "schemas"


def test_checked_in_schemas_are_current_and_additive():
    result = check(ROOT)
    assert result.stale == [], "schemas/ is stale: run `make schemas` and commit"
    assert result.incompatible == []


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_example_validates_against_its_schema_and_model(event_type):
    schema = json.loads((ROOT / "events" / f"{event_type}.json").read_text())
    example = json.loads((ROOT / "examples" / f"{event_type}.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(example)
    assert EVENT_TYPES[event_type].model_validate(example).type == event_type


def test_schema_rejects_a_message_missing_a_required_field():
    schema = event_schema("modelyard.query.submitted.v1")
    example = json.loads((ROOT / "examples" / "modelyard.query.submitted.v1.json").read_text())
    del example["text"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(example)


def test_additive_change_is_compatible_and_breaking_changes_are_not():
    old = event_schema("modelyard.query.submitted.v1")
    added = copy.deepcopy(old)
    added["properties"]["priority"] = {"type": "integer", "default": 0}
    assert incompatibilities(old, added) == []

    removed = copy.deepcopy(old)
    del removed["properties"]["user_role"]
    assert any("user_role: removed" in p for p in incompatibilities(old, removed))

    required = copy.deepcopy(old)
    required["required"] = [*required["required"], "user_role"]
    assert any("user_role: newly required" in p for p in incompatibilities(old, required))

    retyped = copy.deepcopy(old)
    retyped["properties"]["text"] = {"type": "integer"}
    assert any("text: type changed" in p for p in incompatibilities(old, retyped))

    outcome = event_schema("modelyard.query.outcome.v1")
    narrowed = copy.deepcopy(outcome)
    narrowed["$defs"]["OutcomeStatus"]["enum"] = ["completed", "rejected"]
    assert any("enum values removed" in p for p in incompatibilities(outcome, narrowed))


def test_check_reports_a_stale_file(tmp_path):
    root = tmp_path / "schemas"
    shutil.copytree(ROOT, root)
    target = root / "events" / "modelyard.query.outcome.v1.json"
    target.write_text(target.read_text().replace('"answer"', '"answer_text"', 1))
    assert "events/modelyard.query.outcome.v1.json" in check(root).stale


def test_generation_is_deterministic():
    assert generate() == generate()
