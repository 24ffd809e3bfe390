"""Issue 13: identities typed into the subject forms appear nowhere in Airflow's metadata
database once the run has ended: not in any column of any table (run conf, rendered
template fields, XCom, task instances and their history, the audit log ...), compressed
blobs included, and not in the task log files under AIRFLOW_HOME.

Runs ``register_subject_request`` and ``subject_export`` (by identities, then by the
request id the first registered) with recognisable values, then reads every table."""

from __future__ import annotations

import contextlib
import json
import os
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.dags.conftest import run_dag, task_states

NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=7)
EMAIL = "Zwaluw.Kwikstaart@Vogelhof-Example.NL"
PHONE = "06-13579246"
VISITOR = "v1.9e8d7c6b5a4f3e2d1c0b"
VERIFIER = "Balie Quirijn Oudeboom"
DETAILS = "Graag alles van mij, Xander Pluimveld"
#: Each value as typed and as stored (normalised), lower case.
MARKERS = (
    "zwaluw.kwikstaart",
    "vogelhof-example",
    "13579246",
    "9e8d7c6b5a4f3e2d1c0b",
    "quirijn oudeboom",
    "xander pluimveld",
)


def _texts(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        out = [value.decode("utf-8", "replace")]
        with contextlib.suppress(zlib.error):
            out.append(zlib.decompress(value).decode("utf-8", "replace"))
        return out
    if isinstance(value, dict | list):
        return [json.dumps(value, default=str)]
    return [str(value)]


def _metadata_hits() -> list[str]:
    """``table.column`` of every cell in the metadata DB holding a marker."""
    from airflow.settings import engine
    from sqlalchemy import MetaData, select

    meta = MetaData()
    meta.reflect(bind=engine)
    hits = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                for column, value in row._mapping.items():
                    for text in _texts(value):
                        if any(m in text.lower() for m in MARKERS):
                            hits.append(f"{table.name}.{column}")
    return sorted(set(hits))


def _log_hits() -> list[str]:
    home = Path(os.environ["AIRFLOW_HOME"])
    hits = []
    for path in home.rglob("*"):
        if path.is_file() and path.suffix in {".log", ".json", ""} and path.name != "airflow.db":
            text = path.read_text("utf-8", "replace").lower()
            if any(m in text for m in MARKERS):
                hits.append(str(path.relative_to(home)))
    return hits


@pytest.fixture(scope="module")
def runs(prepared_stores, dagbag):
    prepared_stores.reset()
    for root in ("support", "customers"):  # the roots the recordings policy names
        (prepared_stores.sftp_root / "recordings" / root).mkdir(parents=True, exist_ok=True)
    registered = run_dag(
        dagbag.get_dag("register_subject_request"),
        NOW,
        {
            "right": "access",
            "emails": [EMAIL],
            "phones": [PHONE],
            "visitor_ids": [VISITOR],
            "verified_by": VERIFIER,
            "verification_method": "id_document",
            "details": DETAILS,
        },
    )
    ti = next(iter(registered.get_task_instances()))
    request_id = ti.xcom_pull(task_ids="register_request")["request_id"]
    by_identity = run_dag(
        dagbag.get_dag("subject_export"),
        NOW,
        {"emails": [EMAIL.upper()], "phones": [PHONE], "link_expiry_days": 1},
    )
    by_request = run_dag(
        dagbag.get_dag("subject_export"),
        NOW + timedelta(seconds=1),
        {"request_id": request_id, "link_expiry_days": 1},
    )
    return {
        "runs": (registered, by_identity, by_request),
        "request_id": request_id,
        "stores": prepared_stores,
    }


def test_the_runs_succeeded_and_the_request_holds_the_values(runs):
    for run in runs["runs"]:
        assert run.state == "success", (run.dag_id, task_states(run))
    row = runs["stores"].query(
        "SELECT verified_by, details FROM privacy.subject_requests WHERE request_id = %s::uuid",
        (runs["request_id"],),
    )
    assert row == [(VERIFIER, DETAILS)]


def test_no_table_of_the_metadata_db_holds_a_typed_value(runs):
    assert _metadata_hits() == []


def test_the_scan_would_see_a_value_left_in_the_metadata_db(runs):
    """The scan itself reads conf: a run whose conf still holds a value is found."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select, update

    run = runs["runs"][2]
    where = (DagRun.dag_id == run.dag_id, DagRun.run_id == run.run_id)
    with create_session() as session:
        before = session.scalar(select(DagRun.conf).where(*where))
        session.execute(update(DagRun).where(*where).values(conf={**before, "emails": [EMAIL]}))
    try:
        assert _metadata_hits() == ["dag_run.conf"]
    finally:
        with create_session() as session:
            session.execute(update(DagRun).where(*where).values(conf=before))


def test_no_task_log_file_holds_a_typed_value(runs):
    """dag.test() logs to this process's output (below); a log file would be read here."""
    assert _log_hits() == []


def test_the_task_log_of_an_export_by_identities_holds_none(runs, dagbag, capfd):
    """dag.test() runs the task in this process: its log is this process's output (at
    INFO, the level users run)."""
    capfd.readouterr()
    run = run_dag(
        dagbag.get_dag("subject_export"),
        NOW + timedelta(seconds=2),
        {"emails": [EMAIL], "phones": [PHONE], "link_expiry_days": 1},
    )
    assert run.state == "success", task_states(run)
    out, err = capfd.readouterr()
    log = (out + err).lower()
    assert "export_subject_data" in log  # the task's log was read
    assert [m for m in MARKERS if m in log] == []
    assert _metadata_hits() == []
