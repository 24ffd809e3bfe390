"""
### Retention: website statistics and contact form (statement row 15, 16)

- **Visitor statistics and functional/statistical cookies** (row 15): kept **1 year**
  for improving the sites and apps, popularity and security (legitimate interest):
  `telecom.web_visits`, `telecom.web_cookies` and the daily analytics exports in S3
  (`lethe-web-analytics/exports/YYYY/MM/DD/`), of which only expired date prefixes are
  listed.
- **Contact-form entries** (row 16): kept **1 year** (performance of the contract).

The policy itself: `include/policies/website.yaml`.
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
    dag_id="retention_website",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    max_active_runs=1,
    doc_md=retention_doc(__doc__),
    params=retention_params(),
    default_args=RETENTION_DEFAULT_ARGS,
    tags=["lethe", "retention"],
):
    retention_tasks("website")
