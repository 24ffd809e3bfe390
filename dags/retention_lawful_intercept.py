"""
### Retention: lawful-intercept traffic logs (statement row 4)

Traffic information (e-mail, telephony, internet) kept for the statutory
lawful-interception duty or an information request: **6 months** (row 4; controller:
provider; basis: legal obligation). Hourly objects in the versioned bucket
`lethe-lawful-intercept` under `traffic/<service>/YYYY/MM/DD/HH.jsonl`. An object expires
once its whole hour is past the cutoff; every version and delete marker of an expired key
is removed, so nothing of it survives in the bucket's history. Never erased earlier on a
subject's request.

The policy itself: `include/policies/lawful_intercept.yaml`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from lethe.operators.wiring import (
    RETENTION_DEFAULT_ARGS,
    retention_doc,
    retention_params,
    retention_tasks,
)

with DAG(
    dag_id="retention_lawful_intercept",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    max_active_runs=1,
    doc_md=retention_doc(__doc__),
    params=retention_params(),
    default_args=RETENTION_DEFAULT_ARGS,
    tags=["lethe", "retention"],
):
    retention_tasks("lawful_intercept")
