"""The subject forms' intake: personal values read at run time, never templated, never echoed;
retries answer the same request; the conf redaction; the export link's expiry."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException

from lethe.control.migrate import apply_migrations
from lethe.intake import (
    KEPT_FIELDS,
    REDACTED,
    REDACTED_KEY,
    SENSITIVE_FIELDS,
    form_identities,
    identity_fields,
    redacted_conf,
)
from lethe.operators.export import SubjectExportOperator, link_expiry
from lethe.operators.intake import RegisterSubjectRequestOperator
from lethe.operators.wiring import IDENTITY_TEMPLATES, identity_params

FIELDS = identity_fields(IDENTITY_TEMPLATES)
LONG_EMAIL = "jan" * 3000 + "@bakkerij-klein"  # 9,000+ characters, no top-level domain
FORM = {
    "right": "erasure",
    "emails": ["Jan.de.Vries@Bakkerij-Klein.NL"],
    "phones": ["06 1234 5678"],
    "customer_ids": [],
    "visitor_ids": [],
    "verified_by": "Support desk, M. Jansen",
    "verification_method": "id_document",
    "verified_on": None,
    "details": "Remove everything about me, Jan de Vries",
    "related_request_id": None,
    "corrections": {},
}


# ------------------------------------------------------------------ template fields


def test_no_personal_value_is_a_template_field():
    """Airflow stores rendered template fields in its metadata DB: identities, details and
    corrections must not be among them (names of the fields to read are)."""
    assert RegisterSubjectRequestOperator.template_fields == (
        "right",
        "verification_method",
        "verified_on",
        "related_request_id",
        "identity_fields",
        "verified_by_field",
        "details_field",
        "corrections_field",
        "control_conn_id",
    )
    assert "identity_fields" in SubjectExportOperator.template_fields
    for fields in (
        RegisterSubjectRequestOperator.template_fields,
        SubjectExportOperator.template_fields,
    ):
        assert not {"identities", "details", "corrections", "verified_by", *FIELDS.values()} & set(
            fields
        )


def test_identity_fields_come_from_the_form_templates():
    assert FIELDS == {
        "email": "emails",
        "phone": "phones",
        "customer_id": "customer_ids",
        "visitor_id": "visitor_ids",
    }
    assert set(FIELDS.values()) == set(identity_params())
    with pytest.raises(ValueError, match="identity field of email"):
        identity_fields({"email": "{{ params.emails | lower }}"})


def test_form_identities_leave_out_empty_fields():
    params = {"emails": ["a@b.nl"], "phones": [], "customer_ids": None}
    assert form_identities(params, FIELDS) == {"email": ["a@b.nl"]}


# ------------------------------------------------------------------ redaction


def test_redaction_keeps_closed_fields_and_empties_personal_ones():
    conf = {**FORM, "corrections": {"customer_contact_persons": {"email": "new@x.nl"}}}
    redacted = redacted_conf("register_subject_request", conf)
    assert redacted == {
        "right": "erasure",
        "emails": [],
        "phones": [],
        "customer_ids": [],
        "visitor_ids": [],
        "verified_by": REDACTED,
        "verification_method": "id_document",
        "verified_on": None,
        "details": REDACTED,
        "related_request_id": None,
        "corrections": {},
        REDACTED_KEY: ["corrections", "details", "emails", "phones", "verified_by"],
    }
    assert redacted_conf("register_subject_request", redacted) is None  # nothing left
    assert redacted_conf("subject_requests", conf) is None  # not an intake DAG
    assert redacted_conf("subject_export", {"request_id": "r", "emails": []}) is None


EXAMPLES = {
    "register_subject_request": {
        **FORM,
        "customer_ids": ["7"],
        "visitor_ids": ["v1.4f0c9e2a7b6d5c4e3f21"],
        "corrections": {"customer_contact_persons": {"email": "new@x.nl"}},
    },
    "subject_export": {
        "request_id": None,
        "emails": ["jan@x.nl"],
        "phones": ["0612345678"],
        "customer_ids": ["7"],
        "visitor_ids": ["v1.4f0c9e2a7b6d5c4e3f21"],
        "right": "access",
        "format": "json",
        "include_recordings": True,
        "link_expiry_days": 7,
    },
}


@pytest.mark.parametrize("dag_id", sorted(KEPT_FIELDS))
def test_every_form_field_is_either_kept_or_redacted(dagbag, dag_id):
    """Each field of the form is known here (a new one fails this test until it is kept on
    purpose or left to redaction); no identity field is kept; a redacted conf still passes
    the form, so a cleared run reaches the operator (which then says the values are gone)."""
    from airflow.sdk.definitions.param import ParamsDict

    dag = dagbag.get_dag(dag_id)
    example, kept = EXAMPLES[dag_id], KEPT_FIELDS[dag_id]
    assert set(example) == set(dag.params)
    assert kept <= set(example)
    assert not kept & set(FIELDS.values())
    redacted = redacted_conf(dag_id, example)
    assert set(redacted[REDACTED_KEY]) == {k for k in example if k not in kept and example[k]}
    assert set(FIELDS.values()) <= set(redacted[REDACTED_KEY])
    text = json.dumps(redacted)
    for value in ("jan@x.nl", "0612345678", "v1.4f0c", "new@x.nl", "Jan de Vries"):
        assert value not in text
    # What is redacted is also masked in Airflow's audit log of the trigger request.
    assert set(redacted[REDACTED_KEY]) <= set(SENSITIVE_FIELDS)
    form = ParamsDict(suppress_exception=False)
    # A copy: updating a ParamsDict sets the values of the Param objects it holds, and the
    # DAG's own must keep their defaults for the DAG tests that run after this one.
    form.update(copy.deepcopy(dag.params))
    form.update(redacted)
    form.validate()  # raises ParamValidationError if the redaction broke the form


# ------------------------------------------------------------------ operators


@pytest.fixture
def control(stack):
    conn = psycopg.connect(stack.postgres_dsn)
    apply_migrations(conn)
    conn.autocommit = True
    yield conn
    conn.close()


def _context(params: dict, dag_id: str = "register_subject_request") -> dict:
    ti = SimpleNamespace(
        dag_id=dag_id, run_id=f"manual__{uuid.uuid4()}", task_id="register_request", map_index=-1
    )
    return {"ti": ti, "params": params}


def _register(**overrides) -> RegisterSubjectRequestOperator:
    arguments = {
        "right": FORM["right"],
        "verification_method": FORM["verification_method"],
        **overrides,
    }
    return RegisterSubjectRequestOperator(task_id="register_request", **arguments)


def _rows(control, run_id: str) -> list[tuple]:
    with control.cursor() as cur:
        cur.execute(
            "SELECT request_id::text, identities, details FROM privacy.subject_requests"
            " WHERE intake_run_id = %s",
            (run_id,),
        )
        return cur.fetchall()


def test_registration_reads_the_params_and_a_retry_answers_the_same_request(control):
    context = _context(dict(FORM))
    first = _register().execute(context)
    again = _register().execute(context)  # a retry of the same run
    assert again == first == {"request_id": first["request_id"], "right": "erasure"}
    ((request_id, identities, details),) = _rows(control, context["ti"].run_id)
    assert request_id == first["request_id"]
    assert identities == {"email": ["jan.de.vries@bakkerij-klein.nl"], "phone": ["+31612345678"]}
    assert details == FORM["details"]
    with control.cursor() as cur:
        cur.execute(
            "SELECT count(*), min(details::text) FROM privacy.audit_ledger"
            " WHERE run_id = %s AND action = 'request_registered'",
            (context["ti"].run_id,),
        )
        count, ledger_details = cur.fetchone()
    assert count == 1
    assert "jan" not in ledger_details.lower()
    assert json.loads(ledger_details)["identity_types"] == ["email", "phone"]


@pytest.mark.parametrize(
    ("params", "field", "value"),
    [
        ({"emails": [LONG_EMAIL]}, "email", LONG_EMAIL),
        ({"emails": ["jan@x.nl", "jan.de.vries@"]}, "email[1]", "jan.de.vries@"),
        ({"phones": ["+31 6 1234 5678 9999 0000"]}, "phone", "1234 5678 9999"),
        ({"emails": ["jan@x.nl"], "details": "Jan de Vries\u0007" * 10}, "details", "Jan de"),
        ({"emails": ["jan@x.nl"], "details": "Jan de Vries " * 200}, "details", "Jan de"),
        ({"emails": ["jan@x.nl"], "verified_by": "M. Jansen\u0001"}, "verified_by", "Jansen"),
        (
            {
                "emails": ["jan@x.nl"],
                "right_override": "rectification",
                "corrections": {"contact": {"name": "Jan de Vries\u0000"}},
            },
            "corrections",
            "Jan de",
        ),
    ],
    ids=[
        "long-email",
        "second-email",
        "long-phone",
        "control-chars",
        "too-long",
        "verified-by",
        "correction",
    ],
)
def test_a_malformed_value_is_refused_naming_the_field_not_the_value(control, params, field, value):
    right = params.pop("right_override", "erasure")
    context = _context({**FORM, "emails": [], "phones": [], "details": "", **params})
    with pytest.raises(AirflowFailException) as caught:
        _register(right=right).execute(context)
    message = str(caught.value)
    assert field in message
    assert value not in message
    assert len(message) < 200
    assert _rows(control, context["ti"].run_id) == []  # nothing stored


def test_the_export_form_path_refuses_without_echoing_and_registers_nothing(control):
    operator = SubjectExportOperator(task_id="export_subject_data", request_id=None)
    context = _context({"emails": [LONG_EMAIL]}, dag_id="subject_export")
    with pytest.raises(AirflowFailException) as caught:
        operator.execute(context)
    assert "email" in str(caught.value)
    assert "jan" not in str(caught.value)
    assert _rows(control, context["ti"].run_id) == []


def test_the_export_form_path_finds_its_request_by_the_run_on_a_retry(control):
    operator = SubjectExportOperator(task_id="export_subject_data", request_id=None)
    context = _context({"phones": ["06-12345678"]}, dag_id="subject_export")
    first = operator._subject(context)
    # The retry's form values are already redacted: the run, not the form, finds it.
    context["params"] = {"phones": [], REDACTED_KEY: ["phones"]}
    assert operator._subject(context) == first
    assert first[2] == {"phone": frozenset({"+31612345678"})}
    assert len(_rows(control, context["ti"].run_id)) == 1
    assert operator.hook.find_intake_request("subject_export", context["ti"].run_id) == (
        first[0],
        "access",
    )


def test_a_cleared_redacted_run_says_so(control):
    context = _context(
        {**FORM, "emails": [], "phones": [], "details": REDACTED, REDACTED_KEY: ["emails"]}
    )
    with pytest.raises(AirflowFailException, match="redacted when it ended"):
        _register().execute(context)


# ------------------------------------------------------------------ the plugin


def test_the_plugin_registers_the_listener():
    from airflow import plugins_manager
    from airflow.listeners.listener import get_listener_manager

    import lethe.listeners

    plugins, errors = plugins_manager._get_plugins()
    assert not errors, errors
    assert "lethe" in {p.name for p in plugins}
    assert get_listener_manager().pm.is_registered(lethe.listeners)


# ------------------------------------------------------------------ link expiry


def test_the_expiry_is_read_from_the_signed_link():
    link = (
        "https://s3.example/lethe-exports/exports/x.zip?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Date=20261130T235959Z&X-Amz-Expires=172800&X-Amz-Signature=ab"
    )
    assert link_expiry(link) == datetime(2026, 12, 2, 23, 59, 59, tzinfo=UTC)
    with pytest.raises(AirflowFailException, match="no signature-version-4 expiry"):
        link_expiry("https://s3.example/x.zip?Expires=1700000000&Signature=ab")


def test_a_request_id_with_identities_is_refused_even_after_redaction(control):
    """Both given (and the identities redacted since): the run fails; the stored request
    named by the id is not touched (it is not refused for the form's mistake)."""
    operator = SubjectExportOperator(
        task_id="export_subject_data", request_id="00000000-0000-0000-0000-000000000000"
    )
    context = _context({"emails": [], REDACTED_KEY: ["emails"]}, dag_id="subject_export")
    with pytest.raises(AirflowFailException, match="not both"):
        operator._subject(context)
