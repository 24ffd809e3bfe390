"""
How the `subject_exports` retention DAG works on its stores.

The ZIP packages made by `subject_export` in the private bucket `lethe-exports`
(`exports/YYYY/MM/DD/<request id>.zip`), aged from the day they were made. Their download
links expire earlier; the audit ledger keeps the proof of delivery. Exports are few, so
neither the share guard nor the stale-store guard applies to this family.
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

# The description, doc_md and tags come from include/policies/subject_exports.yaml (this docstring
# adds how the stores are handled); an invalid policy catalog gives this DAG one failing
# task, policy_invalid, instead of an import error.
policy = retention_policy("subject_exports", notes=__doc__)

with DAG(
    dag_id="retention_subject_exports",
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
