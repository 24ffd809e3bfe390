"""
### Retention: subject access and portability exports (derived data)

The ZIP packages made by `subject_export` in the private bucket `lethe-exports`
(`exports/YYYY/MM/DD/<request id>.zip`) are kept **30 days** after the day they were made,
then removed. Their download links expire after 7 days already; the audit ledger keeps
the proof of delivery. Exports are few, so neither the share guard nor the stale-store
guard applies to this family (`purge_guard: 1.0`, `stale_guard: false`).

The policy itself: `include/policies/subject_exports.yaml`.
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
    dag_id="retention_subject_exports",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    max_active_runs=1,
    doc_md=retention_doc(__doc__),
    params=retention_params(),
    default_args=RETENTION_DEFAULT_ARGS,
    tags=["lethe", "retention"],
):
    retention_tasks("subject_exports")
