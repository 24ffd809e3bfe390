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
