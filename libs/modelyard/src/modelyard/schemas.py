"""The generated contract in ``schemas/``: JSON Schemas, AsyncAPI documents, example messages.

* ``schemas/events/<type>.json`` — one JSON Schema per event type and version, from the pydantic models.
* ``schemas/asyncapi/<service>.json`` — an AsyncAPI 3.0 document per service, from
  ``modelyard_events.topology`` (which topics it receives and sends) with the schemas above as payloads.
* ``schemas/examples/<type>.json`` — one example message per type (``modelyard_events.examples``).

``check`` fails when the files are stale, and when any event schema changed incompatibly against an
earlier committed revision of the same type and version (a field removed or retyped, a field made
required, an enum value dropped): such a change needs a new type (``...v2``), not an edit.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from modelyard_events import EVENT_TYPES
from modelyard_events.examples import examples
from modelyard_events.topology import CHANNELS, SERVICES

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def render(obj: object) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def event_schema(event_type: str) -> dict:
    model = EVENT_TYPES[event_type]
    schema = model.model_json_schema(mode="validation")
    return {"$schema": SCHEMA_DIALECT, "$id": f"https://modelyard.dev/schemas/events/{event_type}.json", **schema}


def asyncapi(service: str) -> dict:
    receives, sends = SERVICES[service]
    channels, operations, messages, schemas = {}, {}, {}, {}
    for name in dict.fromkeys((*receives, *sends)):
        ch = CHANNELS[name]
        event_type = ch.event.TYPE
        msg_name = ch.event.__name__
        schemas[msg_name] = {"$ref": f"../events/{event_type}.json"}
        messages[msg_name] = {
            "name": event_type,
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{msg_name}"},
            "bindings": {"kafka": {"key": {"type": "string", "description": ch.key}}},
        }
        channels[name] = {
            "address": ch.topic,
            "description": ch.description + (" Compacted." if ch.compacted else ""),
            "messages": {msg_name: {"$ref": f"#/components/messages/{msg_name}"}},
        }
    for direction, names in (("receive", receives), ("send", sends)):
        for name in names:
            msg_name = CHANNELS[name].event.__name__
            operations[f"{direction}_{name}"] = {
                "action": direction,
                "channel": {"$ref": f"#/channels/{name}"},
                "messages": [{"$ref": f"#/channels/{name}/messages/{msg_name}"}],
            }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": f"modelyard {service}", "version": "1",
                 "description": f"Kafka topics the {service} service receives and sends. Topic names are shown "
                                "without the deployment's MODELYARD_TOPICS__PREFIX."},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def generate() -> dict[str, str]:
    """Every generated file, by its path relative to ``schemas/``."""
    files = {f"events/{t}.json": render(event_schema(t)) for t in sorted(EVENT_TYPES)}
    files.update({f"asyncapi/{s}.json": render(asyncapi(s)) for s in sorted(SERVICES)})
    for example in examples():
        files[f"examples/{example.TYPE}.json"] = render(json.loads(example.model_dump_json()))
    return files


def write(root: Path) -> list[str]:
    changed = []
    for rel, text in generate().items():
        path = root / rel
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            changed.append(rel)
    return changed


# ---------------------------------------------------------------------------------------------------
# Compatibility


def _strip(schema: object) -> object:
    """A property schema without the parts that do not change what is valid."""
    if isinstance(schema, dict):
        return {k: _strip(v) for k, v in schema.items() if k not in ("description", "title", "default", "examples")}
    if isinstance(schema, list):
        return [_strip(v) for v in schema]
    return schema


def incompatibilities(old: dict, new: dict, where: str = "") -> list[str]:
    """Why a message valid under ``old`` might be rejected under ``new`` (empty when additive only)."""
    problems: list[str] = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name, old_prop in old_props.items():
        if name not in new_props:
            problems.append(f"{where}{name}: removed")
        elif _strip(old_prop) != _strip(new_props[name]):
            problems.append(f"{where}{name}: type changed")
    for name in set(new.get("required", [])) - set(old.get("required", [])):
        problems.append(f"{where}{name}: newly required")
    old_enum, new_enum = old.get("enum"), new.get("enum")
    if old_enum is not None and new_enum is not None and set(old_enum) - set(new_enum):
        problems.append(f"{where}enum values removed: {sorted(set(old_enum) - set(new_enum))}")
    old_defs, new_defs = old.get("$defs", {}), new.get("$defs", {})
    for name, old_def in old_defs.items():
        if name in new_defs:
            problems.extend(incompatibilities(old_def, new_defs[name], f"{where}$defs.{name}."))
    return problems


def _committed_revisions(path: Path) -> list[dict]:
    """Every committed revision of a file (oldest first); empty outside a git checkout."""
    try:
        commits = subprocess.run(["git", "log", "--format=%H", "--", str(path)], cwd=path.parent,
                                 capture_output=True, text=True, check=True).stdout.split()
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path.parent,
                             capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return []
    rel = path.resolve().relative_to(Path(top).resolve())
    revisions = []
    for commit in reversed(commits):
        shown = subprocess.run(["git", "show", f"{commit}:{rel}"], cwd=top, capture_output=True, text=True)
        if shown.returncode == 0:
            revisions.append(json.loads(shown.stdout))
    return revisions


@dataclass
class CheckResult:
    stale: list[str]
    incompatible: list[str]

    @property
    def ok(self) -> bool:
        return not self.stale and not self.incompatible


def check(root: Path) -> CheckResult:
    generated = generate()
    stale = [rel for rel, text in generated.items() if not (root / rel).exists() or (root / rel).read_text() != text]
    known = set(generated)
    stale += [str(p.relative_to(root)) for p in root.glob("*/*.json") if str(p.relative_to(root)) not in known]
    incompatible = []
    for rel, text in generated.items():
        if not rel.startswith("events/"):
            continue
        new = json.loads(text)
        for old in _committed_revisions(root / rel):
            incompatible += [f"{rel}: {p}" for p in incompatibilities(old, new)]
    return CheckResult(sorted(stale), sorted(set(incompatible)))
