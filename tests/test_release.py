"""What users install is a wheel: build it as a release would, and check what it holds.

``python -m build`` makes the sdist and the wheel (with the build backend
installed in this virtualenv, so no isolated environment is downloaded),
``twine check`` reads their metadata as an index would, and the wheel must
hold every file of the package: the Lua scripts, the dashboard's templates
and stylesheet, the body dictionary, the sample event and ``py.typed``.
``tests/test_newcomer.py`` installs a wheel in a fresh virtualenv outside
the repository and runs it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import redo_hooks

from .processes import ROOT

VERSION = redo_hooks.__version__
WHEEL = f"redo_hooks-{VERSION}-py3-none-any.whl"
SDIST = f"redo_hooks-{VERSION}.tar.gz"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def test_the_sdist_and_the_wheel_pass_twine_check(dist: Path) -> None:
    assert sorted(p.name for p in dist.iterdir()) == [WHEEL, SDIST]
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_wheel_holds_every_file_of_the_package_and_nothing_else(dist: Path) -> None:
    package = ROOT / "redo_hooks"
    expected = {
        p.relative_to(ROOT).as_posix()
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    with zipfile.ZipFile(dist / WHEEL) as wheel:
        names = set(wheel.namelist())
        metadata = Parser().parsestr(
            wheel.read(f"redo_hooks-{VERSION}.dist-info/METADATA").decode()
        )
    assert {n for n in names if n.startswith("redo_hooks/")} == expected
    for data in ("py.typed", "store/lua/ingest.lua", "dashboard/templates/base.html"):
        assert f"redo_hooks/{data}" in names, data
    assert "redo_hooks/dashboard/static/style.css" in names
    assert any(n.startswith("redo_hooks/data/bodies-v") for n in names)
    assert f"redo_hooks-{VERSION}.dist-info/licenses/LICENSE" in names
    assert metadata["Version"] == VERSION
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["License-Expression"] == "MIT"
    assert set(metadata.get_all("Provides-Extra") or []) >= {"dashboard", "spec", "otel", "testing"}


def test_the_sdist_carries_the_license_changelog_and_tests(dist: Path) -> None:
    with tarfile.open(dist / SDIST) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    assert {"LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml"} <= names
    assert "redo_hooks/store/lua/ingest.lua" in names and "tests/test_release.py" in names


def test_the_docs_name_this_release_and_no_placeholder_url() -> None:
    texts = {
        path.relative_to(ROOT).as_posix(): path.read_text()
        for path in [ROOT / "README.md", *ROOT.glob("docs/**/*.md"), *ROOT.glob("deploy/**/*")]
        if path.is_file()
    }
    assert [name for name, text in texts.items() if "<repository URL>" in text] == []
    named = {
        (name, wheel)
        for name, text in texts.items()
        for wheel in re.findall(r"redo_hooks-[\w.]+-py3-none-any\.whl", text)
    }
    assert named and {wheel for _, wheel in named} == {WHEEL}, named
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{VERSION}]" in changelog
