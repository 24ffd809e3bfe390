"""Subject requests end to end: register_subject_request, subject_requests, the export hand-off,
restrictions seen by retention, and deadlines, with dag.test() on the embedded stores.

Jan de Vries is a contact person of customer 1 (e-mail and phone), with support tickets,
usage records, a support-line recording and delivery data of his customer; lawful-intercept
traffic of his number is in S3. A near twin and a colleague stay untouched throughout.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException, ParamValidationError

from lethe.control.requests import claim_verified
from lethe.exceptions import StoreError
from lethe.operators.rights import SubjectRequestOperator
from tests.dags.conftest import run_dag, task_states

JAN = {"email": "jan.de.vries@bakkerij-klein.nl", "phone": "+31612345678"}
TWIN = {"email": "jan.de.vries@bakkerij-klein.n1", "phone": "+31612345679"}
COLLEAGUE = {"email": "fatima@bakkerij-klein.nl", "phone": "+31687654321"}
NOW = datetime.now(UTC).replace(microsecond=0)
RECENT = NOW - timedelta(days=10)
VERIFICATION = {"verified_by": "Support desk, M. Jansen", "verification_method": "id_document"}


def seed(stores) -> None:
    stores.execute(
        "INSERT INTO telecom.customers VALUES (1, 'KL-000001', now()), (2, 'KL-000002', now())"
    )
    stores.execute(
        "INSERT INTO telecom.contracts VALUES (11, 1, 'mobile', '2023-01-01', NULL),"
        " (21, 2, 'mobile', '2023-01-01', NULL)"
    )
    for contact_id, customer_id, who in [(1, 1, JAN), (2, 2, TWIN), (3, 1, COLLEAGUE)]:
        stores.execute(
            "INSERT INTO telecom.contact_persons VALUES (%s, %s, 'Jan de Vries', %s, %s, now())",
            (contact_id, customer_id, who["phone"], who["email"]),
        )
    stores.execute(
        "INSERT INTO telecom.delivery_addresses VALUES (1, 11, 1, 'Dorpsstraat', '1', '1234 AB',"
        " 'Gouda')"
    )
    stores.execute("SELECT telecom.ensure_usage_partition(%s::date)", (RECENT.date(),))
    for record_id, caller in [(1, JAN["phone"]), (2, TWIN["phone"]), (3, COLLEAGUE["phone"])]:
        stores.execute(
            "INSERT INTO telecom.usage_records (record_id, customer_id, contract_id, service,"
            " caller_number, callee_number, started_at, duration_seconds)"
            " VALUES (%s, 1, 11, 'mobile', %s, '+31201234567', %s, 60)",
            (record_id, caller, RECENT + timedelta(minutes=record_id)),
        )
    for ticket_id, who in [(1, JAN), (2, TWIN), (3, COLLEAGUE)]:
        stores.execute(
            "INSERT INTO telecom.support_tickets (ticket_id, customer_id, contact_email,"
            " contact_phone, subject, body, opened_at)"
            " VALUES (%s, 1, %s, %s, 'Storing', 'x', now())",
            (ticket_id, who["email"], who["phone"]),
        )
    stamp, day = RECENT.strftime("%Y%m%dT%H%M%SZ"), RECENT.strftime("%Y/%m/%d")
    for who, call in [(JAN, "c1"), (TWIN, "c2")]:
        stores.put_file(f"recordings/support/{day}/{stamp}_{who['phone']}_{call}.wav", RECENT)
    stores.s3.put_object(
        Bucket="lethe-lawful-intercept",
        Key=f"traffic/telephony/{RECENT:%Y/%m/%d/%H}.jsonl",
        Body=json.dumps({"from": JAN["phone"]}).encode(),
    )


def register(dagbag, conf: dict, when: datetime):
    return run_dag(dagbag.get_dag("register_subject_request"), when, {**VERIFICATION, **conf})


def request_row(stores, request_id: str) -> dict:
    rows = stores.query(
        "SELECT status, status_reason, answer, identities, identity_types_used"
        " FROM privacy.subject_requests WHERE request_id = %s::uuid",
        (request_id,),
    )
    status, reason, answer, identities, types = rows[0]
    return {
        "status": status,
        "reason": reason,
        "answer": answer,
        "identities": identities,
        "types": types,
    }


def registered_id(run) -> str:
    ti = next(ti for ti in run.get_task_instances() if ti.task_id == "register_request")
    return ti.xcom_pull(task_ids="register_request")["request_id"]


def count(stores, sql: str, params=None) -> int:
    return stores.query(sql, params)[0][0]


@pytest.fixture
def seeded(stores):
    seed(stores)
    return stores


# ------------------------------------------------------------------------------- intake


def test_registration_normalises_identities_and_records_verification(dagbag, seeded):
    run = register(
        dagbag,
        {
            "right": "erasure",
            "emails": ["Jan.de.Vries@Bakkerij-Klein.NL"],
            "phones": ["06 1234 5678"],
            "details": "Please remove everything'); DROP TABLE telecom.customers; --",
        },
        NOW,
    )
    assert run.state == "success", task_states(run)
    row = request_row(seeded, registered_id(run))
    assert row["status"] == "verified"
    assert row["identities"] == {"email": [JAN["email"]], "phone": [JAN["phone"]]}
    assert count(seeded, "SELECT count(*) FROM telecom.customers") == 2


@pytest.mark.parametrize(
    ("conf", "why"),
    [
        ({"right": "erasure"}, "no identity"),
        ({"right": "erasure", "emails": ["jan@"]}, "malformed e-mail"),
        ({"right": "erasure", "phones": ["+31 6 1234 5678 9999 0000"]}, "malformed phone"),
        ({"right": "restriction", "emails": [JAN["email"]]}, "restriction without its request"),
        (
            {"right": "erasure", "emails": [JAN["email"]], "corrections": {"x": {"y": "z"}}},
            "corrections on an erasure",
        ),
        ({"right": "erasure", "emails": [JAN["email"]], "verified_by": "x" * 201}, "over-long"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_invalid_requests_are_refused_and_nothing_is_stored(dagbag, seeded, conf, why):
    before = count(seeded, "SELECT count(*) FROM privacy.subject_requests")
    try:
        run = register(dagbag, conf, NOW + timedelta(seconds=1))
    except ParamValidationError:
        pass  # refused by the form itself
    else:
        assert run.state == "failed", why
    assert count(seeded, "SELECT count(*) FROM privacy.subject_requests") == before


@pytest.mark.parametrize(
    "conf",
    [
        {"right": "forget_me", "emails": [JAN["email"]]},
        {"right": "erasure", "emails": "not a list"},
        {"right": "erasure", "customer_ids": ["12; DELETE"]},
        {"right": "erasure", "emails": [JAN["email"]], "details": "nul\u0000byte"},
        {"right": "erasure", "emails": [JAN["email"]], "related_request_id": "../../x"},
    ],
    ids=["unknown-right", "wrong-type", "sql-in-id", "nul-byte", "path-in-id"],
)
def test_the_form_refuses_bad_input(dagbag, conf):
    with pytest.raises(ParamValidationError):
        register(dagbag, conf, NOW + timedelta(seconds=2))


# ------------------------------------------------------------------------------- rights


def _process(dagbag, when: datetime):
    run = run_dag(dagbag.get_dag("subject_requests"), when)
    assert run.state == "success", task_states(run)
    return run


def test_erasure_across_stores_keeps_legal_obligations_and_refers_client_data(dagbag, seeded):
    request_id = registered_id(
        register(dagbag, {"right": "erasure", "emails": [JAN["email"]]}, NOW + timedelta(minutes=1))
    )
    _process(dagbag, NOW + timedelta(minutes=2))

    row = request_row(seeded, request_id)
    assert row["status"] == "completed"
    assert set(row["types"]) >= {"email", "phone", "customer_id"}  # phone found via links
    outcomes = {c["category"]: c for c in row["answer"]["categories"]}
    assert outcomes["customer_contact_persons"]["outcome"] == "erased"
    assert outcomes["support_tickets"]["outcome"] == "erased"
    assert outcomes["usage_records"]["outcome"] == "erased"
    assert outcomes["support_call_recordings"]["outcome"] == "erased"
    assert outcomes["statutory_retention"]["outcome"] == "kept"  # named neutrally
    assert outcomes["delivery_addresses"]["outcome"] == "referred"
    assert "intercept" not in json.dumps(row["answer"]).lower()

    emails = {e for (e,) in seeded.query("SELECT email FROM telecom.contact_persons")}
    assert emails == {TWIN["email"], COLLEAGUE["email"]}
    callers = {c for (c,) in seeded.query("SELECT caller_number FROM telecom.usage_records")}
    assert callers == {TWIN["phone"], COLLEAGUE["phone"]}
    assert seeded.files("recordings/support")
    assert not [f for f in seeded.files("recordings/support") if JAN["phone"] in f]
    assert seeded.s3.list_objects_v2(Bucket="lethe-lawful-intercept")["KeyCount"] == 1
    assert (
        count(
            seeded,
            "SELECT count(*) FROM privacy.referrals WHERE request_id = %s::uuid"
            " AND category_id = 'delivery_addresses' AND customer_id = '1'",
            (request_id,),
        )
        == 1
    )
    entry = [e for e in seeded.ledger("subject_requests") if str(e["request_id"]) == request_id][-1]
    assert entry["details"]["categories"]["lawful_intercept_traffic"]["reason_code"] == (
        "legal_obligation"
    )
    assert JAN["email"] not in json.dumps(entry, default=str)


def test_a_held_subject_keeps_held_data_with_a_neutral_answer(dagbag, seeded):
    seeded.hold("phone", JAN["phone"], "usage_records")
    request_id = registered_id(
        register(dagbag, {"right": "erasure", "phones": [JAN["phone"]]}, NOW + timedelta(minutes=3))
    )
    _process(dagbag, NOW + timedelta(minutes=4))
    outcomes = {c["category"]: c for c in request_row(seeded, request_id)["answer"]["categories"]}
    assert outcomes["usage_records"]["outcome"] == "kept"
    assert (
        outcomes["usage_records"]["explanation"] == outcomes["statutory_retention"]["explanation"]
    )  # a hold reads exactly like a statutory period
    assert (
        count(
            seeded,
            "SELECT count(*) FROM telecom.usage_records WHERE caller_number = %s",
            (JAN["phone"],),
        )
        == 1
    )
    entry = [e for e in seeded.ledger("subject_requests") if str(e["request_id"]) == request_id][-1]
    assert entry["details"]["categories"]["usage_records"]["reason_code"] == "legal_hold"


def test_objection_erases_only_legitimate_interest_data(dagbag, seeded):
    request_id = registered_id(
        register(
            dagbag, {"right": "objection", "emails": [JAN["email"]]}, NOW + timedelta(minutes=4)
        )
    )
    _process(dagbag, NOW + timedelta(minutes=5))
    outcomes = {
        c["category"]: c["outcome"] for c in request_row(seeded, request_id)["answer"]["categories"]
    }
    # Only the legitimate-interest categories: support-line recordings and web statistics.
    assert outcomes == {"support_call_recordings": "erased", "web_statistics": "nothing_found"}
    assert not [f for f in seeded.files("recordings/support") if JAN["phone"] in f]
    assert (
        count(
            seeded,
            "SELECT count(*) FROM telecom.usage_records WHERE caller_number = %s",
            (JAN["phone"],),
        )
        == 1
    )  # processed to perform the contract: an objection does not reach it
    assert (
        count(
            seeded, "SELECT count(*) FROM telecom.contact_persons WHERE email = %s", (JAN["email"],)
        )
        == 1
    )


def test_rectification_applies_rectifiable_fields_and_opens_a_task_for_the_rest(dagbag, seeded):
    run = register(
        dagbag,
        {
            "right": "rectification",
            "emails": [JAN["email"]],
            "corrections": {
                "customer_contact_persons": {"full_name": "Jan de Vries-Bakker"},
                "usage_records": {"caller_number": "+31600000000"},
            },
        },
        NOW + timedelta(minutes=5),
    )
    request_id = registered_id(run)
    _process(dagbag, NOW + timedelta(minutes=6))
    names = dict(seeded.query("SELECT contact_id, full_name FROM telecom.contact_persons"))
    assert names == {1: "Jan de Vries-Bakker", 2: "Jan de Vries", 3: "Jan de Vries"}
    assert (
        count(
            seeded,
            "SELECT count(*) FROM privacy.manual_tasks WHERE request_id = %s::uuid",
            (request_id,),
        )
        == 1
    )
    entry = [e for e in seeded.ledger("subject_requests") if str(e["request_id"]) == request_id][-1]
    hashes = json.dumps(entry["details"]["value_hashes"])
    assert "Bakker" not in hashes
    assert "Jan de Vries" not in hashes
    assert len(entry["details"]["value_hashes"]) == 1


def test_a_restricted_subject_is_skipped_by_retention_until_the_request_is_decided(dagbag, seeded):
    # Jan's old usage record, past its six months.
    old = datetime(2026, 1, 10, tzinfo=UTC)
    seeded.execute("SELECT telecom.ensure_usage_partition(%s::date)", (old.date(),))
    seeded.execute(
        "INSERT INTO telecom.usage_records (record_id, customer_id, contract_id, service,"
        " caller_number, callee_number, started_at, duration_seconds)"
        " VALUES (99, 1, 11, 'mobile', %s, '+31201234567', %s, 60)",
        (JAN["phone"], old),
    )
    pending = seeded.query(
        "INSERT INTO privacy.subject_requests (request_right, status, identities)"
        " VALUES ('rectification', 'received', %s::jsonb) RETURNING request_id::text",
        (json.dumps({"email": [JAN["email"]]}),),
    )[0][0]
    register(
        dagbag,
        {"right": "restriction", "emails": [JAN["email"]], "related_request_id": pending},
        NOW + timedelta(minutes=7),
    )
    _process(dagbag, NOW + timedelta(minutes=8))
    assert (
        count(
            seeded, "SELECT count(*) FROM privacy.processing_restrictions WHERE lifted_at IS NULL"
        )
        >= 2
    )  # his e-mail and, through the links, his phone number

    retention = dagbag.get_dag("retention_usage_records")
    logical = datetime(2026, 8, 31, tzinfo=ZoneInfo("Europe/Amsterdam"))
    run = run_dag(retention, logical, {"override_guard": True, "override_reason": "test"})
    assert run.state == "success", task_states(run)
    assert task_states(run)["purge_postgres[0]"] == "success"
    assert count(seeded, "SELECT count(*) FROM telecom.usage_records WHERE record_id = 99") == 1

    seeded.execute(
        "UPDATE privacy.subject_requests SET status = 'refused', status_reason = 'unfounded'"
        " WHERE request_id = %s::uuid",
        (pending,),
    )
    from lethe.control.request_records import lift_resolved_restrictions

    conn = psycopg.connect(seeded.db.info.dsn)
    try:
        assert lift_resolved_restrictions(conn)
    finally:
        conn.close()
    run = run_dag(retention, logical, {"override_guard": True, "override_reason": "test"})
    assert run.state == "success", task_states(run)
    assert count(seeded, "SELECT count(*) FROM telecom.usage_records WHERE record_id = 99") == 0


def test_consent_withdrawal_from_an_app_removes_statistics_and_is_recorded(dagbag, seeded):
    visitor = "app-visitor-0001"
    for visit_id in (1, 2):
        seeded.execute(
            "INSERT INTO telecom.web_visits VALUES (%s, %s, '192.0.2.1', 'app', '/', now())",
            (visit_id, visitor if visit_id == 1 else "someone-else-01"),
        )
    # Written by the app's settings screen, straight into the table.
    request_id = seeded.query(
        "INSERT INTO privacy.subject_requests (request_right, status, identities, source,"
        " verified_by, verified_at) VALUES ('withdraw_consent', 'verified', %s::jsonb,"
        " 'app-settings', 'app: signed-in user', now()) RETURNING request_id::text",
        (json.dumps({"visitor_id": [visitor]}),),
    )[0][0]
    _process(dagbag, NOW + timedelta(minutes=9))
    assert request_row(seeded, request_id)["status"] == "completed"
    assert [v for (v,) in seeded.query("SELECT visitor_id FROM telecom.web_visits")] == [
        "someone-else-01"
    ]
    assert (
        count(
            seeded,
            "SELECT count(*) FROM privacy.consent_withdrawals WHERE request_id = %s::uuid",
            (request_id,),
        )
        == 1
    )


def test_a_malformed_row_from_another_tool_is_refused_with_the_reason(dagbag, seeded):
    request_id = seeded.query(
        "INSERT INTO privacy.subject_requests (request_right, status, identities, source,"
        " verified_by, verified_at) VALUES ('erasure', 'verified', %s::jsonb, 'crm',"
        " 'crm', now()) RETURNING request_id::text",
        (json.dumps({"phone": ["06-not-a-number"]}),),
    )[0][0]
    run = run_dag(dagbag.get_dag("subject_requests"), NOW + timedelta(minutes=10))
    row = request_row(seeded, request_id)
    assert row["status"] == "refused"
    assert "phone" in row["reason"]
    assert "not-a-number" not in row["reason"]
    assert task_states(run)["claim_erase"] == "success"
    assert count(seeded, "SELECT count(*) FROM telecom.contact_persons") == 3


def test_access_is_handed_to_the_export_dag_by_request_id(dagbag, seeded):
    request_id = registered_id(
        register(dagbag, {"right": "access", "emails": [JAN["email"]]}, NOW + timedelta(minutes=11))
    )
    run = _process(dagbag, NOW + timedelta(minutes=12))
    assert task_states(run)["export[0]"] == "success"
    from airflow.models import DagRun

    triggered = [
        r
        for r in DagRun.find(dag_id="subject_export")
        if (r.conf or {}).get("request_id") == request_id
    ]
    assert len(triggered) == 1
    assert set(triggered[0].conf) == {"request_id"}  # no identities through Airflow
    export = run_dag(
        dagbag.get_dag("subject_export"), NOW + timedelta(minutes=13), {"request_id": request_id}
    )
    assert export.state == "success", task_states(export)
    key = seeded.query(
        "SELECT export_key FROM privacy.subject_requests WHERE request_id = %s::uuid"
        " AND status = 'completed'",
        (request_id,),
    )
    assert key
    assert key[0][0].endswith(f"{request_id}.zip")


# ------------------------------------------------------------- outages, retries, reopening

SFTP_ENV = "AIRFLOW_CONN_LETHE_RECORDINGS_SFTP"


def unreachable_sftp(monkeypatch) -> str:
    """Point the recordings connection at a closed port; return its real value.

    The SSH hook still makes its three attempts to connect, without its pause of 3 to 5 s
    before each retry.
    """
    from airflow.providers.ssh.hooks import ssh
    from tenacity import wait_none

    monkeypatch.setattr(ssh, "wait_fixed", lambda seconds: wait_none())
    monkeypatch.setattr(ssh, "wait_random", lambda low, high: wait_none())
    real = os.environ[SFTP_ENV]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(
        SFTP_ENV, json.dumps({**json.loads(real), "host": "127.0.0.1", "port": port})
    )
    return real


def claimed_erasure(stores, identities: dict) -> str:
    """An erasure request claimed by a run of subject_requests, as its erase task gets it."""
    request_id = stores.query(
        "INSERT INTO privacy.subject_requests (request_right, status, identities,"
        " verified_by, verified_at) VALUES ('erasure', 'verified', %s::jsonb, 'desk', now())"
        " RETURNING request_id::text",
        (json.dumps(identities),),
    )[0][0]
    conn = psycopg.connect(stores.db.info.dsn)
    try:
        assert claim_verified(conn, claimer="test", rights=["erasure"]) == [(request_id, "erasure")]
    finally:
        conn.close()
    return request_id


def erase_try(request_id: str, try_number: int, max_tries: int = 2):
    """One try of subject_requests' erase task (dag.test() does not wait out retry delays,
    so the tries are run here, with the try number Airflow would give)."""
    ti = SimpleNamespace(
        dag_id="subject_requests",
        task_id="erase",
        run_id="scheduled__outage",
        map_index=0,
        try_number=try_number,
        max_tries=max_tries,
    )
    operator = SubjectRequestOperator(task_id="erase", request_id=request_id, retries=max_tries)
    return operator.execute({"ti": ti})


def outcomes_of(stores, request_id: str) -> dict:
    answer = request_row(stores, request_id)["answer"]
    return {c["category"]: (c["outcome"], c["items"]) for c in answer["categories"]}


def test_an_erasure_cut_short_by_an_outage_is_retried_and_answers_truly(seeded, monkeypatch):
    request_id = claimed_erasure(seeded, {"email": [JAN["email"]]})
    real = unreachable_sftp(monkeypatch)
    with pytest.raises(StoreError):
        erase_try(request_id, 1)  # contact person and ticket erased, then the SFTP store
    assert request_row(seeded, request_id)["status"] == "in_progress"
    retrying = [e for e in seeded.ledger("subject_requests") if str(e["request_id"]) == request_id][
        -1
    ]
    assert (retrying["outcome"], retrying["details"]["try_number"]) == ("retrying", 1)
    progress = retrying["details"]["progress"]
    assert progress["customer_contact_persons"] == {
        "postgres:lethe_telecom_db:telecom.contact_persons": {
            "removed": 1,
            "anonymised": 0,
            "withheld": 0,
            "redacted": 0,
        }
    }
    assert "support_call_recordings" not in progress
    assert JAN["email"] not in json.dumps(retrying, default=str)

    monkeypatch.setenv(SFTP_ENV, real)  # the outage is over: Airflow's next try
    assert erase_try(request_id, 2)["status"] == "completed"
    outcomes = outcomes_of(seeded, request_id)
    # Found by the first try, which erased the contact row that revealed Jan's number:
    # the retry still searches by it, and the answer counts what every try removed.
    assert outcomes["customer_contact_persons"] == ("erased", 1)
    assert outcomes["support_call_recordings"] == ("erased", 1)
    assert outcomes["usage_records"] == ("erased", 1)
    assert request_row(seeded, request_id)["answer"]["result"] == "carried_out"
    assert not [f for f in seeded.files("recordings/support") if JAN["phone"] in f]
    callers = {c for (c,) in seeded.query("SELECT caller_number FROM telecom.usage_records")}
    assert callers == {TWIN["phone"], COLLEAGUE["phone"]}


def test_a_request_failed_for_good_is_reopened_and_then_completed(dagbag, seeded, monkeypatch):
    request_id = claimed_erasure(seeded, {"phone": [JAN["phone"]]})
    real = unreachable_sftp(monkeypatch)
    with pytest.raises(AirflowFailException):
        erase_try(request_id, 3)  # the last try
    row = request_row(seeded, request_id)
    assert row["status"] == "failed"
    assert "lethe_recordings_sftp" in row["reason"]
    monkeypatch.setenv(SFTP_ENV, real)

    reopen = dagbag.get_dag("reopen_subject_request")
    reason = "SFTP server back after maintenance"
    run = run_dag(reopen, NOW + timedelta(minutes=30), {"request_id": request_id, "reason": reason})
    assert run.state == "success", task_states(run)
    assert request_row(seeded, request_id)["status"] == "verified"
    [entry] = [
        e for e in seeded.ledger("reopen_subject_request") if str(e["request_id"]) == request_id
    ]
    assert entry["action"] == "request_reopened"
    assert entry["details"] == {"reopened_by": "dag_test", "reason": reason}

    _process(dagbag, NOW + timedelta(minutes=31))
    assert request_row(seeded, request_id)["status"] == "completed"
    outcomes = outcomes_of(seeded, request_id)
    assert outcomes["customer_contact_persons"] == ("erased", 1)  # by the failed try
    assert outcomes["support_call_recordings"] == ("erased", 1)  # after reopening
    again = run_dag(
        reopen, NOW + timedelta(minutes=32), {"request_id": request_id, "reason": reason}
    )
    assert again.state == "failed"  # completed now: nothing to reopen
    assert request_row(seeded, request_id)["status"] == "completed"


def test_a_malformed_access_request_is_refused_before_the_hand_over(dagbag, seeded):
    from airflow.models import DagRun

    request_id = seeded.query(
        "INSERT INTO privacy.subject_requests (request_right, status, identities, source,"
        " verified_by, verified_at) VALUES ('access', 'verified', %s::jsonb, 'crm',"
        " 'crm', now()) RETURNING request_id::text",
        (json.dumps({"phone": ["06-not-a-number"]}),),
    )[0][0]
    run = run_dag(dagbag.get_dag("subject_requests"), NOW + timedelta(minutes=33))
    assert task_states(run)["export[0]"] == "failed"
    row = request_row(seeded, request_id)
    assert row["status"] == "refused"
    assert "phone" in row["reason"]
    assert "not-a-number" not in row["reason"]
    [entry] = [e for e in seeded.ledger("subject_requests") if str(e["request_id"]) == request_id][
        -1:
    ]
    assert (entry["action"], entry["outcome"]) == ("request_refused", "refused")
    assert not [
        r
        for r in DagRun.find(dag_id="subject_export")
        if (r.conf or {}).get("request_id") == request_id
    ]


def test_an_erasure_that_finds_nothing_is_answered_nothing_found(seeded):
    request_id = claimed_erasure(seeded, {"email": ["nobody@bakkerij-klein.nl"]})
    assert erase_try(request_id, 1)["result"] == "nothing_found"
    row = request_row(seeded, request_id)
    assert (row["status"], row["reason"]) == ("completed", "nothing found")
    assert row["answer"]["result"] == "nothing_found"
    assert "erased" not in {outcome for outcome, _ in outcomes_of(seeded, request_id).values()}
    entry = [e for e in seeded.ledger("subject_requests") if str(e["request_id"]) == request_id][-1]
    assert entry["outcome"] == "nothing_found"


# ---------------------------------------------------------------------- claims, deadlines


def test_overlapping_claims_take_each_request_once(seeded, stack):
    ids = [
        seeded.query(
            "INSERT INTO privacy.subject_requests (request_right, status, identities,"
            " verified_by, verified_at) VALUES ('erasure', 'verified', %s::jsonb, 't', now())"
            " RETURNING request_id::text",
            (json.dumps({"email": [f"p{n}@example.nl"]}),),
        )[0][0]
        for n in range(30)
    ]
    claimed: list[list[str]] = []

    def claim(name: str) -> None:
        conn = psycopg.connect(stack.postgres_dsn)
        try:
            for _ in range(5):
                claimed.append([r for r, _ in claim_verified(conn, claimer=name, limit=4)])
        finally:
            conn.close()

    threads = [threading.Thread(target=claim, args=(f"run-{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [r for batch in claimed for r in batch]
    assert sorted(everything) == sorted(ids)  # all claimed, none twice


def test_deadlines_fail_when_overdue_and_an_extension_with_a_reason_helps(dagbag, seeded):
    request_id = seeded.query(
        "INSERT INTO privacy.subject_requests (request_right, status, identities, received_at,"
        " due_at) VALUES ('access', 'received', %s::jsonb, now() - interval '40 days',"
        " now() - interval '9 days') RETURNING request_id::text",
        (json.dumps({"email": [JAN["email"]]}),),
    )[0][0]
    deadlines = dagbag.get_dag("subject_request_deadlines")
    failed = run_dag(deadlines, NOW + timedelta(hours=1))
    assert failed.state == "failed"
    assert [
        e for e in seeded.ledger("subject_request_deadlines") if e["action"] == "deadline_alert"
    ]

    no_reason = run_dag(
        dagbag.get_dag("extend_subject_request_deadline"),
        NOW + timedelta(hours=2),
        {"request_id": request_id, "months": 2, "reason": "      "},  # blank: refused
    )
    assert no_reason.state == "failed"
    extended = run_dag(
        dagbag.get_dag("extend_subject_request_deadline"),
        NOW + timedelta(hours=3),
        {"request_id": request_id, "months": 2, "reason": "Complex request over many systems"},
    )
    assert extended.state == "success", task_states(extended)
    passed = run_dag(deadlines, NOW + timedelta(hours=4))
    assert passed.state == "success", task_states(passed)
