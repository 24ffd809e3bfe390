"""
### Retention: data kept until the service ends (statement row 1-3, 7-11, 14)

Contact persons, delivery addresses, invoicing details, cloud contacts, managed devices,
internet lines, VoIP handsets and phone books, SIMs and their notifications, and alarm key
holders are kept **until the service ends, plus a 30-day grace period** (final invoice,
returned equipment, number porting). Each row ages from its contract's end date
(`telecom.contracts.ended_at`) or, for customer-level data, from the end of the customer's
last service (`telecom.customer_service_end`). Data of running services never expires.

Every store is one task instance of the mapped `purge_*` tasks; `check_compliance` then
fails loudly if any category still holds data beyond its retention. Each run writes one
audit-ledger entry per store. The policy itself: `include/policies/contract_data.yaml`.

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
    dag_id="retention_contract_data",
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
    retention_tasks("contract_data")
