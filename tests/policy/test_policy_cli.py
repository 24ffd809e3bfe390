"""``python -m lethe.policy validate``: every error at once, with file, category and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lethe.policy.__main__ import main
from lethe.policy.check import catalog_errors

ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = ROOT / "include" / "policies"


def _break_two_files(workspace):
    """Two errors in one file, one in another: a typo'd retention and legal basis, a version 0."""
    first = workspace.find_category(lambda c: isinstance(c["retention"], str))
    workspace.edit_category(first, lambda c: c.update(retention="P3Q", legal_basis="contrct"))
    other = next(f for f in workspace.families() if f != first.family)
    workspace.edit(other, lambda data: data.update(version=0))
    return first, other


def test_a_valid_catalog_gives_one_summary_line_and_exit_code_0(capsys):
    assert main(["validate", str(POLICY_DIR)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert "valid: 7 families" in out[0]
    assert "16 statement rows" in out[0]


def test_every_error_of_every_file_is_printed_with_file_category_and_field(workspace, capsys):
    first, other = _break_two_files(workspace)

    assert main(["validate", str(workspace.directory)]) == 1

    err = capsys.readouterr().err.splitlines()
    category = f"{first.file}: category {first.id!r}: "
    assert any(category + "retention: 'P3Q' is not an ISO-8601 duration" in line for line in err)
    assert any(category + "legal_basis: " in line and "'contrct'" in line for line in err)
    assert any(f"{other}.yaml: version: " in line for line in err)
    assert err[-1] == f"3 policy error(s) in {workspace.directory}"


def test_an_error_across_files_is_reported_when_every_file_is_valid(workspace):
    # Two families claiming the same statement row: each file alone is valid.
    rows = {}
    for ref, category in workspace.categories():
        if category.get("statement_row"):
            rows.setdefault(ref.family, (ref, category["statement_row"]))
    (one, _), (two, row) = list(rows.values())[:2]
    workspace.edit_category(one, lambda c: c.update(statement_row=row))

    errors = catalog_errors(workspace.directory)

    assert len(errors) == 1
    assert f"statement_row: row {row} is already covered by category" in errors[0]
    assert f"{one.id!r}" in errors[0]
    assert f"{two.id!r}" in errors[0]


def test_one_file_can_be_validated(workspace, capsys):
    first, _ = _break_two_files(workspace)

    assert main(["validate", str(workspace.directory / first.file)]) == 1
    err = capsys.readouterr().err
    assert "2 policy error(s)" in err
    assert "version" not in err  # the other file is not read


def test_the_command_line_exits_non_zero_on_an_invalid_directory(workspace):
    _break_two_files(workspace)
    run = [sys.executable, "-m", "lethe.policy", "validate"]

    broken = subprocess.run(
        [*run, str(workspace.directory)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    valid = subprocess.run(run, capture_output=True, text=True, cwd=ROOT, timeout=120)

    assert broken.returncode == 1
    assert "legal_basis" in broken.stderr
    assert valid.returncode == 0, valid.stderr
    assert "valid" in valid.stdout
