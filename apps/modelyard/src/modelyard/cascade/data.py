"""Labelled answers from RouteLLM's CSV format or JSON lines (``train-scorer``, ``eval-cascade``, the benchmarks).

CSV (RouteLLM's recorded-answer layout, e.g. the shipped ``modelyard/data/gsm8k/gsm8k_dev.csv``): a prompt column,
one column per model holding True/False (was its final answer right) and ``<model>_response`` holding its
text. ``--small-model`` names the model whose answers are scored; ``--large-model`` (optional) the one an
escalation would call, for the quality/cost evaluation. Columns can also be named one by one.

JSON lines: ``{"query", "response", "correct", "logprobs"?, "finish_reason"?, "large_correct"?,
"large_response"?, "response_format"?}``.

A bad row is an error naming the file, the row and the field: a training set is never silently shortened.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The GSM8K development file shipped with the app (licence and source in its README) and its fixed split.
GSM8K_DEV = Path(__file__).resolve().parents[1] / "data" / "gsm8k" / "gsm8k_dev.csv"
GSM8K_SPLIT = GSM8K_DEV.with_name("gsm8k_dev.split.json")
SMALL_MODEL = "mistralai/Mixtral-8x7B-Instruct-v0.1"
LARGE_MODEL = "gpt-4-1106-preview"
_TRUE = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True, slots=True)
class Example:
    query: str
    response: str
    correct: bool
    source: str  # file name
    row: int  # 0-based data row in the file
    logprobs: tuple[float, ...] | None = None
    finish_reason: str | None = None
    response_format: dict[str, Any] | None = None
    large_correct: bool | None = None  # the large model's answer to the same query, for the cascade evaluation
    large_response: str | None = None


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _flag(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE:
        return _TRUE[value.strip().lower()]
    raise ValueError(f"{where}: expected true/false, not {value!r}")


def read_csv(
    path: str | Path,
    *,
    prompt_column: str = "prompt",
    small_model: str = SMALL_MODEL,
    large_model: str | None = LARGE_MODEL,
    correct_column: str | None = None,
    response_column: str | None = None,
    large_response_column: str | None = None,
) -> list[Example]:
    """Rows of a recorded-answer CSV; the correctness and response columns default to the model's."""
    correct_column = correct_column or small_model
    response_column = response_column or f"{small_model}_response"
    large_response_column = large_response_column or f"{large_model}_response"
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        needed = [prompt_column, correct_column, response_column]
        if large_model:
            needed += [large_model, large_response_column]
        if missing := [c for c in needed if c not in columns]:
            raise ValueError(f"{path}: no column {missing[0]!r} (columns: {', '.join(columns)})")
        examples = []
        for row, record in enumerate(reader):
            where = f"{path}: row {row + 2}"  # +2: the header is line 1
            examples.append(
                Example(
                    query=record[prompt_column],
                    response=record[response_column],
                    correct=_flag(record[correct_column], f"{where}, column {correct_column!r}"),
                    source=Path(path).name,
                    row=row,
                    large_correct=_flag(record[large_model], f"{where}, column {large_model!r}") if large_model else None,
                    large_response=record[large_response_column] if large_model else None,
                )
            )
    return examples


def _logprobs(raw: Any, where: str) -> tuple[float, ...] | None:
    """Floats, or OpenAI's ``logprobs.content`` entries (``{"token", "logprob", ...}``), or null."""
    if raw is None:
        return None
    if isinstance(raw, dict) and "content" in raw:
        raw = raw["content"]
        if raw is None:
            return None
    if not isinstance(raw, list):
        raise ValueError(f"{where}: 'logprobs' must be a list of numbers (or of {{\"logprob\": number}} objects)")
    values = []
    for item in raw:
        value = item.get("logprob") if isinstance(item, dict) else item
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value > 0 or math.isnan(value):
            raise ValueError(f"{where}: 'logprobs' holds {value!r}: log-probabilities are numbers <= 0")
        values.append(float(value))
    return tuple(values)


def parse_record(record: Any, where: str, *, need_label: bool) -> dict[str, Any]:
    """The checked fields of one JSON line (shared by training and by ``score``)."""
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object")
    out: dict[str, Any] = {}
    for name in ("query", "response"):
        if not isinstance(record.get(name), str):
            raise ValueError(f"{where}: {name!r} must be a string")
        out[name] = record[name]
    if need_label:
        if "correct" not in record:
            raise ValueError(f"{where}: 'correct' is missing")
        out["correct"] = _flag(record["correct"], f"{where}, 'correct'")
    finish_reason = record.get("finish_reason")
    if finish_reason is not None and not isinstance(finish_reason, str):
        raise ValueError(f"{where}: 'finish_reason' must be a string")
    out["finish_reason"] = finish_reason
    response_format = record.get("response_format")
    if response_format is not None and not isinstance(response_format, dict):
        raise ValueError(f"{where}: 'response_format' must be an object")
    out["response_format"] = response_format
    out["logprobs"] = _logprobs(record.get("logprobs"), where)
    return out


def read_jsonl(path: str | Path) -> list[Example]:
    examples = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}: line {number}"
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{where}: not JSON ({exc})") from None
            fields = parse_record(record, where, need_label=True)
            large = record.get("large_correct")
            examples.append(
                Example(
                    source=Path(path).name,
                    row=len(examples),
                    large_correct=None if large is None else _flag(large, f"{where}, 'large_correct'"),
                    large_response=record.get("large_response"),
                    **fields,
                )
            )
    return examples


def read(path: str | Path, **csv_options: Any) -> list[Example]:
    """By extension: ``.csv`` (with ``csv_options``) or JSON lines (``.jsonl``, ``.json``)."""
    return read_csv(path, **csv_options) if str(path).lower().endswith(".csv") else read_jsonl(path)


def load_examples(
    paths: Sequence[str | Path], *, split: str | Path | None = None, part: str = "dev", **csv_options: Any
) -> tuple[list[Example], list[int] | None, list[dict[str, Any]]]:
    """Rows of every file (only a split's ``part`` when ``split`` is given), their folds when the split has
    them for that part, and where they came from (path, sha256, rows) for a model file's provenance."""
    examples: list[Example] = []
    provenance = []
    plan = json.loads(Path(split).read_text(encoding="utf-8")) if split else None
    if plan is not None and part not in ("dev", "held_out"):
        raise ValueError(f"a split has the parts 'dev' and 'held_out', not {part!r}")
    folds: list[int] = []
    for path in paths:
        rows = read(path, **csv_options)
        digest = file_digest(path)
        if plan is not None:
            if plan["sha256"] != digest:
                raise ValueError(f"{path}: not the file the split {split} was made from (sha256 differs)")
            rows = [rows[i] for i in plan[part]]
            if part == "dev":
                folds.extend(plan["folds"][str(e.row)] for e in rows)
        examples.extend(rows)
        provenance.append({"path": Path(path).name, "sha256": digest, "rows": len(rows),
                           "which": f"{Path(split).name}:{part}" if plan is not None else "all"})
    return examples, (folds or None), provenance
