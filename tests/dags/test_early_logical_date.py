"""A retention run for a logical date before the DAG's first scheduled day runs its tasks.

Airflow creates no task instance for a logical date before a task's start date (the
DAG's) and marks such an empty run successful. The retention DAGs' start date lies far
back (``RETENTION_START_DATE``), so a run a person triggers as of an earlier day (a dry run
as of last year) does its work instead of reporting a success that did nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from lethe.operators.wiring import RETENTION_START_DATE
from tests.dags.conftest import run_dag, task_states

#: Before 1 January 2026, the retention DAGs' first scheduled day.
EARLY = datetime(2025, 6, 1, tzinfo=UTC)


def test_every_retention_dag_starts_far_back(dagbag):
    retention = {
        dag_id: dag for dag_id, dag in dagbag.dags.items() if dag_id.startswith("retention_")
    }
    assert len(retention) == 7
    for dag_id, dag in retention.items():
        assert dag.start_date == RETENTION_START_DATE, dag_id
        assert not dag.catchup, dag_id  # the far-back start date schedules no backlog


def test_a_run_before_the_first_scheduled_day_runs_its_tasks(stores, dagbag):
    dag = dagbag.get_dag("retention_website")
    run = run_dag(dag, EARLY, {"dry_run": True})
    states = task_states(run)
    assert run.state == "success", states
    assert states, "the run had no task instances"
    assert set(states.values()) == {"success"}, states
    assert any(task.startswith("purge_") for task in states), states
    entries = [e for e in stores.ledger(dag.dag_id) if e["run_id"] == run.run_id]
    assert {e["action"] for e in entries} == {"dry_run", "compliance_check"}, entries
