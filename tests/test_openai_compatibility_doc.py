"""docs/openai-compatibility.md names, for every request field, the test that proves it: every test it names
exists (a renamed or deleted test fails here), and every generation parameter of the contract has a row."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from modelyard_events import Generation

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs/openai-compatibility.md"
SHORT = "services/ingress/tests/test_openai_compat_system.py"


def named_tests(text: str) -> set[tuple[str, str]]:
    refs = {(path, name) for path, name in re.findall(r"`([\w/.]+\.py)::(\w+)`", text)}
    refs |= {(SHORT, name) for name in re.findall(r"`S::(\w+)`", text)}
    return refs


def test_every_test_the_table_names_exists():
    refs = named_tests(DOC.read_text())
    assert len(refs) >= 25
    defined: dict[str, set[str]] = {}
    for path, name in sorted(refs):
        if path not in defined:
            tree = ast.parse((ROOT / path).read_text())
            defined[path] = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        assert name in defined[path], f"{path}::{name} is named in {DOC.name} but does not exist"


def test_every_generation_parameter_has_a_row():
    rows = [line for line in DOC.read_text().splitlines() if line.startswith("| `")]
    listed = {field for row in rows for field in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert set(Generation.model_fields) <= listed, set(Generation.model_fields) - listed
