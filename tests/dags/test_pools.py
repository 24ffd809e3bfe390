"""Airflow pools: a policy naming a pool puts its retention task in it, and the init step
(``deploy/compose/pools.py``, also run by ``make airflow``) creates the pools missing.

A task in a pool that does not exist is never scheduled, so both halves are needed.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from lethe.policy import clear_cache

ROOT = Path(__file__).resolve().parents[2]
POOLS_SCRIPT = ROOT / "deploy" / "compose" / "pools.py"


@pytest.fixture
def pooled_policies(tmp_path, monkeypatch):
    """A copy of the catalog whose website postgres stores run in one pool."""
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "include" / "policies", policies)
    path = policies / "website.yaml"
    data = yaml.safe_load(path.read_text())
    for category in data["categories"]:
        for store in category["stores"]:
            if store["kind"] == "postgres":
                store["pool"] = "lethe_telecom_db"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("LETHE_POLICY_DIR", str(policies))
    clear_cache()
    yield policies
    clear_cache()


@pytest.fixture
def pools_script(monkeypatch):
    monkeypatch.syspath_prepend(str(POOLS_SCRIPT.parent))
    import pools

    yield pools
    sys.modules.pop("pools", None)


def test_the_purge_task_runs_in_the_pool_its_stores_name(pooled_policies):
    from airflow.models import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    bag = DagBag(dag_folder=str(ROOT / "dags" / "retention_website.py"))
    assert bag.import_errors == {}
    dag = bag.dags["retention_website"]
    # What the scheduler reads: the serialized DAG.
    served = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    pools = {task.task_id: task.pool for task in served.tasks}
    assert "(pool `lethe_telecom_db`)" in dag.doc_md  # the store table says so
    # The website's S3 store names no pool: its task stays in default_pool.
    assert pools == {
        "purge_postgres": "lethe_telecom_db",
        "purge_s3": "default_pool",
        "check_compliance": "default_pool",
    }


def test_without_a_pool_every_task_runs_in_default_pool(dagbag):
    for dag_id, dag in dagbag.dags.items():
        if dag_id.startswith("retention_"):
            assert {task.pool for task in dag.tasks} == {"default_pool"}, dag_id


def test_the_init_step_creates_missing_pools_and_leaves_existing_ones(airflow_db, pools_script):
    from airflow.models.pool import Pool

    missing, sized = f"lethe_test_{uuid.uuid4().hex[:8]}", f"lethe_test_{uuid.uuid4().hex[:8]}"
    Pool.create_or_update_pool(sized, 9, "sized by an administrator", include_deferred=False)
    try:
        lines = pools_script.ensure_pools(
            {missing: ["retention_a.purge_postgres"], sized: ["retention_b.purge_sftp"]}, 3
        )
        assert lines == [
            f"{missing}: created with 3 slots for retention_a.purge_postgres",
            f"{sized}: exists (9 slots), left as it is",
        ]
        assert Pool.get_pool(missing).slots == 3
        assert "retention_a.purge_postgres" in Pool.get_pool(missing).description
        assert Pool.get_pool(sized).slots == 9
        again = pools_script.ensure_pools({missing: ["retention_a.purge_postgres"]}, 5)
        assert again == [f"{missing}: exists (3 slots), left as it is"]
    finally:
        for name in (missing, sized):
            Pool.delete_pool(name)


def test_the_init_step_reads_the_pools_from_the_policies(
    airflow_db, pooled_policies, pools_script, monkeypatch, capsys
):
    from airflow.models.pool import Pool

    existed = Pool.get_pool("lethe_telecom_db") is not None
    monkeypatch.setenv("LETHE_POOL_SLOTS", "2")
    try:
        assert pools_script.main() == 0
        out = capsys.readouterr().out
        assert "lethe_telecom_db: " in out
        description = Pool.get_pool("lethe_telecom_db").description
        assert "retention_website.purge_postgres" in description
    finally:
        if not existed:
            Pool.delete_pool("lethe_telecom_db")


@pytest.mark.parametrize("slots", ["0", "-1", "four", "2.5"])
def test_the_init_step_refuses_a_slot_count_that_is_not_a_whole_number(
    pools_script, monkeypatch, slots
):
    monkeypatch.setenv("LETHE_POOL_SLOTS", slots)
    with pytest.raises(SystemExit, match="LETHE_POOL_SLOTS must be a whole number"):
        pools_script.main()


def test_the_init_step_says_so_when_no_store_names_a_pool(pools_script, capsys):
    clear_cache()
    assert pools_script.main() == 0
    assert "no store names a pool" in capsys.readouterr().out
