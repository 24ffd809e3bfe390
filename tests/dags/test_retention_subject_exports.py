"""retention_subject_exports end to end: dag.test() at Airflow's default log level (INFO).

The subject-exports family is derived data without a statement row; the compliance check
once formatted the row with ``%2d`` and failed on every run at INFO (``TypeError: %d
format: a real number is required, not NoneType``). The scheduled run of 15 June 2026
00:00 Europe/Amsterdam (CEST) counts 30 days back on the Amsterdam wall clock: 16 May 2026
00:00 CEST = 2026-05-15T22:00Z. A package of 14 May (its day ended 15 May 00:00Z) has
expired; one of 10 June has not.
"""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.dags.conftest import run_dag, task_states

DAG_ID = "retention_subject_exports"
BUCKET = "lethe-exports"
SCHEDULED = datetime(2026, 6, 15, tzinfo=ZoneInfo("Europe/Amsterdam"))
EXPIRED = "exports/2026/05/14/0b7f3c2e-4f7c-4a8e-9a51-3d1f0c2b7e11.zip"
YOUNG = "exports/2026/06/10/6a1d2f9e-0c3b-4e8d-8b7a-2f4e6c1d9a30.zip"


@pytest.fixture(scope="module")
def scheduled(prepared_stores, dagbag):
    stores = prepared_stores
    stores.reset()
    for key in (EXPIRED, YOUNG):
        stores.s3.put_object(Bucket=BUCKET, Key=key, Body=b"PK\x05\x06" + bytes(18))
    ((mark,),) = stores.query("SELECT coalesce(max(entry_id), 0) FROM privacy.audit_ledger")
    dag_run = run_dag(dagbag.get_dag(DAG_ID), SCHEDULED, {})
    entries = [e for e in stores.ledger(DAG_ID) if e["entry_id"] > mark]
    pages = stores.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    keys = {obj["Key"] for page in pages for obj in page.get("Contents", ())}
    return dag_run, entries, keys


def test_the_suite_runs_the_dags_at_the_level_users_run():
    from airflow.configuration import conf

    assert conf.get("logging", "logging_level").upper() == "INFO"
    assert logging.getLogger("lethe").getEffectiveLevel() <= logging.INFO


def test_scheduled_run_succeeds_at_info_level(scheduled):
    dag_run, entries, keys = scheduled
    assert dag_run.state == "success", task_states(dag_run)
    assert task_states(dag_run) == {"purge_s3[0]": "success", "check_compliance": "success"}
    assert keys == {YOUNG}
    (purge,) = [e for e in entries if e["action"] == "purge"]
    assert (purge["outcome"], purge["counts"]["removed"]) == ("ok", 1)
    assert purge["details"]["cutoff"] == "2026-05-15T22:00:00+00:00"
    (check,) = [e for e in entries if e["action"] == "compliance_check"]
    assert check["outcome"] == "ok"
    assert check["details"]["categories"] == {"subject_exports": True}
