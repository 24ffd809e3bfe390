"""lethe_control_schema end to end: dag.test() against the embedded PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest


@pytest.fixture(scope="module")
def control_dag(dagbag, stack):
    return dagbag.get_dag("lethe_control_schema")


def _task_states(run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def test_migrates_the_control_schema_and_validates_the_catalog(control_dag, stack):
    first = control_dag.test()
    assert first.state == "success", _task_states(first)
    second = control_dag.test()
    assert second.state == "success", _task_states(second)

    with psycopg.connect(stack.postgres_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT max(version) FROM privacy.schema_migrations")
        (versions,) = cur.fetchone()
        cur.execute("SELECT to_regclass('privacy.audit_ledger') IS NOT NULL")
        assert cur.fetchone() == (True,)
    assert versions >= 1

    pulled = {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in second.get_task_instances()}
    assert pulled["migrate_control_schema"]["applied"] == []
    assert pulled["migrate_control_schema"]["version"] == versions
    assert pulled["validate_policies"]["categories"] >= 16
