"""
### Retention: website statistics and contact form (statement row 15, 16)

- **Visitor statistics and functional/statistical cookies** (row 15): kept **1 year**
  for improving the sites and apps, popularity and security (legitimate interest):
  `telecom.web_visits`, `telecom.web_cookies` and the daily analytics exports in S3
  (`lethe-web-analytics/exports/YYYY/MM/DD/`), of which only expired date prefixes are
  listed.
- **Contact-form entries** (row 16): kept **1 year** (performance of the contract).

Every store is one task instance of the mapped `purge_*` tasks; `check_compliance` then
fails loudly if any category still holds data beyond its retention. Each run writes one
audit-ledger entry per store. The policy itself: `include/policies/website.yaml`.

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
    dag_id="retention_website",
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
    retention_tasks("website")
