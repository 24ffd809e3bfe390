"""The printed policy table."""

from __future__ import annotations

from lethe.policy.table import format_policy_table, policy_rows


def test_one_line_per_category_under_a_header(catalog):
    lines = format_policy_table(catalog).splitlines()
    assert lines[0].split() == [
        "row",
        "category",
        "retention",
        "controller",
        "legal",
        "basis",
        "stores",
    ]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert len(lines) == 2 + len(catalog.categories())


def test_lines_follow_the_statement_rows(catalog):
    lines = format_policy_table(catalog).splitlines()[2:]
    for line, category in zip(lines, catalog.categories(), strict=True):
        row = "-" if category.statement_row is None else str(category.statement_row)
        assert line.split()[:2] == [row, category.id]


def test_retention_in_words(catalog):
    by_id = {row[1]: row for row in policy_rows(catalog)}
    for category in catalog.categories():
        assert by_id[category.id][2] == category.retention.human()
    words = {row[2] for row in by_id.values()}
    assert "6 months" in words
    assert "90 days" in words
    assert "until service end + 30 days" in words
    assert "customer-defined (default 90 days, max 1 year)" in words


def test_stores_as_kind_and_location(catalog):
    text = format_policy_table(catalog)
    for _, _, store in catalog.stores():
        assert f"{store.kind}:{store.location}" in text
    assert "postgres:telecom.usage_records" in text
    assert "sftp:/recordings/support" in text
    assert "s3:lethe-lawful-intercept/traffic/" in text


def test_columns_line_up(catalog):
    lines = format_policy_table(catalog).splitlines()
    start = lines[0].index("stores")
    for line in lines[2:]:
        assert line[start - 2 : start] == "  "
        assert line[start] != " "
