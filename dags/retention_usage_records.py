"""
### Retention: usage records of VoIP and mobile telephony (statement row 12)

The network's call detail records (who called whom, where, when, how long, at
what charge) are kept **6 months** (statement row 12; controller: provider; basis:
performance of the contract), counted on the Amsterdam calendar from each call's start.

- `telecom.usage_records` is range-partitioned by month: a month that has wholly expired
  is detached and dropped in one step; the boundary month is purged in bounded batches
  through the time index.
- Records of subjects under a legal hold or a processing restriction stay.

The policy itself: `include/policies/usage_records.yaml`.
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
    dag_id="retention_usage_records",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    max_active_runs=1,
    doc_md=retention_doc(__doc__),
    params=retention_params(),
    default_args=RETENTION_DEFAULT_ARGS,
    tags=["lethe", "retention"],
):
    retention_tasks("usage_records")
