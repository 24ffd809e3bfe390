"""
The scale-out test's copy of `retention_website`: the same tasks, a 1-second retry delay
instead of the production 5 minutes (so a task whose worker is killed is retried within
the test), and no schedule (it runs only when the test triggers it).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from lethe.operators.wiring import (
    RETENTION_DEFAULT_ARGS,
    retention_params,
    retention_policy,
    retention_tasks,
)

policy = retention_policy("website", notes=__doc__)

with DAG(
    dag_id="scaleout_retention_website",
    description=policy.description,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    doc_md=policy.doc_md,
    params=retention_params(),
    default_args={
        **RETENTION_DEFAULT_ARGS,
        "retry_delay": timedelta(seconds=1),
        "retry_exponential_backoff": False,
    },
    tags=[*policy.tags, "test"],
):
    retention_tasks(policy)
