"""
### Retention: usage records of VoIP and mobile telephony (statement row 12)

The network's call detail records (who called whom, where, when, how long, at
what charge) are kept **6 months** (statement row 12; controller: provider; basis:
performance of the contract), counted on the Amsterdam calendar from each call's start.

- `telecom.usage_records` is range-partitioned by month: a month that has wholly expired
  is detached and dropped in one step; the boundary month is purged in bounded batches
  through the time index.
- Records of subjects under a legal hold or a processing restriction stay.

Every store is one task instance of the mapped `purge_*` tasks; `check_compliance` then
fails loudly if any category still holds data beyond its retention. Each run writes one
audit-ledger entry per store. The policy itself: `include/policies/usage_records.yaml`.

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
    dag_id="retention_usage_records",
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
    retention_tasks("usage_records")
