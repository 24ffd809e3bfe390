"""DAG integrity: every DAG file imports cleanly and says who owns it and what it does."""

from __future__ import annotations

import json
import subprocess
import sys
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


def test_every_dag_has_a_description(parsed):
    # The DAG list shows it as each DAG's summary.
    missing = sorted(d.dag_id for d in parsed.dags.values() if not (d.description or "").strip())
    assert missing == []


def _retention_dags(parsed):
    return {d.dag_id: d for d in parsed.dags.values() if "retention" in (d.tags or ())}


def test_every_policy_family_has_exactly_one_retention_dag_naming_it():
    from lethe.policy import load_catalog

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    families = {family.family.value for family in load_catalog().families}
    named: dict[str, list[str]] = {}
    for dag_id, dag in _retention_dags(bag).items():
        used = {getattr(task, "family_id", None) for task in dag.tasks} - {None}
        assert len(used) == 1, f"{dag_id}: its tasks name families {used}"
        (family,) = used
        assert family in families, f"{dag_id} names {family!r}, which no policy file defines"
        assert dag_id == f"retention_{family}"
        named.setdefault(family, []).append(dag_id)
    assert {family: len(dags) for family, dags in named.items()} == dict.fromkeys(families, 1)


def test_retention_dags_read_their_description_doc_and_tags_from_the_policy(parsed):
    from lethe.policy import load_catalog

    catalog = load_catalog()
    for dag_id, dag in _retention_dags(parsed).items():
        family = catalog.family(dag_id.removeprefix("retention_"))
        assert dag.description.startswith(f"{family.title}: kept "), dag_id
        assert family.description in dag.doc_md
        assert f"include/policies/{family.family.value}.yaml" in dag.doc_md
        for category in family.categories:
            assert category.retention.human() in dag.description
            assert f"| {category.title} | {category.retention.human()} |" in dag.doc_md
            if category.statement_row is not None:
                assert f"row {category.statement_row}" in dag.tags
        assert family.family.value in dag.tags


def _required_in_the_form(schema: dict) -> bool:
    """How Airflow 3.3's trigger form decides a field is required (it stars it, and refuses
    it empty): the schema has a type, and that type does not allow null."""
    kind = schema.get("type")
    return bool(kind) and not (isinstance(kind, list) and "null" in kind)


@pytest.mark.parametrize("dag_id", ["register_subject_request", "subject_export"])
def test_one_identity_is_enough_in_the_subject_forms(parsed, dag_id):
    from airflow.serialization.serialized_objects import DagSerialization

    # What the UI gets: the serialized DAG's params, each dumped as the DAG details
    # endpoint does ({"value", "schema", "description", ...}).
    serialized = DagSerialization.from_dict(DagSerialization.to_dict(parsed.dags[dag_id]))
    params = {name: param.dump() for name, param in serialized.params.items()}
    identities = ("emails", "phones", "customer_ids", "visitor_ids")
    assert {name: _required_in_the_form(params[name]["schema"]) for name in identities} == (
        dict.fromkeys(identities, False)
    )
    assert all(params[name]["schema"]["type"] == ["null", "array"] for name in identities)
    if dag_id == "register_subject_request":
        assert not _required_in_the_form(params["details"]["schema"])
        assert not _required_in_the_form(params["corrections"]["schema"])
        assert _required_in_the_form(params["verified_by"]["schema"])  # truly required
        assert _required_in_the_form(params["right"]["schema"])


#: Run in a fresh interpreter: imports Airflow as the DAG processor has before it forks,
#: then parses each DAG file in a fork of its own and prints the modules it loaded.
_PARSE_IN_FORKS = """
import importlib.util, json, os, sys
import airflow, airflow.sdk
loaded = {}
for path in sys.argv[1:]:
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        before = set(sys.modules)
        spec = importlib.util.spec_from_file_location("parsed_dag", path)
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        os.write(write_end, json.dumps(sorted(set(sys.modules) - before)).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        loaded[os.path.basename(path)] = json.loads(pipe.read() or "null")
    os.wait()
print(json.dumps(loaded))
"""

#: What no DAG file may load at parse time: the stores' clients and the providers (the
#: operators import them when they run), and Airflow's run-time models.
_RUN_TIME_ONLY = (
    "boto3",
    "botocore",
    "paramiko",
    "psycopg",
    "airflow.providers.amazon",
    "airflow.providers.postgres",
    "airflow.providers.sftp",
    "airflow.models.dagrun",
    "airflow.models.taskinstance",
)


def test_dag_files_load_at_parse_time_only_what_their_dag_needs():
    """The DAG processor parses every file again and again, each in a fresh fork: a file
    loads neither a store's client nor the policy models it does not read (only the
    retention DAGs build their tasks from the policy catalog)."""
    files = sorted(str(path) for path in DAGS_FOLDER.glob("*.py"))
    done = subprocess.run(
        [sys.executable, "-c", _PARSE_IN_FORKS, *files],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert set(loaded) == {Path(f).name for f in files}
    for name, modules in loaded.items():
        assert modules is not None, f"{name} did not parse"
        heavy = [p for p in _RUN_TIME_ONLY if any(_within(m, p) for m in modules)]
        assert heavy == [], f"{name} loads {heavy} at parse time"
        reads_policy = name.startswith("retention_")
        assert ("lethe.policy.models" in modules) == reads_policy, name


def _within(module: str, package: str) -> bool:
    """``module`` is ``package`` or inside it (not merely a name that starts the same, as
    ``psycopg2`` does with ``psycopg``)."""
    return module == package or module.startswith(f"{package}.")


def test_retention_tasks_time_out_before_the_next_days_run(parsed):
    """A hung purge fails (and is mailed) instead of holding its slots for good."""
    from datetime import timedelta

    from airflow.serialization.serialized_objects import DagSerialization

    retention = [dag for dag_id, dag in parsed.dags.items() if dag_id.startswith("retention_")]
    assert retention
    for dag in retention:
        served = DagSerialization.from_dict(DagSerialization.to_dict(dag))
        for task in served.tasks:
            assert task.execution_timeout == timedelta(hours=20), (dag.dag_id, task.task_id)
