"""Subject-request operators, sensor and trigger at the operator level."""

from __future__ import annotations

import asyncio
import json

import psycopg2
import pytest
from airflow.sdk.exceptions import AirflowSkipException

from lethe.control.migrate import apply_migrations
from lethe.operators.export import SubjectExportOperator, portable_categories
from lethe.operators.requests import (
    ClaimSubjectRequestsOperator,
    ExtendSubjectRequestDeadlineOperator,
    RegisterSubjectRequestOperator,
    SubjectExportTriggerOperator,
    SubjectRequestOperator,
    SubjectRequestSensor,
)
from lethe.policy import load_catalog
from lethe.triggers import SubjectRequestTrigger


@pytest.mark.parametrize(
    ("operator", "fields"),
    [
        (RegisterSubjectRequestOperator, {"right", "identities", "details", "corrections"}),
        (ClaimSubjectRequestsOperator, {"rights", "limit", "control_conn_id"}),
        (SubjectRequestOperator, {"request_id", "control_conn_id", "policy_dir"}),
        (SubjectExportTriggerOperator, {"request_id", "trigger_dag_id", "conf"}),
        (ExtendSubjectRequestDeadlineOperator, {"request_id", "months", "reason"}),
        (SubjectRequestSensor, {"conn_id"}),
        (
            SubjectExportOperator,
            {"request_id", "identities", "right", "file_format", "link_expiry_days"},
        ),
    ],
)
def test_template_fields(operator, fields):
    assert fields <= set(operator.template_fields)


def test_trigger_serialises_to_its_importable_class_path():
    trigger = SubjectRequestTrigger(conn_id="lethe_control_db", poll_interval=5, timeout=60)
    path, kwargs = trigger.serialize()
    assert path == "lethe.triggers.SubjectRequestTrigger"
    assert SubjectRequestTrigger(**kwargs).serialize() == (path, kwargs)


@pytest.fixture
def control(stack):
    conn = psycopg2.connect(stack.postgres_dsn)
    apply_migrations(conn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE privacy.subject_requests SET status = 'refused', status_reason = 'test'"
            " WHERE status NOT IN ('completed', 'refused')"
        )
    yield conn
    conn.close()


async def _first_event(trigger: SubjectRequestTrigger):
    async for event in trigger.run():
        return event.payload
    return None


def test_trigger_reports_none_when_nothing_arrives(control):
    trigger = SubjectRequestTrigger(conn_id="lethe_control_db", poll_interval=0.05, timeout=0.2)
    assert asyncio.run(_first_event(trigger)) == {"status": "none"}


def test_trigger_fires_for_a_verified_request(control):
    with control.cursor() as cur:
        cur.execute(
            "INSERT INTO privacy.subject_requests (request_right, status, identities,"
            " verified_by, verified_at) VALUES ('access', 'verified', %s::jsonb, 't', now())",
            (json.dumps({"email": ["a@b.nl"]}),),
        )
    trigger = SubjectRequestTrigger(conn_id="lethe_control_db", poll_interval=0.05, timeout=5)
    assert asyncio.run(_first_event(trigger)) == {"status": "found", "pending": 1}


def test_sensor_skips_the_run_when_the_trigger_found_nothing():
    sensor = SubjectRequestSensor(task_id="wait", deferrable=True, timeout=10)
    with pytest.raises(AirflowSkipException):
        sensor.execute_complete({}, {"status": "none"})


def test_portability_takes_contract_and_consent_only_and_refers_client_data():
    included, referred = portable_categories(load_catalog().categories(), "portability")
    assert {c.legal_basis.value for c in included + referred} <= {"contract", "consent"}
    assert "customer_call_recordings" in {c.id for c in referred}  # client, no instruction
    assert "delivery_addresses" in {c.id for c in included}  # client instructed us
    access, _ = portable_categories(load_catalog().categories(), "access")
    assert "support_call_recordings" in {c.id for c in access}
    assert "lawful_intercept_traffic" not in {c.id for c in access}
