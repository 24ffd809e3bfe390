"""
How the `usage_records` retention DAG works on its stores.

Ages are counted on the Amsterdam calendar from each call's start.
`telecom.usage_records` is range-partitioned by month: a month that has wholly expired is
detached and dropped in one step; the boundary month is purged in bounded batches through
the time index (progress logged at INFO). Records of subjects under a legal hold or a
processing restriction stay.
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

# The description, doc_md and tags come from include/policies/usage_records.yaml (this docstring
# adds how the stores are handled); an invalid policy catalog gives this DAG one failing
# task, policy_invalid, instead of an import error.
policy = retention_policy("usage_records", notes=__doc__)

with DAG(
    dag_id="retention_usage_records",
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
