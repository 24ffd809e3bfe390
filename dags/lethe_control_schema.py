"""
### Privacy control schema and policy catalog check

Run once after installing or upgrading Lethe, and whenever in doubt:

1. **migrate_control_schema** creates or upgrades the privacy control schema (subject
   requests, legal holds, processing restrictions, customer retention settings and the
   append-only audit ledger) on the `lethe_control_db` connection. Idempotent.
2. **validate_policies** loads every policy file in `include/policies/` and fails with the
   file, category and field of the first error (without retrying).

Nothing here touches personal data.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from lethe.operators.control import PostgresMigrateControlSchemaOperator
from lethe.operators.policy import ValidatePolicyCatalogOperator

with DAG(
    dag_id="lethe_control_schema",
    description="Create or upgrade the privacy control schema, then validate the policy catalog",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    doc_md=__doc__,
    default_args={
        "owner": "privacy-engineering",
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
    },
    tags=["lethe", "control"],
):
    migrate = PostgresMigrateControlSchemaOperator(task_id="migrate_control_schema")
    migrate >> ValidatePolicyCatalogOperator(task_id="validate_policies")
