"""Issue 13: a subject form triggered through Airflow's REST API (as the UI's trigger form
does) leaves no typed identity in Airflow's audit log (the ``log`` table), whose entry
records the request's conf: the form's fields are masked as sensitive names
(``AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES``, set by the embedded stack)."""

from __future__ import annotations

import json

EMAIL = "Ijsvogel.Reigersbek@Example-Trigger.NL"
VERIFIER = "Balie Theodoor Wulpsma"
MARKERS = ("ijsvogel.reigersbek", "theodoor wulpsma", "76543219")


def test_the_audit_log_of_a_triggered_form_holds_no_typed_value(api_client, token, dagbag):
    from airflow import settings
    from airflow._shared.secrets_masker import should_hide_value_for_key
    from airflow.models import DagRun, Log
    from airflow.utils.session import create_session
    from sqlalchemy import delete, select

    # An api-server reads AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES when it starts; this test
    # process imported Airflow before the stack fixture set it: configure as a start would.
    settings._configure_secrets_masker()
    assert should_hide_value_for_key("emails")

    conf = {
        "right": "access",
        "emails": [EMAIL],
        "phones": ["06-76543219"],
        "verified_by": VERIFIER,
        "verification_method": "id_document",
        "details": "Alles graag",
    }
    answer = api_client.post(
        "/api/v2/dags/register_subject_request/dagRuns",
        headers={"Authorization": f"Bearer {token('admin', 'admin')}"},
        json={"logical_date": None, "conf": conf},
    )
    assert answer.status_code == 200, answer.text
    run_id = answer.json()["dag_run_id"]
    with create_session() as session:
        extras = session.scalars(
            select(Log.extra).where(
                Log.dag_id == "register_subject_request", Log.event == "trigger_dag_run"
            )
        ).all()
        # No scheduler runs it: the queued run (its conf unredacted) must not stay.
        session.execute(delete(DagRun).where(DagRun.run_id == run_id))
    assert extras, "the trigger left no audit-log entry: nothing was checked"
    text = json.dumps(extras).lower()
    assert "verification_method" in text  # the conf is recorded, masked
    assert [m for m in MARKERS if m in text] == [], text
