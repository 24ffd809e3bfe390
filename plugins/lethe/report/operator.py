"""The daily compliance report: survey every category, store the HTML and CSV in S3.

Reports hold counts, ids and dates only (no personal data), so they are not a category of
the privacy statement; they are kept :data:`REPORT_RETENTION_DAYS` days under ``reports/``
in the export bucket (the subject_exports policy governs only ``exports/``), and each run
removes the reports older than that.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from lethe.connections import CONTROL_DB, OBJECT_STORE
from lethe.control import connect
from lethe.exceptions import not_retried
from lethe.operators.retention import run_moment
from lethe.report import REPORT_BUCKET, REPORT_PREFIX

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.sdk import Context

#: How long a report is kept: a year and a month, so last year's same month is at hand.
REPORT_RETENTION_DAYS = 400
_REPORT_KEY = re.compile(r"^reports/(\d{4})/(\d{2})/(\d{2})/compliance-report\.(?:html|csv)$")


def report_keys(moment: datetime) -> tuple[str, str]:
    """The HTML and CSV keys of the report for ``moment``'s day (UTC)."""
    day = moment.astimezone(UTC).strftime("%Y/%m/%d")
    base = f"{REPORT_PREFIX}{day}/compliance-report"
    return f"{base}.html", f"{base}.csv"


def latest_report_key(keys: list[str], suffix: str = ".html") -> str | None:
    """The newest report key ending in ``suffix`` among ``keys`` (dates sort as text)."""
    found = sorted(k for k in keys if _REPORT_KEY.match(k) and k.endswith(suffix))
    return found[-1] if found else None


def expired_report_keys(keys: list[str], moment: datetime) -> list[str]:
    """The report keys dated more than :data:`REPORT_RETENTION_DAYS` days before ``moment``."""
    oldest_kept = (moment.astimezone(UTC) - timedelta(days=REPORT_RETENTION_DAYS)).date()
    expired = []
    for key in keys:
        match = _REPORT_KEY.match(key)
        if match and datetime(*map(int, match.groups()), tzinfo=UTC).date() < oldest_kept:
            expired.append(key)
    return sorted(expired)


class ComplianceReportOperator(BaseOperator):
    """Write the compliance report (HTML and CSV) of every category to S3.

    Surveys every category at the run's logical date exactly as the retention DAGs'
    compliance check does, adds each category's last run from the audit ledger, stores
    ``reports/YYYY/MM/DD/compliance-report.{html,csv}`` (a rerun overwrites the same day's
    report), removes reports past their retention and writes one ledger entry. The report
    states out-of-policy rows; it does not fail on them (the retention DAGs do).

    :param report_bucket: the bucket the reports go to. (templated)
    :param s3_conn_id: connection of the object store. (templated)
    :param control_conn_id: connection of the control schema. (templated)
    :param policy_dir: directory of the policy files. (templated)
    """

    template_fields = ("report_bucket", "s3_conn_id", "control_conn_id", "policy_dir")
    ui_color = "#e8e1f4"

    def __init__(
        self,
        *,
        report_bucket: str = REPORT_BUCKET,
        s3_conn_id: str = OBJECT_STORE,
        control_conn_id: str = CONTROL_DB,
        policy_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.report_bucket = report_bucket
        self.s3_conn_id = s3_conn_id
        self.control_conn_id = control_conn_id
        self.policy_dir = policy_dir

    @cached_property
    def hook(self) -> S3Hook:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.s3_conn_id)

    @not_retried()
    def execute(self, context: Context) -> dict[str, Any]:
        from lethe.control import ledger
        from lethe.policy import load_catalog
        from lethe.report.render import report_html, to_csv
        from lethe.report.status import ledger_chain, survey_rows

        moment = run_moment(context)
        catalog = load_catalog(self.policy_dir)
        with connect(self.control_conn_id) as control:
            rows = survey_rows(catalog, moment, control)
            _, _, chain = ledger_chain(control)
            html_key, csv_key = report_keys(moment)
            self.hook.load_string(
                report_html(rows, moment, chain),
                key=html_key,
                bucket_name=self.report_bucket,
                replace=True,
            )
            self.hook.load_string(
                to_csv(rows), key=csv_key, bucket_name=self.report_bucket, replace=True
            )
            existing = self.hook.list_keys(bucket_name=self.report_bucket, prefix=REPORT_PREFIX)
            expired = expired_report_keys(existing, moment)
            if expired:
                self.hook.delete_objects(bucket=self.report_bucket, keys=expired)
            out_of_policy = [row.status.category_id for row in rows if not row.compliant]
            ledger.record(
                control,
                ledger.AuditEntry(
                    action="compliance_report",
                    outcome="ok",
                    **ledger.task_fields(context["ti"]),
                    counts={
                        "categories": len(rows),
                        "out_of_policy": len(out_of_policy),
                        "reports_removed": len(expired),
                    },
                    details={
                        "html_key": html_key,
                        "csv_key": csv_key,
                        "bucket": self.report_bucket,
                    },
                ),
            )
        self.log.info(
            "Compliance report for %s: %s categories, %s out of policy (%s); stored "
            "s3://%s/%s and %s; %s old reports removed",
            moment.date(),
            len(rows),
            len(out_of_policy),
            ", ".join(out_of_policy) or "none",
            self.report_bucket,
            html_key,
            csv_key,
            len(expired),
        )
        return {
            "html_key": html_key,
            "csv_key": csv_key,
            "categories": len(rows),
            "out_of_policy": len(out_of_policy),
            "reports_removed": len(expired),
        }
