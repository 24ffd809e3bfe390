"""
### Retention: data kept until the service ends (statement row 1-3, 7-11, 14)

Contact persons, delivery addresses, invoicing details, cloud contacts, managed devices,
internet lines, VoIP handsets and phone books, SIMs and their notifications, and alarm key
holders are kept **until the service ends, plus a 30-day grace period** (final invoice,
returned equipment, number porting). Each row ages from its contract's end date
(`telecom.contracts.ended_at`) or, for customer-level data, from the end of the customer's
last service (`telecom.customer_service_end`). Data of running services never expires.

The policy itself: `include/policies/contract_data.yaml`.
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
    dag_id="retention_contract_data",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    max_active_runs=1,
    doc_md=retention_doc(__doc__),
    params=retention_params(),
    default_args=RETENTION_DEFAULT_ARGS,
    tags=["lethe", "retention"],
):
    retention_tasks("contract_data")
