"""A broken policy never hides the retention DAGs: they parse, say so, and their runs fail.

The catalog is broken in a temporary copy (``LETHE_POLICY_DIR``); what is checked is what
the UI and the REST API would show: no import error, every retention DAG still listed
with a description saying the policy is invalid, and a run that fails on its first try
with the error naming file, category and field.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from airflow.models import DagBag

from lethe.policy import clear_cache
from tests.dags.conftest import task_states

ROOT = Path(__file__).resolve().parents[2]
RETENTION_DAGS = {f"retention_{p.stem}" for p in (ROOT / "include" / "policies").glob("*.yaml")}
ERROR = "support_tickets.yaml: category 'support_tickets': legal_basis: "


@pytest.fixture
def broken_policies(tmp_path, monkeypatch):
    """A copy of the catalog with a typo in one legal basis, in force for the test."""
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "include" / "policies", policies)
    data = yaml.safe_load((policies / "support_tickets.yaml").read_text())
    data["categories"][0]["legal_basis"] = "contrct"
    (policies / "support_tickets.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("LETHE_POLICY_DIR", str(policies))
    clear_cache()
    yield policies
    clear_cache()


def test_every_retention_dag_still_parses_and_says_its_policy_is_invalid(broken_policies):
    bag = DagBag(dag_folder=str(ROOT / "dags"))

    assert bag.import_errors == {}
    assert RETENTION_DAGS <= set(bag.dags)
    for dag_id in RETENTION_DAGS:
        dag = bag.dags[dag_id]
        assert dag.description.startswith("POLICY INVALID"), dag_id
        assert "policy-invalid" in dag.tags
        assert ERROR in dag.doc_md
        assert [task.task_id for task in dag.tasks] == ["policy_invalid"]
        assert dag.schedule == "@daily"  # still scheduled: every run fails, loudly


def test_a_run_fails_on_its_first_try_with_the_policy_error(dagbag, stack, broken_policies, capfd):
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    dag = bag.dags["retention_website"]

    run = dag.test(logical_date=datetime(2026, 6, 1, tzinfo=ZoneInfo("Europe/Amsterdam")))

    assert run.state == "failed"
    assert task_states(run) == {"policy_invalid": "failed"}
    (instance,) = run.get_task_instances()
    assert instance.try_number == 1  # AirflowFailException: no retry
    out, err = capfd.readouterr()
    assert ERROR in out + err
    assert "the policy catalog is invalid (1 error(s))" in out + err


def test_the_control_dags_validation_fails_for_good_naming_the_error(broken_policies):
    from airflow.sdk.exceptions import AirflowFailException

    from lethe.operators.policy import ValidatePolicyCatalogOperator

    validate = ValidatePolicyCatalogOperator(task_id="validate_policies")
    with pytest.raises(AirflowFailException, match=ERROR):  # not retried
        validate.execute(context={})

    shutil.copy(ROOT / "include" / "policies" / "support_tickets.yaml", broken_policies)
    clear_cache()
    counted = validate.execute(context={})
    families = len(list((ROOT / "include" / "policies").glob("*.yaml")))
    assert counted["families"] == families
    assert counted["categories"] >= families
