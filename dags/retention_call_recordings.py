"""
How the `call_recordings` retention DAG works on its stores.

Recordings live on the SFTP recording server. Support-line recordings age from the
time in their file name; the retention of a customer's own recordings is read per customer
from `telecom.recording_settings.retention_days` (the policy's default when the customer
chose nothing, capped at its maximum). One SSH session per store and run; directories
emptied by the purge are removed.
"""

from __future__ import annotations

from airflow.sdk import DAG

from lethe.operators.wiring import (
    RETENTION_DEFAULT_ARGS,
    RETENTION_START_DATE,
    retention_params,
    retention_policy,
    retention_tasks,
)

# The description, doc_md and tags come from include/policies/call_recordings.yaml (this docstring
# adds how the stores are handled); an invalid policy catalog gives this DAG one failing
# task, policy_invalid, instead of an import error.
policy = retention_policy("call_recordings", notes=__doc__)

with DAG(
    dag_id="retention_call_recordings",
    description=policy.description,
    schedule="@daily",
    start_date=RETENTION_START_DATE,
    catchup=False,
    max_active_runs=1,
    doc_md=policy.doc_md,
    params=retention_params(),
    default_args=RETENTION_DEFAULT_ARGS,
    tags=policy.tags,
):
    retention_tasks(policy)
