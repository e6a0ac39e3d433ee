"""The package's shape is a contract: rooms, their imports, module sizes, no cycles."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "redo_hooks"

#: What each room may import (besides itself). The top-level modules are
#: rooms of their own; see each subpackage's docstring for the why.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "backoff": set(),
    "settings": {"errors", "store"},  # store.connections parses Redis URLs
    "models": {"errors"},
    "store": {"errors", "settings", "models", "logs"},
    "dispatch": {"errors", "settings", "backoff", "models", "store", "logs", "tracing"},
    "ops": {"errors", "settings", "models", "store", "dispatch", "logs"},
    "receiver": {"errors", "settings", "models", "store", "dispatch", "ops", "logs", "tracing"},
    "redo_api": {"errors", "backoff"},
    "dev": {"errors", "settings", "models", "store", "dispatch", "ops", "receiver", "logs"},
    "hooks": {"errors", "settings", "models", "dispatch", "receiver", "ops", "dashboard"},
    "admin": {"ops", "store"},  # the operator API's public names
    "dashboard": {"errors", "settings", "models", "store", "dispatch", "ops", "logs"},
    "jobs": {"dispatch"},
    "logs": set(),  # a leaf every room that logs may use
    "tracing": set(),  # OpenTelemetry spans, when the API is installed
    "testing": {"errors", "settings", "models", "store", "dispatch", "receiver", "dev", "hooks"},
}


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The redo_hooks modules ``name`` imports (``from . import x`` names module x)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + (node.module.split(".") if node.module else []))
            else:
                target = node.module or ""
            subs = {f"{target}.{alias.name}" for alias in node.names} & known
            found |= subs or ({target} & known)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names} & known
    found.discard(name)
    return found


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def test_at_most_twelve_modules_at_the_top() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_is_over_450_lines(name: str) -> None:
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= 450, f"{name}: {lines} lines"


def test_every_subpackage_says_what_lives_there_and_what_it_may_import() -> None:
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert doc, f"{init.parent.name}/__init__.py has no docstring"
        if init.parent.name in ALLOWED and init.parent.name not in ("models", "redo_api"):
            assert "import" in doc, f"{init.parent.name}: say what it may import"


def test_rooms_import_only_the_rooms_below_them() -> None:
    wrong = []
    for name, deps in graph().items():
        here = room(name)
        if here not in ALLOWED:
            continue  # cli (the composition root) and the package's __init__
        for dep in deps:
            there = room(dep)
            if there != here and there not in ALLOWED[here]:
                wrong.append(f"{name} -> {dep}")
    assert wrong == []


def test_there_is_no_import_cycle() -> None:
    edges = graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == []


REFERENCE = re.compile(r"``([\w./-]+\.(?:py|md|lua|json|yaml))``|`([\w./-]+\.(?:py|md|lua))`")


def test_file_references_in_docstrings_and_comments_exist() -> None:
    missing = []
    for name, path in modules().items():
        for match in REFERENCE.finditer(path.read_text()):
            ref = match.group(1) or match.group(2)
            if ref.startswith((".", "/")):
                continue  # a run-time file (.redo-hooks/) or a URL path
            candidates = [ROOT / ref, PACKAGE / ref, path.parent / ref, PACKAGE / "store/lua" / ref]
            candidates += [p / ref for p in PACKAGE.iterdir() if p.is_dir()]
            if not any(c.exists() for c in candidates):
                missing.append(f"{name}: {ref}")
    assert missing == []


#: A measured figure: a duration in µs/ns/ms, an "N times faster" claim, a share
#: of some cost. These rot in code; benchmarks/README.md and the docs keep
#: them beside the command that measures them.
FIGURE = re.compile(
    r"~?\d[\d.,]*\s*(?:µs|us|ns|ms)\b"
    r"|\b\d+(?:\.\d+)?\s*[x\u00d7](?:\s+(?:faster|slower|more|less|as)\b|(?=[\s,.;)]))"
    r"|\d+(?:\.\d+)?%\s+(?:less|more|faster|slower|of (?:its|a|an|the) \w+)"
    r"|\ba (?:third|quarter|half) of (?:a|the) (?:receiver|request|worker)"
)


@pytest.mark.parametrize(
    "path", sorted(p for p in PACKAGE.rglob("*") if p.suffix in (".py", ".lua")), ids=str
)
def test_no_module_carries_a_measured_figure(path: Path) -> None:
    found = [
        f"{path.relative_to(ROOT)}:{n}: {match.group(0)!r}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        for match in FIGURE.finditer(line)
    ]
    assert found == []


@pytest.mark.parametrize(
    "line",
    [
        "about 3x faster than pydantic",
        "costs ~14 ms and a fresh",
        "(~100 µs): at most",
        "~30 us more client CPU",
        "7-16% less Redis CPU",
        "which cost ~10% of a request's CPU",
        "a line per event costs a third of the receiver's CPU",
    ],
)
def test_the_figure_check_catches_what_it_is_for(line: str) -> None:
    assert FIGURE.search(line), line
