"""
### Reopen a failed subject request

A request fails for good when its last try fails (a store unreachable through every retry)
or when it cannot succeed as it is. Once the cause is fixed, this DAG puts the **failed**
request back to `verified`, so that `subject_requests` picks it up again within five
minutes; an erasure then goes on from what its earlier tries already removed
(`privacy.request_progress`), and its answer counts both.

**Trigger form:** the *request id* and the *reason* (required, at most 500 characters,
recorded on the request and in the audit ledger: describe the fix, never the subject).
The ledger entry `request_reopened` records who triggered the run and why. A request that
is not `failed` is refused (completed, refused, or still being worked on). Details:
`docs/subject-requests.md`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from lethe.operators.reopen import ReopenSubjectRequestOperator
from lethe.operators.wiring import UUID_PATTERN

with DAG(
    dag_id="reopen_subject_request",
    description="Try a failed subject request again, with the reason recorded in the audit ledger",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    doc_md=__doc__,
    params={
        "request_id": Param(
            "",
            type="string",
            pattern=UUID_PATTERN,
            title="Request id",
            description="The failed subject request to try again.",
        ),
        "reason": Param(
            "",
            type="string",
            minLength=5,
            maxLength=500,
            title="Reason",
            description="Why it may be tried again, e.g. the outage that made it fail is "
            "over. Recorded in the audit ledger: no personal data.",
        ),
    },
    render_template_as_native_obj=True,
    default_args={
        "owner": "privacy-engineering",
        "retries": 1,
        "retry_delay": timedelta(minutes=5),
    },
    tags=["lethe", "subject-requests"],
):
    ReopenSubjectRequestOperator(
        task_id="reopen_request",
        request_id="{{ params.request_id }}",
        reason="{{ params.reason }}",
    )
