"""The architecture holds: import arrows point one way, and modules stay readable in size.

The import contracts live in pyproject.toml (``[tool.importlinter]``) and are checked by
import-linter's ``lint-imports`` on this checkout's packages: the engine's layers (each
imports only the layers below it), the engine never importing the development kit, and the
domain and policy layers free of Airflow, the providers and the database drivers.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (ROOT / "plugins" / "lethe", ROOT / "devkit" / "lethe_dev")
#: Past this a module needs a reason in its docstring (a line starting "Size:").
MAX_LINES = 600


@pytest.fixture(scope="module")
def lint_imports() -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        # This checkout's packages, whichever checkout the virtualenv was installed from.
        "PYTHONPATH": os.pathsep.join(str(p.parent) for p in PACKAGES),
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_every_import_contract_is_kept(lint_imports):
    report = lint_imports.stdout + lint_imports.stderr
    assert lint_imports.returncode == 0, report
    kept = re.search(r"Contracts: (\d+) kept, (\d+) broken", report)
    assert kept, report
    assert (int(kept.group(1)), int(kept.group(2))) == (3, 0), report


def test_the_contracts_cover_every_package_of_the_engine():
    """A new package under plugins/lethe must be placed in a layer, not slip past them."""
    config = (ROOT / "pyproject.toml").read_text()
    layers = re.search(r"layers = \[(.*?)\]", config, re.S)
    assert layers
    named = set(re.findall(r"lethe\.(\w+)", layers.group(1)))
    packages = {
        p.name for p in PACKAGES[0].iterdir() if p.is_dir() and (p / "__init__.py").is_file()
    }
    assert packages <= named, f"packages in no layer: {sorted(packages - named)}"


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in package.rglob("*.py"))


def test_no_module_is_longer_than_it_needs_to_be():
    too_long = []
    for path in _modules():
        lines = path.read_text().count("\n")
        if lines <= MAX_LINES:
            continue
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if not re.search(r"^Size: \S", docstring, re.M):
            too_long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not too_long, (
        f"modules over {MAX_LINES} lines without a 'Size:' reason in their docstring "
        f"(split them by responsibility): {too_long}"
    )


def test_every_module_opens_with_a_docstring():
    missing = [
        str(path.relative_to(ROOT))
        for path in _modules()
        if path.read_text().strip() and ast.get_docstring(ast.parse(path.read_text())) is None
    ]
    assert not missing, missing
