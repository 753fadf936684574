"""The layout's rules, checked on the source: who may import whom, and how long a service module may be.

Layers (each top-level folder holds uv workspace members; every member has ``src/<package>``):

* ``libs/*``: shared code. A lib imports other libs only, never a service or an app.
* ``services/*``: one deployable service each. A service imports libs and itself, never another
  service, never an app.
* ``apps/*``: applications above both (the ``modelyard`` CLI, the demo, benchmarks, load generators).
* Production code (services, and libs other than the test harness) never imports ``modelyard_harness``
  or ``modelyard_testing``; and every workspace package a source file imports is among the importer's
  declared dependencies (or theirs), so each package installs on its own (the Docker image installs
  without the dev group).

Tests are held to the same directions, with named exceptions for the seams they exist to test (see
``TEST_SEAMS``). ``tests/`` (across the whole system) and the apps' tests may import anything.

Size: a module under ``services/*/src`` longer than ``MAX_LINES`` lines says why in its docstring, on a
line that starts with ``Size:``.

Everything is read with ``ast`` from the files: nothing is imported, no server is needed.
"""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("libs", "services", "apps")
#: Libraries that exist for tests and benchmarks only: production code must not depend on them.
TEST_ONLY = frozenset({"modelyard_harness", "modelyard_testing"})
MAX_LINES = 400
#: (tests of this package, may import this other package): why the seam is tested from that side.
TEST_SEAMS = {
    ("modelyard_inference", "modelyard_simulator"): "the backend is tested against the simulator, in-process",
    ("modelyard_tenant", "modelyard_metering"): "the usage documents the tenant API serves are written by metering's own sink",
}


@dataclass(frozen=True)
class Member:
    """One workspace member: its layer, its import name, and the workspace packages it may import
    (what its pyproject.toml declares, and what those declare, transitively)."""

    layer: str
    root: Path
    package: str
    declared: frozenset[str]


def _import_name(distribution: str) -> str:
    return distribution.replace("-", "_")


def workspace(repo: Path = REPO) -> dict[str, Member]:
    members = {}
    for layer in LAYERS:
        for pyproject in sorted((repo / layer).glob("*/pyproject.toml")):
            project = tomllib.loads(pyproject.read_text())["project"]
            packages = [p.name for p in (pyproject.parent / "src").iterdir() if (p / "__init__.py").is_file()]
            assert len(packages) == 1, f"{pyproject.parent} must hold exactly one package under src/"
            deps = {_import_name(d.split(">")[0].split("=")[0].split("[")[0].strip()) for d in project.get("dependencies", [])}
            members[packages[0]] = Member(layer, pyproject.parent, packages[0], frozenset(deps))
    return {name: _with_closure(m, members) for name, m in members.items()}


def _with_closure(member: Member, members: dict[str, Member]) -> Member:
    reachable, todo = set(), list(member.declared)
    while todo:
        name = todo.pop()
        if name not in reachable:
            reachable.add(name)
            todo += members[name].declared if name in members else []
    return Member(member.layer, member.root, member.package, frozenset(reachable))


