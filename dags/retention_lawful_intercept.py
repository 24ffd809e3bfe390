"""
How the `lawful_intercept` retention DAG works on its stores.

Hourly objects in the versioned bucket `lethe-lawful-intercept` under
`traffic/<service>/YYYY/MM/DD/HH.jsonl`. An object expires once its whole hour is past the
cutoff; every version and delete marker of an expired key is removed, so nothing of it
survives in the bucket's history. Never erased earlier on a subject's request.
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

# The description, doc_md and tags come from include/policies/lawful_intercept.yaml (this docstring
# adds how the stores are handled); an invalid policy catalog gives this DAG one failing
# task, policy_invalid, instead of an import error.
policy = retention_policy("lawful_intercept", notes=__doc__)

with DAG(
    dag_id="retention_lawful_intercept",
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
