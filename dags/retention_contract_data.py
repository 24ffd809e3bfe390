"""
How the `contract_data` retention DAG works on its stores.

Each row ages from its contract's end date (`telecom.contracts.ended_at`) or, for
customer-level data, from the end of the customer's last service
(`telecom.customer_service_end`). Data of running services never expires.
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

# The description, doc_md and tags come from include/policies/contract_data.yaml (this docstring
# adds how the stores are handled); an invalid policy catalog gives this DAG one failing
# task, policy_invalid, instead of an import error.
policy = retention_policy("contract_data", notes=__doc__)

with DAG(
    dag_id="retention_contract_data",
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
