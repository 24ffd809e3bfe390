"""The catalog held against the statement's table (include/statement/retention_table.yaml)."""

from __future__ import annotations

from collections import Counter

import pytest

from lethe.exceptions import PolicyError
from lethe.policy import CustomerDefinedRetention, FixedRetention, UntilServiceEnd
from lethe.policy.statement import (
    DEFAULT_TABLE_PATH,
    compare_with_statement,
    load_statement_table,
)


@pytest.fixture(scope="module")
def table():
    return load_statement_table()


def test_the_table_has_sixteen_rows_in_order(table):
    assert [row.row for row in table.rows] == list(range(1, 17))
    assert table.provider == "B-K IT Solutions"
    assert str(table.last_updated) == "2018-04-17"


def test_every_row_keeps_its_dutch_wording(table):
    for row in table.rows:
        assert row.category_nl
        assert row.service_nl
        assert row.retention_nl
        assert row.controller_nl in ("B-K IT Solutions", "Opdrachtgevende partij")


def test_every_row_is_covered_by_exactly_one_category(catalog, table):
    covered = Counter(c.statement_row for c in catalog.categories() if c.statement_row is not None)
    assert sorted(covered) == [row.row for row in table.rows]
    assert set(covered.values()) == {1}


def test_retention_controller_and_legal_basis_equal_the_statement(catalog, table):
    for stated in table.rows:
        category = catalog.by_statement_row(stated.row)
        assert category.controller is stated.controller, stated.row
        assert category.legal_basis is stated.legal_basis, stated.row
        if stated.retention == "until_service_end":
            assert isinstance(category.retention, UntilServiceEnd), stated.row
        elif stated.retention == "customer_defined":
            assert isinstance(category.retention, CustomerDefinedRetention), stated.row
        else:
            assert isinstance(category.retention, FixedRetention), stated.row
            assert category.retention.period == stated.retention, stated.row


def test_compare_finds_no_departure(catalog, table):
    assert compare_with_statement(catalog, table) == []


def test_compare_reports_a_changed_retention(workspace, table):
    ref = workspace.find_category(lambda c: isinstance(c["retention"], str))
    workspace.edit_category(ref, lambda c: c.update(retention="P2Y"))
    problems = compare_with_statement(workspace.load(), table)
    assert len(problems) == 1
    assert f"({ref.id}): retention is '2 years'" in problems[0]


def test_compare_reports_a_changed_controller_and_basis(workspace, table):
    ref = workspace.find_category(
        lambda c: c["controller"] == "client" and c["legal_basis"] == "contract"
    )

    def change(category):
        category.update(controller="provider", legal_basis="consent")
        category.pop("client_instruction", None)

    workspace.edit_category(ref, change)
    problems = compare_with_statement(workspace.load(), table)
    assert any("controller is provider, the statement says client" in p for p in problems)
    assert any("legal basis is consent, the statement says contract" in p for p in problems)


def test_compare_reports_an_uncovered_row(workspace, table):
    family = workspace.families()[0]
    rows = [c["statement_row"] for c in workspace.raw(family)["categories"]]
    (workspace.directory / f"{family}.yaml").unlink()
    problems = compare_with_statement(workspace.load(), table)
    assert len(problems) == len(rows)
    assert all("covered by 0 categories" in p for p in problems)


def test_a_broken_table_names_file_and_field(tmp_path):
    broken = tmp_path / "retention_table.yaml"
    text = DEFAULT_TABLE_PATH.read_text(encoding="utf-8")
    broken.write_text(text.replace("retention: P3Y", "retention: three years"), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"retention_table\.yaml: rows\[4\]\.retention: "):
        load_statement_table(broken)
