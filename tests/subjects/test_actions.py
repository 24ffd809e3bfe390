"""Subject-request actions that write to the control schema: safe to run twice."""

from __future__ import annotations

import json

import psycopg2
import pytest

from lethe.control.migrate import apply_migrations
from lethe.policy import Identity
from lethe.subjects import actions
from lethe.subjects.resolution import Resolution


@pytest.fixture
def control(scratch_database):
    conn = psycopg2.connect(scratch_database)
    apply_migrations(conn)
    yield conn
    conn.close()


def _request(conn, right: str, related: str | None = None) -> str:
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO privacy.subject_requests (request_right, status, identities,"
            " related_request_id) VALUES (%s, 'received', %s::jsonb, %s::uuid)"
            " RETURNING request_id::text",
            (right, json.dumps({"email": ["jan@example.nl"]}), related),
        )
        (request_id,) = cur.fetchone()
    conn.commit()
    return request_id


RESOLUTION = Resolution(
    subject={
        Identity.EMAIL: frozenset({"jan@example.nl"}),
        Identity.PHONE: frozenset({"+31612345678"}),
        Identity.CUSTOMER_ID: frozenset({"7"}),
    },
    organisations={Identity.CUSTOMER_ID: frozenset({"7"})},
    given_types=("customer_id", "email"),
    resolved_types=("phone",),
)


def _count(conn, sql: str) -> int:
    with conn.cursor() as cur:
        cur.execute(sql)
        (n,) = cur.fetchone()
    conn.rollback()
    return n


def test_restriction_covers_people_not_organisations_and_is_placed_once(control):
    erasure = _request(control, "erasure")
    restriction = _request(control, "restriction", related=erasure)
    actions.restrict(control, restriction, erasure, RESOLUTION)
    actions.restrict(control, restriction, erasure, RESOLUTION)  # a retried task
    rows = "SELECT count(*) FROM privacy.processing_restrictions WHERE lifted_at IS NULL"
    assert _count(control, rows) == 2  # e-mail and phone; never the whole customer


def test_restrictions_are_lifted_once_the_related_request_is_decided(control):
    erasure = _request(control, "erasure")
    restriction = _request(control, "restriction", related=erasure)
    actions.restrict(control, restriction, erasure, RESOLUTION)
    assert actions.lift_resolved_restrictions(control) == []  # still pending
    with control.cursor() as cur:
        cur.execute(
            "UPDATE privacy.subject_requests SET status = 'refused' WHERE request_id = %s::uuid",
            (erasure,),
        )
    control.commit()
    assert actions.lift_resolved_restrictions(control) == [(restriction, 2)]
    assert actions.lift_resolved_restrictions(control) == []


def test_a_manual_task_is_opened_once(control):
    request_id = _request(control, "rectification")
    for _ in range(2):
        actions.rectify(control, request_id, {}, None, RESOLUTION, protection_for=None)
    assert _count(control, "SELECT count(*) FROM privacy.manual_tasks") == 1


def test_the_ledger_view_of_outcomes_keeps_reasons_and_the_answer_hides_them():
    outcomes = [
        actions.Outcome("usage_records", "Usage", "kept", 0, "legal_hold"),
        actions.Outcome("lawful_intercept_traffic", "Traffic", "kept", None, "legal_obligation"),
    ]
    answer = actions.answer("erasure", RESOLUTION, outcomes)
    assert [c["category"] for c in answer["categories"]] == ["usage_records", "statutory_retention"]
    assert len({c["explanation"] for c in answer["categories"]}) == 1
    assert "legal_hold" not in json.dumps(answer)
    assert answer["identity_types_used"] == ["customer_id", "email", "phone"]
    details = actions.ledger_details(outcomes)
    assert details["usage_records"]["reason_code"] == "legal_hold"
    assert details["lawful_intercept_traffic"]["reason_code"] == "legal_obligation"
