"""The README and docs say what the code does: their examples run, the reference is current."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from redo_hooks.settings import reference_table

from .processes import mypy_strict

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks() -> list[tuple[str, int, str]]:
    blocks = []
    for path in DOCS:
        text = path.read_text()
        for n, match in enumerate(re.finditer(r"```python\n(.*?)```", text, re.S)):
            blocks.append((path.name, n, match.group(1)))
    return blocks


@pytest.mark.parametrize(
    ("doc", "index", "code"),
    python_blocks(),
    ids=lambda v: str(v)[:20] if isinstance(v, str) else v,
)
def test_every_python_example_in_the_docs_runs(
    doc: str, index: int, code: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDO_HOOKS_REDIS_URL", redis_url)  # examples that store use the test's
    namespace = {"__name__": f"docs_{doc.replace('.', '_')}_{index}"}
    exec(compile(code, f"{doc}[{index}]", "exec"), namespace)  # noqa: S102 - our own docs


def test_the_readme_opens_with_the_two_commands_and_ci_runs_the_second() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```sh\n(.*?)```", readme, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["./scripts/run-example", "./scripts/test"]
    for command in commands:
        assert (ROOT / command).stat().st_mode & 0o111, f"{command} is not executable"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "exec scripts/test" in ci


def test_the_configuration_reference_matches_the_settings_object() -> None:
    assert reference_table() in (ROOT / "docs" / "configuration.md").read_text()


def test_the_procfile_runs_the_example_app_with_the_cli() -> None:
    procfile = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    assert procfile["web"].split()[:3] == ["redo-hooks", "serve", "examples.shop.hooks:hooks"]
    assert procfile["worker"].split()[:3] == ["redo-hooks", "worker", "examples.shop.hooks:hooks"]


def test_every_relative_link_in_the_docs_points_at_a_file() -> None:
    for path in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
            if "://" in target:
                continue
            assert (path.parent / target).exists(), f"{path.name} links to missing {target}"


def test_every_test_the_docs_name_exists() -> None:
    """A promise's proof is a test that exists: ``test_x.py::test_y`` and bare ``test_x.py``."""
    named = 0
    for path in DOCS:
        text = path.read_text()
        for module, function in re.findall(r"(test_\w+\.py)(?:::(test_\w+))?", text):
            source = ROOT / "tests" / module
            assert source.exists(), f"{path.name} names missing tests/{module}"
            if function:
                assert f"def {function}(" in source.read_text(), (
                    f"{path.name} names {module}::{function}, which does not exist"
                )
            named += 1
    assert named > 20  # the guarantees name their tests


def pytest_snippet() -> str:
    (code,) = [c for doc, _, c in python_blocks() if "def test_a_completed_return_is_booked" in c]
    return code


def test_the_pytest_snippet_of_testing_md_passes_mypy_strict(tmp_path: Path) -> None:
    snippet = tmp_path / "test_shop.py"
    snippet.write_text(pytest_snippet())
    # From the root, where `examples` (standing in for the user's package) is found.
    checked = mypy_strict(snippet, cwd=ROOT)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_pytest_snippet_of_testing_md_logs_no_warning(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDO_HOOKS_REDIS_URL", redis_url)
    with capture_logs() as logged:
        exec(compile(pytest_snippet(), "testing.md", "exec"), {"__name__": "snippet"})  # noqa: S102
    warnings = [line for line in logged if line["log_level"] in ("warning", "error", "critical")]
    assert warnings == []
    assert any(line["event"] == "refund_recorded" for line in logged)  # it did run


def test_the_readme_lists_every_handler_option() -> None:
    from redo_hooks.dispatch.handlers import HandlerOptions  # noqa: PLC0415

    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| option | what it does |") :].split("\n\n", 1)[0]
    listed = {
        name for row in table.splitlines()[2:] for name in re.findall(r"`(\w+)`", row.split("|")[1])
    }
    assert listed == set(HandlerOptions.__annotations__)
