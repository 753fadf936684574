"""Readers of labelled queries: RouteLLM-style CSV (a file or a folder of them) and JSONL.

CSV: a ``prompt`` column plus one boolean column per model class (``--small-column`` /
``--large-column``, defaulting to the shared MMLU data's). The group of a row is its file's name
without ``mmlu_``/``.csv`` (one MMLU subject per file), or the ``group_by`` column when given.

JSONL: ``{"text", "slm_ok", "llm_ok", ...}`` with optional ``user_role``, ``agent_type``,
``history`` (a count or a list of turns), ``weight``, and the row's group: ``group_field`` when given,
else the first of ``tenant``, ``group``, ``style``, ``source``.
A helpdesk row may give ``level`` instead of the labels: simple/moderate mean the small model
suffices (``slm_ok`` true), complex/critical that it does not; the large model is taken as right.

A bad row raises ``ValueError`` naming the file, the line and the field: nothing is skipped silently.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from .features import Analyze, Query
from .model import Example

SMALL_COLUMN = "mistralai/Mixtral-8x7B-Instruct-v0.1"
LARGE_COLUMN = "gpt-4-1106-preview"
LEVELS = ("simple", "moderate", "complex", "critical")
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def level_labels(level: str) -> tuple[bool, bool]:
    """(slm_ok, llm_ok) of a helpdesk level: simple and moderate need no more than the small model; complex
    and critical need a large one, which is taken as right."""
    return level in LEVELS[:2], True


def _bool(value, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{where}: expected true/false, got {value!r}")


def _history_turns(value, where: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, list)):
        raise ValueError(f"{where}: 'history' must be a count or a list of turns")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{where}: 'history' count must be >= 0")
        return value
    return len(value)


def _query(text: str, role, history: int, agent, analyze: Analyze | None) -> Query:
    if analyze is None:
        return Query(text, user_role=role, agent_type=agent, history_turns=history)
    k = analyze(text, role, history, agent)
    return Query(text, user_role=role, agent_type=agent, history_turns=history, factors=dict(k.factors), level=k.level,
                 incident=k.incident)


def read_csv(
    path: str | Path,
    small_column: str = SMALL_COLUMN,
    large_column: str = LARGE_COLUMN,
    group_column: str | None = None,
    analyze: Analyze | None = None,
) -> Iterator[Example]:
    path = Path(path)
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise ValueError(f"{path}: no CSV files")
    csv.field_size_limit(sys.maxsize)
    for file in files:
        group = file.stem.removeprefix("mmlu_")
        with file.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"prompt", small_column, large_column, *([group_column] if group_column else [])} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{file}: missing column(s) {sorted(missing)}")
            for line, row in enumerate(reader, start=2):
                where = f"{file}:{line}"
                text = row["prompt"]
                if not text or not text.strip():
                    raise ValueError(f"{where}: empty 'prompt'")
                yield Example(
                    _query(text, None, 0, None, analyze),
                    slm_ok=_bool(row[small_column], f"{where} {small_column}"),
                    llm_ok=_bool(row[large_column], f"{where} {large_column}"),
                    group=row[group_column] if group_column else group,
                )


def read_jsonl(path: str | Path, analyze: Analyze | None = None, group_field: str | None = None) -> Iterator[Example]:
    path = Path(path)
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{where}: each line must be a JSON object")
            text = obj.get("text")
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{where}: 'text' must be a non-empty string")
            if "slm_ok" in obj:
                slm_ok = _bool(obj["slm_ok"], f"{where} slm_ok")
                llm_ok = None if obj.get("llm_ok") is None else _bool(obj["llm_ok"], f"{where} llm_ok")
            elif "level" in obj:
                if obj["level"] not in LEVELS:
                    raise ValueError(f"{where}: 'level' must be one of {LEVELS}, got {obj['level']!r}")
                slm_ok, llm_ok = level_labels(obj["level"])
            else:
                raise ValueError(f"{where}: needs 'slm_ok' (and 'llm_ok') or 'level'")
            role, agent = obj.get("user_role"), obj.get("agent_type")
            for name, value in (("user_role", role), ("agent_type", agent)):
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"{where}: '{name}' must be a string")
            weight = obj.get("weight", 1.0)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
                raise ValueError(f"{where}: 'weight' must be a number >= 0")
            if group_field is not None:
                if obj.get(group_field) is None:
                    raise ValueError(f"{where}: no '{group_field}' field to group by")
                group = str(obj[group_field])
            else:
                group = str(obj.get("tenant") or obj.get("group") or obj.get("style") or obj.get("source") or "")
            query = _query(text, role, _history_turns(obj.get("history"), where), agent, analyze)
            yield Example(query, slm_ok, llm_ok, float(weight), group, level=obj.get("level"))


def is_jsonl(path: str | Path) -> bool:
    return Path(path).suffix in (".jsonl", ".json")


def read(
    path: str | Path,
    analyze: Analyze | None = None,
    *,
    small_column: str = SMALL_COLUMN,
    large_column: str = LARGE_COLUMN,
    group_by: str | None = None,
) -> list[Example]:
    """A CSV file or folder, or a JSONL file, by its name. ``group_by``: the CSV column or JSONL field
    that names each row's group (default: the CSV file's name; the JSONL fields named above)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder")
    if is_jsonl(path):
        return list(read_jsonl(path, analyze, group_field=group_by))
    return list(read_csv(path, small_column, large_column, group_by, analyze))
