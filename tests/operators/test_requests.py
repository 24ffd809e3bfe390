"""Subject-request operators, sensor and trigger at the operator level."""

from __future__ import annotations

import asyncio
import json
from contextlib import nullcontext
from types import SimpleNamespace

import paramiko
import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from botocore.exceptions import ClientError, EndpointConnectionError

from lethe.control.migrate import apply_migrations
from lethe.control.requests import RequestError, is_transient
from lethe.domain.identities import InvalidIdentity
from lethe.exceptions import PolicyError, PurgeError, PurgeGuardError, StoreError
from lethe.operators.deadlines import ExtendSubjectRequestDeadlineOperator
from lethe.operators.export import SubjectExportOperator, portable_categories
from lethe.operators.export_trigger import SubjectExportTriggerOperator
from lethe.operators.intake import RegisterSubjectRequestOperator
from lethe.operators.pickup import ClaimSubjectRequestsOperator, SubjectRequestSensor
from lethe.operators.reopen import ReopenSubjectRequestOperator
from lethe.operators.request_steps import final_try
from lethe.operators.rights import SubjectRequestOperator
from lethe.policy import load_catalog
from lethe.triggers import SubjectRequestTrigger


@pytest.mark.parametrize(
    ("operator", "fields"),
    [
        (RegisterSubjectRequestOperator, {"right", "verification_method", "identity_fields"}),
        (ClaimSubjectRequestsOperator, {"rights", "limit", "control_conn_id"}),
        (SubjectRequestOperator, {"request_id", "control_conn_id", "policy_dir"}),
        (SubjectExportTriggerOperator, {"request_id", "trigger_dag_id", "conf"}),
        (ExtendSubjectRequestDeadlineOperator, {"request_id", "months", "reason"}),
        (ReopenSubjectRequestOperator, {"request_id", "reason", "control_conn_id"}),
        (SubjectRequestSensor, {"conn_id"}),
        (
            SubjectExportOperator,
            {"request_id", "identity_fields", "right", "file_format", "link_expiry_days"},
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
    conn = psycopg.connect(stack.postgres_dsn)
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


# ------------------------------------------------------------ failures, retries, reopening


def _context(try_number: int = 1, max_tries: int = 2, user: str | None = "privacy-officer"):
    ti = SimpleNamespace(
        dag_id="subject_requests",
        task_id="erase",
        run_id=f"manual__try{try_number}",
        map_index=0,
        try_number=try_number,
        max_tries=max_tries,
    )
    return {"ti": ti, "dag_run": SimpleNamespace(triggering_user_name=user), "params": {}}


def _insert(control, right: str, identities: dict, status: str = "in_progress") -> str:
    with control.cursor() as cur:
        cur.execute(
            "INSERT INTO privacy.subject_requests (request_right, status, identities,"
            " verified_by, verified_at) VALUES (%s, %s, %s::jsonb, 'test', now())"
            " RETURNING request_id::text",
            (right, status, json.dumps(identities)),
        )
        return cur.fetchone()[0]


def _state(control, request_id: str) -> tuple[str, str | None]:
    with control.cursor() as cur:
        cur.execute(
            "SELECT status, status_reason FROM privacy.subject_requests"
            " WHERE request_id = %s::uuid",
            (request_id,),
        )
        return cur.fetchone()


def _entries(control, request_id: str) -> list[dict]:
    with control.cursor() as cur:
        cur.execute(
            "SELECT action, outcome, details FROM privacy.audit_ledger"
            " WHERE request_id = %s::uuid ORDER BY entry_id",
            (request_id,),
        )
        return [{"action": a, "outcome": o, "details": d} for a, o, d in cur.fetchall()]


class _Adapter:
    """A store adapter whose erase does what the test says, store by store."""

    def __init__(self, script, store):
        self.script, self.store = script, store

    def session(self):
        return nullcontext()

    def resolve(self, known):
        return {}

    def erase(self, subject, protection):
        from lethe.domain.counts import EraseResult

        step = self.script.get(self.store.location)
        if isinstance(step, list):
            step = step.pop(0) if step else EraseResult()
        if isinstance(step, BaseException):
            raise step
        return step or EraseResult()


@pytest.fixture
def scripted(monkeypatch):
    """Store location -> what the next erase of that store does (result or error)."""
    script: dict = {}
    monkeypatch.setattr(
        "lethe.stores.adapter_for", lambda store, category, **_: _Adapter(script, store)
    )
    return script


EMAIL = {"email": ["jan@example.nl"]}


@pytest.mark.parametrize(
    ("try_number", "max_tries", "last"),
    [(1, 2, False), (2, 2, False), (3, 2, True), (1, 0, True), (4, 5, False)],
)
def test_final_try_follows_airflows_retry_rule(try_number, max_tries, last):
    assert final_try(_context(try_number, max_tries)) is last


def test_final_try_falls_back_to_the_tasks_retries_when_the_ti_has_no_max_tries():
    ctx = {"ti": SimpleNamespace(try_number=1)}
    assert final_try(ctx, retries=2) is False
    assert final_try(ctx, retries=0) is True


def test_a_transient_store_error_is_retried_and_the_request_stays_in_progress(control, scripted):
    request_id = _insert(control, "erasure", EMAIL)
    scripted["telecom.contact_persons"] = StoreError("cannot connect to telecom.contact_persons")
    with pytest.raises(StoreError):
        SubjectRequestOperator(task_id="erase", request_id=request_id).execute(_context(1, 2))
    assert _state(control, request_id)[0] == "in_progress"
    entry = _entries(control, request_id)[-1]
    assert (entry["action"], entry["outcome"]) == ("request_erasure", "retrying")
    assert entry["details"]["try_number"] == 1
    assert entry["details"]["transient"] is True


def test_the_last_try_fails_the_request_with_the_reason_and_what_was_removed(control, scripted):
    request_id = _insert(control, "erasure", EMAIL)
    scripted["telecom.support_tickets"] = PurgeError(
        "erase of telecom.support_tickets failed", removed=4
    )
    with pytest.raises(AirflowFailException, match="support_tickets failed"):
        SubjectRequestOperator(task_id="erase", request_id=request_id).execute(_context(3, 2))
    status, reason = _state(control, request_id)
    assert status == "failed"
    assert "support_tickets failed" in reason
    entry = _entries(control, request_id)[-1]
    assert entry["outcome"] == "failed"
    # The rows gone before the failure are on record, by store.
    assert entry["details"]["progress"]["support_tickets"] == {
        "postgres:lethe_telecom_db:telecom.support_tickets": {
            "removed": 4,
            "anonymised": 0,
            "withheld": 0,
            "redacted": 0,
        }
    }


@pytest.mark.parametrize("cause", ["policy", "right"])
def test_a_request_that_cannot_succeed_fails_on_the_first_try(control, scripted, tmp_path, cause):
    right = "access" if cause == "right" else "erasure"  # access is not the erase route's
    request_id = _insert(control, right, EMAIL)
    policy_dir = str(tmp_path) if cause == "policy" else None  # no policy files: PolicyError
    operator = SubjectRequestOperator(task_id="erase", request_id=request_id, policy_dir=policy_dir)
    with pytest.raises(AirflowFailException):
        operator.execute(_context(1, 2))
    assert _state(control, request_id)[0] == "failed"
    assert _entries(control, request_id)[-1]["outcome"] == "failed"


def test_a_retry_answers_from_the_totals_of_every_try(control, scripted):
    from lethe.domain.counts import EraseResult

    request_id = _insert(control, "erasure", EMAIL)
    # Try 1: contact persons done (2 rows); tickets fail after removing 3 of their rows.
    scripted["telecom.contact_persons"] = [EraseResult(removed=2), EraseResult()]
    scripted["telecom.support_tickets"] = [PurgeError("timeout", removed=3), EraseResult(removed=1)]
    with pytest.raises(PurgeError):
        SubjectRequestOperator(task_id="erase", request_id=request_id).execute(_context(1, 2))
    # Try 2 finds nothing left in the contact persons: the answer still says erased.
    summary = SubjectRequestOperator(task_id="erase", request_id=request_id).execute(_context(2, 2))
    assert summary["status"] == "completed"
    with control.cursor() as cur:
        cur.execute(
            "SELECT answer FROM privacy.subject_requests WHERE request_id = %s::uuid",
            (request_id,),
        )
        (answer,) = cur.fetchone()
    outcomes = {c["category"]: (c["outcome"], c["items"]) for c in answer["categories"]}
    assert outcomes["customer_contact_persons"] == ("erased", 2)
    assert outcomes["support_tickets"] == ("erased", 4)
    assert answer["result"] == "carried_out"
    completed = _entries(control, request_id)[-1]
    assert completed["outcome"] == "completed"
    assert completed["details"]["stores"]["support_tickets"]


def test_a_request_that_finds_nothing_anywhere_is_answered_nothing_found(control, scripted):
    request_id = _insert(control, "erasure", EMAIL)
    summary = SubjectRequestOperator(task_id="erase", request_id=request_id).execute(_context())
    assert summary["result"] == "nothing_found"
    assert _state(control, request_id) == ("completed", "nothing found")
    entry = _entries(control, request_id)[-1]
    assert (entry["action"], entry["outcome"]) == ("request_erasure", "nothing_found")


def test_the_export_routes_refuse_a_malformed_request_like_the_erase_route(control, scripted):
    from lethe.operators.export import SubjectExportOperator

    for operator in (SubjectExportTriggerOperator, SubjectExportOperator, SubjectRequestOperator):
        request_id = _insert(control, "access", {"phone": ["06-not-a-number"]})
        with pytest.raises(AirflowFailException, match="malformed identities"):
            operator(task_id="t", request_id=request_id).execute(_context())
        status, reason = _state(control, request_id)
        assert status == "refused", operator.__name__
        assert "phone" in reason
        assert "not-a-number" not in reason
        entry = _entries(control, request_id)[-1]
        assert (entry["action"], entry["outcome"]) == ("request_refused", "refused")
        assert "not-a-number" not in json.dumps(entry)


def test_reopening_puts_a_failed_request_back_and_records_who_and_why(control):
    request_id = _insert(control, "erasure", EMAIL, status="failed")
    operator = ReopenSubjectRequestOperator(
        task_id="reopen", request_id=request_id, reason="SFTP server back after maintenance"
    )
    assert operator.execute(_context(user="privacy-officer"))["status"] == "verified"
    status, reason = _state(control, request_id)
    assert status == "verified"
    assert reason == "reopened: SFTP server back after maintenance"
    entry = _entries(control, request_id)[-1]
    assert (entry["action"], entry["outcome"]) == ("request_reopened", "ok")
    assert entry["details"] == {
        "reopened_by": "privacy-officer",
        "reason": "SFTP server back after maintenance",
    }


def test_reopening_names_the_run_when_airflow_knows_no_user(control):
    request_id = _insert(control, "erasure", EMAIL, status="failed")
    ReopenSubjectRequestOperator(task_id="r", request_id=request_id, reason="outage over").execute(
        _context(user=None)
    )
    assert _entries(control, request_id)[-1]["details"]["reopened_by"] == "run manual__try1"


@pytest.mark.parametrize("status", ["completed", "refused", "in_progress", "verified"])
def test_only_a_failed_request_can_be_reopened(control, status):
    request_id = _insert(control, "erasure", EMAIL, status=status)
    with pytest.raises(AirflowFailException, match=f"is {status}, not failed"):
        ReopenSubjectRequestOperator(task_id="r", request_id=request_id, reason="why not").execute(
            _context()
        )
    assert _state(control, request_id)[0] == status


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501, "bad\x00byte"])
def test_reopening_needs_a_reason(control, reason):
    request_id = _insert(control, "erasure", EMAIL, status="failed")
    with pytest.raises(AirflowFailException, match="reason"):
        ReopenSubjectRequestOperator(task_id="r", request_id=request_id, reason=reason).execute(
            _context()
        )
    assert _state(control, request_id)[0] == "failed"


def _client_error(code: str, status: int):
    return ClientError(
        {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject"
    )


def _chained():
    try:
        raise psycopg.OperationalError("server closed the connection")
    except psycopg.OperationalError as cause:
        try:
            raise RuntimeError("hook failed") from cause
        except RuntimeError as exc:
            return exc


@pytest.mark.parametrize(
    ("make", "transient"),
    [
        (lambda: StoreError("down"), True),
        (lambda: PurgeError("x", removed=2), True),
        (lambda: PolicyError("bad"), False),
        (lambda: PurgeGuardError("stop"), False),
        (lambda: InvalidIdentity("phone: not a number"), False),
        (lambda: RequestError("no subject request"), False),
        (lambda: psycopg.OperationalError("could not connect"), True),
        (lambda: paramiko.SSHException("banner"), True),
        (lambda: EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
        (lambda: _client_error("SlowDown", 503), True),
        (lambda: _client_error("AccessDenied", 403), False),
        (lambda: ConnectionRefusedError(111, "refused"), True),
        (_chained, True),
        (lambda: ValueError("a bug"), False),
    ],
)
def test_transient_errors_are_told_from_those_that_fail_the_same_way_again(make, transient):
    assert is_transient(make()) is transient
