"""DAG integrity: every DAG file imports cleanly and says who owns it and what it does."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.models import DagBag

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def parsed() -> DagBag:
    return DagBag(dag_folder=str(DAGS_FOLDER))


def test_every_dag_file_imports_without_error(parsed):
    assert parsed.import_errors == {}


def test_every_dag_file_defines_a_dag(parsed):
    files = {p.name for p in DAGS_FOLDER.glob("*.py") if not p.name.startswith("_")}
    defining = {Path(dag.fileloc).name for dag in parsed.dags.values()}
    assert files == defining


def test_dags_have_owner_tags_retries_and_docs(parsed):
    assert parsed.dags, "no DAG found"
    problems = []
    for dag in parsed.dags.values():
        if not dag.tags or "lethe" not in dag.tags:
            problems.append(f"{dag.dag_id}: tags must include 'lethe'")
        if not (dag.doc_md or "").strip():
            problems.append(f"{dag.dag_id}: doc_md is empty")
        if dag.catchup:
            problems.append(f"{dag.dag_id}: catchup must be off")
        for t in dag.tasks:
            if t.owner in (None, "", "airflow"):
                problems.append(f"{dag.dag_id}.{t.task_id}: owner is not set")
            if not t.retries:
                problems.append(f"{dag.dag_id}.{t.task_id}: retries is 0")
    assert problems == []
