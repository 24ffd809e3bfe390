"""The compliance report as a self-contained HTML page (inline CSS, inline SVG) and as CSV.

Nothing is fetched when the page is opened: no scripts, fonts, images or style sheets from
elsewhere, so it can be mailed, archived or opened offline. Every value is escaped.

An item's age is counted from the moment its retention starts: for "until the service
ends" that is the end of the service, which may lie ahead (a contract with an end date in
the future). Such an age is shown as :data:`NOT_STARTED`, never as a negative number of
days.
"""

from __future__ import annotations

import csv
import io
from html import escape
from typing import TYPE_CHECKING

from lethe.domain.cells import safe_cell

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from lethe.report.status import RowStatus

#: What the report shows as the oldest age when the oldest item's retention has not started
#: yet (its start, e.g. the end of the service, lies ahead of the survey).
NOT_STARTED = "not started"

#: The CSV's columns, in order (one line per category, same order as the HTML table).
CSV_COLUMNS = (
    "statement_row",
    "category_id",
    "family",
    "title",
    "stores",
    "limit",
    "limit_days",
    "items",
    "oldest_age_days",
    "expired_remaining",
    "protected",
    "compliant",
    "last_run_dag_id",
    "last_run_id",
    "last_run_at",
    "last_run_outcome",
)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1d2733; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; font-size: 0.85rem; }
th, td { border-bottom: 1px solid #d8dee4; padding: 0.3rem 0.5rem; text-align: left;
  vertical-align: top; overflow-wrap: anywhere; }
