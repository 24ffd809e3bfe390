"""The compliance report: where every statement row stands, for people rather than logs.

:mod:`lethe.report.status` gathers the rows (the retention survey of
:func:`lethe.retention.check_category` plus each category's last run from the audit
ledger); :mod:`lethe.report.render` turns them into a self-contained HTML page (inline CSS
and SVG chart) and CSV; :mod:`lethe.operators.report` stores both in S3 under ``reports/``
for the daily ``compliance_report`` DAG. The Privacy page (:mod:`lethe.ui`) shows the same
rows. Everything here is counts, ids and dates: no personal data.
"""

from __future__ import annotations

#: Where reports are stored by default: the private export bucket, under ``reports/``
#: (the subject_exports policy governs only ``exports/`` there).
REPORT_BUCKET = "lethe-exports"
REPORT_PREFIX = "reports/"
