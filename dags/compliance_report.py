"""
### Compliance report

Daily at 06:00 (after the nightly retention runs). Surveys every category of the privacy
statement (all 16 rows, and the subject exports) exactly as the retention DAGs'
compliance check does, and stores a
self-contained HTML report (a table per row and a chart of the oldest item against the
limit, viewable offline) and the same rows as CSV in S3:
`lethe-exports/reports/YYYY/MM/DD/compliance-report.{html,csv}`. Reports hold counts only
(no personal data) and are kept 400 days; each run removes older ones. The Privacy page
(*Privacy* in the navigation) shows the rows live and links the latest report.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from lethe.notifiers import AlertEmailNotifier
from lethe.operators.report import ComplianceReportOperator

with DAG(
    dag_id="compliance_report",
    description="Daily compliance report of every statement row (HTML and CSV in S3)",
    schedule="0 6 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    default_args={
        "owner": "privacy-engineering",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "on_failure_callback": [AlertEmailNotifier()],
    },
    tags=["lethe", "compliance"],
):
    ComplianceReportOperator(task_id="write_report")
