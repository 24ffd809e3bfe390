"""The report's HTML, chart and CSV from hand-made rows: escaping, edge values, order."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

from lethe.report.render import chart_svg, report_html, rows_table, to_csv
from lethe.report.status import LastRun, RowStatus
from lethe.retention import CategoryStatus

MOMENT = datetime(2026, 11, 2, 5, tzinfo=UTC)


def row(category_id, *, statement_row=1, limit_days=100, oldest=50, expired=0, title="T", run=None):
    return RowStatus(
        status=CategoryStatus(
            category_id=category_id,
            statement_row=statement_row,
            limit="100 days",
            items=3,
            protected=0,
            expired_remaining=expired,
            oldest_age_days=oldest,
        ),
        family_id="family",
        title=title,
        stores=("postgres:db:a.b", "s3:s3:bucket/prefix/"),
        limit_days=limit_days,
        last_run=run,
    )


def bar_widths(svg: str) -> list[float]:
    """Widths of the coloured bars (the grey tracks have the full width)."""
    return [
        float(w)
        for w in re.findall(r'width="([-\d.]+)" height="\d+" fill="#(?:2e8540|b3261e)"', svg)
    ]


def test_bars_are_a_share_of_the_limit_clipped_at_150_percent():
    svg = chart_svg([row("half", oldest=50), row("over", oldest=1000, expired=2)])
    assert bar_widths(svg) == [140.0, 420.0]  # 50% of 420 px / 1.5; clipped at 150%
    assert "1000 d of 100 d - OUT OF POLICY" in svg


def test_empty_unlimited_and_future_rows_draw_no_bar():
    svg = chart_svg(
        [
            row("empty", oldest=None),
            row("until_end", limit_days=None, oldest=12),
            row("ends_later", limit_days=30, oldest=-24),  # the service ends in the future
        ]
    )
    assert bar_widths(svg) == [0.0]
    assert "empty" in svg
    assert "12 d (until service end)" in svg


def test_values_are_escaped():
    html = report_html([row("x", title="<script>alert(1)</script> & co")], MOMENT, "ok")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html


def test_csv_rows_follow_the_table_and_keep_derived_data_last():
    run = LastRun("retention_x", "scheduled__2026", MOMENT, "ok, stopped 1", dry_run=True)
    rows = [row("a", statement_row=1, run=run), row("derived", statement_row=None, expired=1)]
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert [r["category_id"] for r in parsed] == ["a", "derived"]
    assert parsed[0]["stores"] == "postgres:db:a.b;s3:s3:bucket/prefix/"
    assert parsed[0]["last_run_outcome"] == "ok, stopped 1 (dry run)"
    assert (parsed[1]["statement_row"], parsed[1]["compliant"]) == ("", "no")
    assert re.findall(r'data-category="(\w+)"', rows_table(rows)) == ["a", "derived"]


def test_csv_cells_never_open_as_formulas_and_numbers_stay_numbers():
    rows = [row("future", title='=HYPERLINK("http://evil.example")', oldest=24)]
    (parsed,) = csv.DictReader(io.StringIO(to_csv(rows)))
    assert parsed["title"] == '\'=HYPERLINK("http://evil.example")'
    assert parsed["oldest_age_days"] == "24"  # an int: a number, not a formula


def test_an_age_whose_retention_starts_later_shows_as_not_started_never_negative():
    # Until the service ends (+30 days): the oldest contract's service ends in 24 days.
    rows = [
        row("ends_later", limit_days=30, oldest=-24),
        row("running", limit_days=None, oldest=-3),
    ]
    table, svg = rows_table(rows), chart_svg(rows)
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert [r["oldest_age_days"] for r in parsed] == ["not started", "not started"]
    cells = re.findall(r'<td class="num">([^<]*)</td>', table)
    assert cells.count("not started") == 2
    assert "not started (limit 30 d)" in svg
    assert "not started (service runs)" in svg
    for text in (table, svg, to_csv(rows)):
        assert not re.search(r"-\d+ d\b|>-\d+<|,-\d+,", text)
    # Today's age of a retention that started today is 0 days, not "not started".
    assert "0 d of 30 d" in chart_svg([row("today", limit_days=30, oldest=0)])