def imported_packages(source: str) -> set[str]:
    """Top-level names of every absolute import in ``source`` (inside functions too)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def violations(importer: Member | None, where: str, source: str, members: dict[str, Member]) -> list[str]:
    """What is wrong with the imports of one file. ``importer`` is the member the file belongs to
    (None for the repository's tests/ and tools/); ``where`` is "src" or "tests"."""
    if importer is None or importer.layer == "apps" and where == "tests":
        return []
    found = []
    for name in sorted(imported_packages(source) & members.keys()):
        if name == importer.package:
            continue
        target = members[name]
        seam = TEST_SEAMS.get((importer.package, name)) if where == "tests" else None
        if target.layer == "apps" and importer.layer != "apps":
            found.append(f"a {importer.layer[:-1]} imports the app {name}")
        elif target.layer == "services" and importer.layer != "apps" and seam is None:
            found.append(f"a {importer.layer[:-1]} imports the service {name}")
        elif where == "src" and name in TEST_ONLY and importer.package not in TEST_ONLY and importer.layer != "apps":
            found.append(f"production code imports the test-only library {name}")
        elif where == "src" and name not in importer.declared:
            found.append(f"imports {name}, which {importer.root.name}/pyproject.toml does not depend on")
    return found


def python_files(repo: Path = REPO) -> list[tuple[Path, Member | None, str]]:
    members = workspace(repo)
    by_root = {m.root: m for m in members.values()}
    out = []
    for path in sorted(repo.glob("**/*.py")):
        rel = path.relative_to(repo)
        if rel.parts[0] not in (*LAYERS, "tests", "tools"):
            continue
        member = by_root.get(repo.joinpath(*rel.parts[:2])) if rel.parts[0] in LAYERS else None
        where = rel.parts[2] if member is not None and len(rel.parts) > 2 else "tests"
        out.append((path, member, where))
    return out


def test_every_import_goes_in_an_allowed_direction():
    members = workspace()
    problems = []
    for path, member, where in python_files():
        for problem in violations(member, where, path.read_text(), members):
            problems.append(f"{path.relative_to(REPO)}: {problem}")
    assert not problems, "forbidden imports:\n" + "\n".join(problems)


def test_the_layers_are_all_there():
    members = workspace()
    layers = {m.layer for m in members.values()}
    assert layers == set(LAYERS)
    assert {"modelyard_events", "modelyard_core", "modelyard_tenancy", "modelyard_usage", "modelyard_harness",
            "modelyard_testing"} <= {p for p, m in members.items() if m.layer == "libs"}
    assert members["modelyard"].layer == "apps"


@pytest.mark.parametrize(("layer", "source", "expected"), [
    ("services", "from modelyard_metering.sink import UsageSink", "a service imports the service modelyard_metering"),
    ("services", "def f():\n    import modelyard_router.service", "a service imports the service modelyard_router"),
    ("libs", "from modelyard_tenant import create_app", "a lib imports the service modelyard_tenant"),
    ("libs", "import modelyard.cli", "a lib imports the app modelyard"),
    ("services", "from modelyard.bench import router", "a service imports the app modelyard"),
    ("services", "from modelyard_harness import produce_raw", "production code imports the test-only library modelyard_harness"),
    ("services", "from modelyard_usage import read", "imports modelyard_usage, which fake/pyproject.toml does not depend on"),
])
def test_the_check_fails_on_a_forbidden_import(layer, source, expected):
    members = workspace()
    fake = Member(layer, REPO / layer / "fake", "modelyard_fake", frozenset({"modelyard_core"}))
    assert violations(fake, "src", source, members) == [expected]


def test_allowed_imports_pass_the_check():
    members = workspace()
    service = Member("services", REPO / "services" / "fake", "modelyard_fake", frozenset({"modelyard_core", "modelyard_usage"}))
    app = Member("apps", REPO / "apps" / "fake", "modelyard_fake", frozenset({"modelyard_router", "modelyard_harness"}))
    assert violations(service, "src", "from modelyard_core.bus import Bus\nfrom modelyard_usage import read\nfrom . import x", members) == []
    assert violations(app, "src", "from modelyard_router.offline import classify_lines\nimport modelyard_harness", members) == []
    tenant_tests = Member("services", REPO / "services" / "tenant", "modelyard_tenant", frozenset())
    assert violations(tenant_tests, "tests", "from modelyard_metering.sink import UsageSink", members) == []
    assert violations(tenant_tests, "tests", "from modelyard_router import service", members) == [
        "a service imports the service modelyard_router"]


# --------------------------------------------------------------------------------------------------
# Size


def size_problem(path: Path, source: str) -> str | None:
    lines = source.count("\n") + (0 if source.endswith("\n") else 1)
    if lines <= MAX_LINES:
        return None
    docstring = ast.get_docstring(ast.parse(source)) or ""
    if any(line.strip().startswith("Size:") and len(line.strip()) > len("Size:") for line in docstring.splitlines()):
        return None
    return f"{path}: {lines} lines, and its docstring has no 'Size:' line saying why"


def test_service_modules_are_short_or_say_why():
    problems = [p for path in sorted(REPO.glob("services/*/src/**/*.py"))
                if (p := size_problem(path.relative_to(REPO), path.read_text())) is not None]
    assert not problems, "\n".join(problems)


def test_the_size_check_reads_the_reason_from_the_docstring():
    body = "x = 1\n" * MAX_LINES
    assert size_problem(Path("m.py"), '"""A module."""\n' + body) is not None
    assert size_problem(Path("m.py"), '"""A module.\n\nSize: one state machine, read top to bottom.\n"""\n' + body) is None
    assert size_problem(Path("m.py"), '"""A module.\n\nSize:\n"""\n' + body) is not None  # a reason, not the word
    assert size_problem(Path("m.py"), '"""A module."""\n' + "x = 1\n" * (MAX_LINES - 1)) is None
