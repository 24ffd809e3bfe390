"""The subject forms end to end: identities typed into register_subject_request stay out of
Airflow's metadata database (run conf, rendered template fields, XCom) and out of the task
log, while the request row in the control schema holds them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from lethe.intake import REDACTED, REDACTED_KEY
from tests.dags.conftest import run_dag, run_metadata, task_states

NOW = datetime.now(UTC).replace(microsecond=0)
TYPED = {
    "emails": ["Jan.de.Vries@Bakkerij-Klein.NL"],
    "phones": ["06-12345678"],
    "visitor_ids": ["v1.4f0c9e2a7b6d5c4e3f21"],
}
#: Every personal value of the form as typed and as stored (normalised).
PERSONAL = (
    "jan.de.vries@bakkerij-klein.nl",
    "12345678",
    "4f0c9e2a7b6d5c4e3f21",
    "Jan de Vries",
    "Dorpsstraat",
    "M. Jansen",
)


def _assert_nothing_personal(text: str) -> None:
    for value in PERSONAL:
        assert value.lower() not in text.lower(), value


FORM = {
    **TYPED,
    "right": "rectification",
    "verified_by": "Support desk, M. Jansen",
    "verification_method": "id_document",
    "details": "My street is wrong. Jan de Vries",
    "corrections": {"delivery_addresses": {"street": "Dorpsstraat"}},
}


def _register(dagbag, conf: dict, when: datetime):
    run = run_dag(dagbag.get_dag("register_subject_request"), when, conf)
    ti = next(ti for ti in run.get_task_instances())
    return run, (ti.xcom_pull(task_ids="register_request") or {}).get("request_id")


@pytest.fixture(scope="module")
def registered(prepared_stores, dagbag):
    run, request_id = _register(dagbag, FORM, NOW)
    return {"run": run, "request_id": request_id, "stores": prepared_stores}


def test_the_request_row_holds_what_was_typed(registered):
    assert registered["run"].state == "success", task_states(registered["run"])
    ((identities, details, corrections, intake),) = registered["stores"].query(
        "SELECT identities, details, corrections, ARRAY[intake_dag_id, intake_run_id]"
        " FROM privacy.subject_requests WHERE request_id = %s::uuid",
        (registered["request_id"],),
    )
    assert identities == {
        "email": ["jan.de.vries@bakkerij-klein.nl"],
        "phone": ["+31612345678"],
        "visitor_id": ["v1.4f0c9e2a7b6d5c4e3f21"],
    }
    assert details == "My street is wrong. Jan de Vries"
    assert corrections == {"delivery_addresses": {"street": "Dorpsstraat"}}
    assert intake == ["register_subject_request", registered["run"].run_id]


def test_the_run_conf_in_the_metadata_db_is_redacted(registered):
    conf = run_metadata(registered["run"])["conf"]
    _assert_nothing_personal(json.dumps(conf))
    assert conf["right"] == "rectification"  # non-identifying fields stay
    assert conf["verification_method"] == "id_document"
    assert (conf["emails"], conf["phones"], conf["corrections"]) == ([], [], {})
    assert conf["details"] == REDACTED
    assert set(conf[REDACTED_KEY]) == {
        "emails",
        "phones",
        "visitor_ids",
        "details",
        "corrections",
        "verified_by",
    }


def test_rendered_fields_and_xcom_hold_no_identity(registered):
    metadata = run_metadata(registered["run"])
    assert metadata["rendered"], "the run stored no rendered fields: nothing was checked"
    assert "verification_method" in json.dumps(metadata["rendered"])
    _assert_nothing_personal(json.dumps(metadata["rendered"], default=str))
    assert registered["request_id"] in json.dumps(metadata["xcoms"], default=str)
    _assert_nothing_personal(json.dumps(metadata["xcoms"], default=str))


def test_the_task_log_holds_no_identity(prepared_stores, dagbag, capfd):
    """dag.test() runs the task in this process: its log is this process's output (at
    INFO, the level users run)."""
    run, request_id = _register(dagbag, FORM, NOW + timedelta(seconds=2))
    assert run.state == "success", task_states(run)
    out, err = capfd.readouterr()
    log = out + err
    assert f"Registered rectification request {request_id}" in log  # the log was read
    _assert_nothing_personal(log)


def test_a_failed_run_is_redacted_too(prepared_stores, dagbag):
    """The operator refuses a restriction that names no request: the run fails, and its
    conf loses the identities all the same (nothing was stored to hold them)."""
    run = run_dag(
        dagbag.get_dag("register_subject_request"),
        NOW + timedelta(seconds=1),
        {**TYPED, "right": "restriction", "verified_by": "Support desk, M. Jansen"},
    )
    assert run.state == "failed"
    conf = run_metadata(run)["conf"]
    _assert_nothing_personal(json.dumps(conf))
    assert conf["right"] == "restriction"
    assert "emails" in conf[REDACTED_KEY]


def test_the_listener_redacts_a_run_outside_any_session(registered):
    """A caller that hands the listener a detached run (no ORM session): the listener
    writes the redacted conf through a session of its own."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select, update

    from lethe.listeners import redact_run

    run = registered["run"]
    where = (DagRun.dag_id == run.dag_id, DagRun.run_id == run.run_id)
    with create_session() as session:
        session.execute(update(DagRun).where(*where).values(conf=FORM))
    with create_session() as session:
        detached = session.scalar(select(DagRun).where(*where))
        session.expunge(detached)
    assert redact_run(detached) is True
    conf = run_metadata(run)["conf"]
    _assert_nothing_personal(json.dumps(conf))
    assert conf["right"] == "rectification"
    assert redact_run(detached) is False  # nothing left to redact
