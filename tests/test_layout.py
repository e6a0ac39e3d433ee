"""The package's shape is a contract: rooms, their imports, module sizes, no cycles."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "redo_hooks"

#: What each top-level module may import (besides itself). A subpackage
#: says it in its docstring ("May import ``a``, ``b`` ..."), which
#: ``test_each_subpackage_docstring_lists_exactly_the_rooms_it_imports`` reads.
TOP_LEVEL: dict[str, set[str]] = {
    "errors": set(),
    "backoff": set(),
    "redis_url": {"errors"},  # pure: settings and store both parse URLs here
    "settings": {"errors", "redis_url"},
    "hooks": {"errors", "settings", "models", "dispatch", "receiver", "ops", "dashboard"},
    "admin": {"ops", "store"},  # the operator API's public names
    "jobs": {"dispatch"},
    "logs": set(),  # a leaf every room that logs may use
    "tracing": set(),  # OpenTelemetry spans, when the API is installed
    "testing": {"errors", "settings", "models", "store", "dispatch", "receiver", "dev", "hooks"},
}
#: The composition root: it may import every room, and none imports it.
ROOT_ROOMS = {"cli", "__init__"}
LAYERING = re.compile(r"May import (.*?)(?:;|\.\s|\.$)", re.DOTALL)


def declared(package: Path) -> set[str]:
    """The rooms a subpackage's docstring says it may import."""
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    found = LAYERING.search(doc)
    assert found, f"{package.name}: its docstring says what it may import (May import ...)"
    return {name.split(".")[0] for name in re.findall(r"``([\w.]+)``", found.group(1))}


def allowed() -> dict[str, set[str]]:
    rules = dict(TOP_LEVEL)
    for init in PACKAGE.glob("*/__init__.py"):
        if init.parent.name not in ROOT_ROOMS:
            rules[init.parent.name] = declared(init.parent)
    return rules


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


def code_lines(path: Path) -> int:
    """Lines of ``path`` that hold code: docstrings, comments and blank lines excluded."""
    source = path.read_text()
    docs: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docs.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    skipped = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT}
    skipped |= {tokenize.DEDENT, tokenize.ENDMARKER}
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skipped:
            lines.update(n for n in range(token.start[0], token.end[0] + 1) if n not in docs)
    return len(lines)


#: Most lines of code in one module. Documentation never counts, so the
#: bound is a prompt to split a module that does too many things, never a
#: reason to trim what explains it. 400: the largest cohesive modules
#: (settings.py, one object whose field descriptions are code; the CLI's
#: operator commands) sit below it, and a module past it has so far always
#: held two responsibilities.
MOST_CODE_LINES = 400


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_is_over_the_bound_of_lines_of_code(name: str) -> None:
    lines = code_lines(modules()[name])
    assert lines <= MOST_CODE_LINES, f"{name}: {lines} lines of code: split it by responsibility"


def test_the_bound_counts_code_not_documentation(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        '"""Doc.\n\nMore doc.\n"""\n\n# why\n\ndef f() -> int:\n    """Doc."""\n    return 1\n'
    )
    assert code_lines(module) == 2


def test_every_subpackage_says_what_lives_there_and_what_it_may_import() -> None:
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert doc, f"{init.parent.name}/__init__.py has no docstring"
        if init.parent.name not in ROOT_ROOMS:
            assert declared(init.parent), init.parent.name


def test_each_subpackage_docstring_lists_exactly_the_rooms_it_imports() -> None:
    imported: dict[str, set[str]] = {}
    for name, deps in graph().items():
        imported.setdefault(room(name), set()).update(room(d) for d in deps)
    stale = {
        package: (declared(PACKAGE / package), imported.get(package, set()) - {package})
        for package in allowed()
        if package not in TOP_LEVEL
        and declared(PACKAGE / package) != imported.get(package, set()) - {package}
    }
    assert stale == {}, "(said, imported) per subpackage"


def test_every_module_under_the_package_is_in_some_room() -> None:
    rooms = set(allowed()) | ROOT_ROOMS
    assert {room(name) for name in modules()} <= rooms


def test_rooms_import_only_the_rooms_below_them() -> None:
    rules = allowed()
    wrong = []
    for name, deps in graph().items():
        here = room(name)
        if here in ROOT_ROOMS:
            continue  # cli (the composition root) and the package's __init__
        for dep in deps:
            there = room(dep)
            if there != here and there not in rules[here]:
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


def test_module_references_in_docstrings_name_modules_that_exist() -> None:
    """Before: receiver/app.py's first line named modules (receive, queue) long gone."""
    known = set(modules())
    missing = [
        f"{name}: {ref}"
        for name, path in modules().items()
        for ref in re.findall(r":mod:`~?([\w.]+)`", path.read_text())
        if ref not in known and f"redo_hooks.{ref}" not in known
    ]
    assert missing == []
