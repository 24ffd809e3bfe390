"""
How the `website` retention DAG works on its stores.

Of the daily analytics exports in S3 (`lethe-web-analytics/exports/YYYY/MM/DD/`) only
expired date prefixes are listed.
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

# The description, doc_md and tags come from include/policies/website.yaml (this docstring
# adds how the stores are handled); an invalid policy catalog gives this DAG one failing
# task, policy_invalid, instead of an import error.
policy = retention_policy("website", notes=__doc__)

with DAG(
    dag_id="retention_website",
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
