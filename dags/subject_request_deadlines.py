"""
### Subject request deadlines

Daily. A request is due one month after it was received; it can be extended by two more
months with a recorded reason (`extend_subject_request_deadline`). This DAG lists the
requests due within 7 days and the overdue ones, and **fails** when any is overdue, so
that the on-failure notifiers reach a person: `OverdueRequestNotifier`
(`lethe.notifiers`) logs the alert and records it in the audit ledger, and
`AlertEmailNotifier` mails it to the addresses in the Variable `lethe_alert_emails` (or
`LETHE_ALERT_EMAILS`). Chat notifiers (Slack, webhooks) go next to them in
`on_failure_callback`; see docs/operations.md.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from lethe.notifiers import AlertEmailNotifier, OverdueRequestNotifier
from lethe.operators.deadlines import (
    ExtendSubjectRequestDeadlineOperator,
    SubjectRequestDeadlineOperator,
)
from lethe.operators.wiring import UUID_PATTERN

_DEFAULTS = {
    "owner": "privacy-engineering",
    "retries": 1,
    "retry_delay": timedelta(minutes=5),
    "on_failure_callback": [AlertEmailNotifier()],
}

with DAG(
    dag_id="subject_request_deadlines",
    description="Daily check of open subject requests against their one-month deadline",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    doc_md=__doc__,
    default_args=_DEFAULTS,
    tags=["lethe", "subject-requests"],
):
    SubjectRequestDeadlineOperator(
        task_id="check_deadlines",
        on_failure_callback=[OverdueRequestNotifier(), AlertEmailNotifier()],
    )

with DAG(
    dag_id="extend_subject_request_deadline",
    description="Extend a subject request's deadline by one or two months, reason recorded",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    doc_md="""
### Extend a subject request's deadline

By one or two months beyond the first month (GDPR art. 12(3)), with the reason recorded
on the request (the subject must be told within the first month).
""",
    params={
        "request_id": Param("", type="string", pattern=UUID_PATTERN, title="Request id"),
        "months": Param(2, type="integer", minimum=1, maximum=2, title="Extra months"),
        "reason": Param("", type="string", minLength=5, maxLength=500, title="Reason"),
    },
    render_template_as_native_obj=True,
    default_args=_DEFAULTS,
    tags=["lethe", "subject-requests"],
):
    ExtendSubjectRequestDeadlineOperator(
        task_id="extend_deadline",
        request_id="{{ params.request_id }}",
        months="{{ params.months }}",
        reason="{{ params.reason }}",
    )
