"""The daily compliance report's task: survey every category, store the HTML and CSV in S3
(:mod:`lethe.report` renders them; :mod:`lethe.report.keys` names and expires them)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from lethe.connections import CONTROL_DB, OBJECT_STORE
from lethe.control.ledger import AuditEntry
from lethe.operators.failures import not_retried
from lethe.operators.retention import run_moment
from lethe.report import REPORT_BUCKET, REPORT_PREFIX
from lethe.report.keys import expired_report_keys, report_keys

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.sdk import Context

    from lethe.control.hook import PrivacyControlHook


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

    @cached_property
    def control(self) -> PrivacyControlHook:
        """The control schema, through its hook."""
        from lethe.control.hook import PrivacyControlHook

        return PrivacyControlHook(control_conn_id=self.control_conn_id)

    @not_retried()
    def execute(self, context: Context) -> dict[str, Any]:
        from lethe.policy import load_catalog
        from lethe.report.render import report_html, to_csv
        from lethe.report.status import ledger_chain, ledger_keys, survey_rows

        moment = run_moment(context)
        catalog = load_catalog(self.policy_dir)
        try:
            with self.control.transaction() as control:  # reads only
                rows = survey_rows(catalog, moment, control)
                key, retired, no_key = ledger_keys(self.control)
                _, _, chain = ledger_chain(control, key=key, retired=retired, no_key=no_key)
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
            self.control.record(
                AuditEntry.for_task(
                    context["ti"],
                    action="compliance_report",
                    outcome="ok",
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
                )
            )
        finally:
            self.control.close()
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