th { background: #f3f5f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #116329; font-weight: 600; } .bad { color: #b3261e; font-weight: 700; }
.muted { color: #5a6672; font-size: 0.8rem; } ul.stores { margin: 0; padding-left: 1rem; }
svg text { font-family: system-ui, sans-serif; font-size: 11px; fill: #1d2733; }
"""


def _row_label(row: RowStatus) -> str:
    number = row.status.statement_row
    return "-" if number is None else str(number)


def oldest_age(row: RowStatus) -> str:
    """The oldest item's age as shown: days, ``-`` when empty, :data:`NOT_STARTED` when
    its retention starts after the survey (a negative age)."""
    age = row.status.oldest_age_days
    if age is None:
        return "-"
    return NOT_STARTED if age < 0 else str(age)


def verdict(row: RowStatus) -> str:
    """``compliant`` or ``OUT OF POLICY`` (what the compliance check logs)."""
    return "compliant" if row.compliant else "OUT OF POLICY"


def to_csv(rows: Sequence[RowStatus]) -> str:
    """The rows as CSV (header :data:`CSV_COLUMNS`; stores separated by ``;``); no cell
    opens as a formula in a spreadsheet (:func:`lethe.domain.cells.safe_cell`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        status, run = row.status, row.last_run
        cells = [
            "" if status.statement_row is None else status.statement_row,
            status.category_id,
            row.family_id,
            row.title,
            ";".join(row.stores),
            status.limit,
            "" if row.limit_days is None else row.limit_days,
            status.items,
            "" if status.oldest_age_days is None else oldest_age(row),
            status.expired_remaining,
            status.protected,
            "yes" if row.compliant else "no",
            run.dag_id if run else "",
            run.run_id if run else "",
            run.recorded_at.isoformat() if run else "",
            (run.outcome + (" (dry run)" if run.dry_run else "")) if run else "",
        ]
        writer.writerow([safe_cell(cell) for cell in cells])
    return out.getvalue()


def chart_svg(rows: Sequence[RowStatus]) -> str:
    """An inline SVG bar chart: each category's oldest age as a share of its limit.

    Limits range from days to ten years, so each bar is drawn against its own limit (the
    dashed line at 100%); the label gives both in days. Red bars are out of policy.
    """
    label_w, bar_w, text_w, row_h, top = 230, 420, 170, 20, 24
    scale_max = 1.5  # the chart shows up to 150% of a limit; beyond, the bar is clipped
    width, height = label_w + bar_w + text_w, top + row_h * len(rows) + 10
    limit_x = label_w + bar_w / scale_max
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">',
        "<title>Oldest remaining item against the retention limit, per category</title>",
        f'<text x="{label_w}" y="14">0%</text>',
        f'<text x="{limit_x - 14:.0f}" y="14">limit</text>',
        f'<text x="{label_w + bar_w - 30}" y="14">150%</text>',
    ]
    for index, row in enumerate(rows):
        y = top + index * row_h
        status = row.status
        label = f"{_row_label(row)}. {status.category_id}"
        parts.append(f'<text x="4" y="{y + 13}">{escape(label)}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{bar_w}" height="{row_h - 6}" fill="#f3f5f7"/>'
        )
        age, limit = status.oldest_age_days, row.limit_days
        if age is not None and limit:
            share = min(max(age, 0) / limit, scale_max)  # an end date ahead: no bar
            colour = "#2e8540" if row.compliant else "#b3261e"
            parts.append(
                f'<rect x="{label_w}" y="{y + 3}" width="{bar_w * share / scale_max:.1f}" '
                f'height="{row_h - 6}" fill="{colour}"/>'
            )
        if age is None:
            text = "empty"
        elif age < 0:
            text = f"{NOT_STARTED} (limit {limit} d)" if limit else f"{NOT_STARTED} (service runs)"
        elif limit is None:
            text = f"{age} d (until service end)"
        else:
            text = f"{age} d of {limit} d"
        if not row.compliant:
            text += " - OUT OF POLICY"
        parts.append(f'<text x="{label_w + bar_w + 6}" y="{y + 13}">{escape(text)}</text>')
    parts.append(
        f'<line x1="{limit_x:.1f}" y1="18" x2="{limit_x:.1f}" y2="{height - 6}" '
        'stroke="#1d2733" stroke-dasharray="4 3"/>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def rows_table(rows: Sequence[RowStatus]) -> str:
    """The per-row table (HTML): category, stores, items, oldest age against the limit,
    verdict, last run and its ledger outcome."""
    head = (
        "<tr><th>Row</th><th>Category</th><th>Stores</th><th>Items</th>"
        "<th>Oldest (days)</th><th>Limit</th><th>Expired remaining</th><th>Protected</th>"
        "<th>Verdict</th><th>Last run</th><th>Ledger outcome</th></tr>"
    )
    lines = ["<table>", f"<thead>{head}</thead>", "<tbody>"]
    for row in rows:
        status, run = row.status, row.last_run
        stores = "".join(f"<li>{escape(store)}</li>" for store in row.stores)
        oldest = oldest_age(row)
        if run is None:
            last, outcome = '<span class="muted">none recorded</span>', "-"
        else:
            last = (
                f"{escape(run.recorded_at.strftime('%Y-%m-%d %H:%M UTC'))}<br>"
                f'<span class="muted">{escape(run.dag_id)} / {escape(run.run_id)}</span>'
            )
            outcome = escape(run.outcome) + (" (dry run)" if run.dry_run else "")
        css = "ok" if row.compliant else "bad"
        lines.append(
            f'<tr data-category="{escape(status.category_id)}">'
            f"<td>{_row_label(row)}</td>"
            f"<td>{escape(status.category_id)}<br>"
            f'<span class="muted">{escape(row.title)}</span></td>'
            f'<td><ul class="stores">{stores}</ul></td>'
            f'<td class="num">{status.items}</td><td class="num">{oldest}</td>'
            f"<td>{escape(status.limit)}</td>"
            f'<td class="num">{status.expired_remaining}</td>'
            f'<td class="num">{status.protected}</td>'
            f'<td class="{css} verdict">{verdict(row)}</td><td>{last}</td><td>{outcome}</td></tr>'
        )
    lines.append("</tbody></table>")
    return "\n".join(lines)


def report_html(rows: Sequence[RowStatus], moment: datetime, chain: str) -> str:
    """The whole report as one HTML document.

    :param moment: when the stores were surveyed (aware).
    :param chain: the audit ledger's chain status, in words.
    """
    out_of_policy = [row.status.category_id for row in rows if not row.compliant]
    summary = (
        f'<p class="ok">All {len(rows)} categories are within their retention limits.</p>'
        if not out_of_policy
        else f'<p class="bad">{len(out_of_policy)} of {len(rows)} categories are out of '
        f"policy: {escape(', '.join(out_of_policy))}.</p>"
    )
    stamp = escape(moment.strftime("%Y-%m-%d %H:%M UTC"))
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>Lethe compliance report {stamp}</title>",
            f"<style>{STYLE}</style></head><body>",
            f'<h1>Compliance report</h1><p class="muted">Surveyed {stamp}. Counts only; '
            "no personal data.</p>",
            summary,
            "<h2>Oldest remaining item against the limit</h2>",
            chart_svg(rows),
            "<h2>Per statement row</h2>",
            rows_table(rows),
            f'<h2>Audit ledger</h2><p class="ledger">{escape(chain)}</p>',
            "</body></html>",
        ]
    )
