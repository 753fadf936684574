"""Replay mode: recorded answers from a JSON-lines file or a labelled CSV.

JSON lines: ``{"prompt": ..., "responses": {"<model>": "<text>"}}``, optionally ``"system"`` and
``"correct": {"<model>": true|false}``. CSV (RouteLLM's format, e.g. the shared GSM8K file): a ``prompt``
column, one ``<model>_response`` column per recorded model and, optionally, a ``<model>`` column of
True/False saying whether that answer was right, and a ``system`` column.

A request matches a record when its last user message equals the record's prompt (surrounding white
space ignored). A later record for the same prompt adds to, and overrides, earlier ones. A record with
a ``system`` prompt matches only requests whose first system message equals it, and wins over a record
of the same prompt without one (so a test can prove a system prompt reached the model).

Recorded model names are served under the names ``model_map`` gives them (``{"gpt-4-1106-preview":
["gpt-4o", "gpt-4-turbo"]}``); a name not in the map is served as it is.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

Key = tuple[str | None, str]  # (system prompt or None, prompt), both stripped
_RESPONSE_SUFFIX = "_response"


@dataclass(frozen=True, slots=True)
class Recorded:
    text: str
    #: whether the recorded answer was right, when the file says so
    correct: bool | None = None


class ReplayBook:
    def __init__(self, records: dict[Key, dict[str, Recorded]]) -> None:
        self._records = records

    @classmethod
    def load(cls, path: Path, model_map: dict[str, list[str]] | None = None) -> ReplayBook:
        model_map = model_map or {}
        records: dict[Key, dict[str, Recorded]] = {}
        rows = _csv_rows(path) if path.suffix.lower() == ".csv" else _jsonl_rows(path)
        for system, prompt, answers in rows:
            key = (system.strip() if system is not None else None, prompt.strip())
            served = records.setdefault(key, {})
            for model, recorded in answers.items():
                for name in model_map.get(model, [model]):
                    served[name] = recorded
        return cls(records)

    def lookup(self, prompt: str, model: str, system: str | None = None) -> Recorded | None:
        prompt = prompt.strip()
        if system is not None and (found := self._records.get((system.strip(), prompt), {}).get(model)) is not None:
            return found
        return self._records.get((None, prompt), {}).get(model)

    def __len__(self) -> int:
        return len(self._records)


Row = tuple[str | None, str, dict[str, Recorded]]


def _jsonl_rows(path: Path) -> Iterator[Row]:
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc})") from None
            prompt = record.get("prompt") if isinstance(record, dict) else None
            responses = record.get("responses") if isinstance(record, dict) else None
            if not isinstance(prompt, str) or not isinstance(responses, dict):
                raise ValueError(f'{path}:{number}: expected {{"prompt": str, "responses": {{model: text}}}}')
            if not all(isinstance(m, str) and isinstance(t, str) for m, t in responses.items()):
                raise ValueError(f"{path}:{number}: every response must map a model name to a text")
            system = record.get("system")
            if system is not None and not isinstance(system, str):
                raise ValueError(f"{path}:{number}: 'system' must be a string")
            correct: Any = record.get("correct") or {}
            if not isinstance(correct, dict) or not all(isinstance(v, bool) for v in correct.values()):
                raise ValueError(f"{path}:{number}: 'correct' must map model names to true/false")
            yield system, prompt, {m: Recorded(t, correct.get(m)) for m, t in responses.items()}


def _csv_rows(path: Path) -> Iterator[Row]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        models = [c.removesuffix(_RESPONSE_SUFFIX) for c in columns if c.endswith(_RESPONSE_SUFFIX)]
        if "prompt" not in columns or not models:
            raise ValueError(f"{path}: a replay CSV needs a 'prompt' column and '<model>_response' columns")
        for row in reader:
            line = reader.line_num
            answers = {}
            for model in models:
                text = row.get(model + _RESPONSE_SUFFIX)
                if text is None:
                    raise ValueError(f"{path}:{line}: the row has fewer columns than the header")
                if text.strip():
                    answers[model] = Recorded(text, _flag(row.get(model), path, line, model))
            yield row.get("system") or None, row["prompt"] or "", answers


def _flag(value: str | None, path: Path, line: int, column: str) -> bool | None:
    if value is None or not value.strip():
        return None
    lowered = value.strip().lower()
    if lowered not in ("true", "false", "1", "0"):
        raise ValueError(f"{path}:{line}: column {column!r} must be True or False, not {value!r}")
    return lowered in ("true", "1")
