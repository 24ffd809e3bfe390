"""
### Retention: support tickets (statement row 5)

Information a user supplied with a support question is kept **3 years** (row 5;
controller: provider; basis: performance of the contract), counted from the day the ticket
was **closed**. Open tickets never expire.

The policy itself: `include/policies/support_tickets.yaml`.
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
    dag_id="retention_support_tickets",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    max_active_runs=1,
    doc_md=retention_doc(__doc__),
    params=retention_params(),
    default_args=RETENTION_DEFAULT_ARGS,
    tags=["lethe", "retention"],
):
    retention_tasks("support_tickets")
