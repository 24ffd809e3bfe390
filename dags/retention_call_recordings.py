"""
### Retention: call recordings (statement row 6, 13)

Recordings on the SFTP recording server:

- **support-line recordings** (`/recordings/support`, row 6): kept **90 days** for staff
  training and as evidence of agreements (legitimate interest); age from the file name;
- **customers' own call recordings** (`/recordings/customers/<customer>`, row 13): kept as
  long as each customer chose (`telecom.recording_settings.retention_days`), **90 days**
  when it chose nothing and never longer than **1 year**.

One SSH session per store and run; directories emptied by the purge are removed.

Every store is one task instance of the mapped `purge_*` tasks; `check_compliance` then
fails loudly if any category still holds data beyond its retention. Each run writes one
audit-ledger entry per store. The policy itself: `include/policies/call_recordings.yaml`.

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
    dag_id="retention_call_recordings",
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
    retention_tasks("call_recordings")
