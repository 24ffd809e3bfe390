"""
### Retention: lawful-intercept traffic logs (statement row 4)

Traffic information (e-mail, telephony, internet) kept for the statutory
lawful-interception duty or an information request: **6 months** (row 4; controller:
provider; basis: legal obligation). Hourly objects in the versioned bucket
`lethe-lawful-intercept` under `traffic/<service>/YYYY/MM/DD/HH.jsonl`. An object expires
once its whole hour is past the cutoff; every version and delete marker of an expired key
is removed, so nothing of it survives in the bucket's history. Never erased earlier on a
subject's request.

Every store is one task instance of the mapped `purge_*` tasks; `check_compliance` then
fails loudly if any category still holds data beyond its retention. Each run writes one
audit-ledger entry per store. The policy itself: `include/policies/lawful_intercept.yaml`.

**Trigger form:** *Dry run* counts without removing. The purge guard stops a run that
would remove more than the policy's share of a store (default 50%) or finds a store whose
newest data has expired; *Override the purge guard* with a *reason* lets that one run
through.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from lethe.operators.wiring import retention_params, retention_tasks

with DAG(
    dag_id="retention_lawful_intercept",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    params=retention_params(),
    default_args={
        "owner": "privacy-engineering",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(hours=1),
    },
    tags=["lethe", "retention"],
):
    retention_tasks("lawful_intercept")
