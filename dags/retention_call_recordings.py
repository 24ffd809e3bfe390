"""
### Retention: call recordings (statement row 6, 13)

Recordings on the SFTP recording server:

- **support-line recordings** (`/recordings/support`, row 6): kept **90 days** for staff
  training and as evidence of agreements (legitimate interest); age from the file name;
- **customers' own call recordings** (`/recordings/customers/<customer>`, row 13): kept as
  long as each customer chose (`telecom.recording_settings.retention_days`), **90 days**
  when it chose nothing and never longer than **1 year**.

One SSH session per store and run; directories emptied by the purge are removed.

The policy itself: `include/policies/call_recordings.yaml`.
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
    dag_id="retention_call_recordings",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    max_active_runs=1,
    doc_md=retention_doc(__doc__),
    params=retention_params(),
    default_args=RETENTION_DEFAULT_ARGS,
    tags=["lethe", "retention"],
):
    retention_tasks("call_recordings")
