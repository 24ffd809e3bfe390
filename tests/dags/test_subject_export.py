"""subject_export end to end: dag.test() collects one subject from every store and delivers it.

A subject (Jan) is a contact person of customer 1 with data in the telecom tables, on the
SFTP server (support-line recordings) and, as lawful-intercept traffic, in S3. Around
him: a near twin whose e-mail and phone differ by one character, and a colleague at the
same customer. Nothing of theirs may reach Jan's export; lawful-intercept data never does,
nor data under a legal hold, and nothing in the package says they exist.
"""

from __future__ import annotations

import hashlib
import io
import json
import urllib.request
import zipfile
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from airflow.sdk.exceptions import ParamValidationError

from tests.dags.conftest import run_dag, run_metadata, task_states

JAN = {"email": "jan.de.vries@bakkerij-klein.nl", "phone": "+31612345678"}
TWIN = {"email": "jan.de.vries@bakkerij-klein.n1", "phone": "+31612345679"}
COLLEAGUE = {"email": "fatima@bakkerij-klein.nl", "phone": "+31687654321"}
NOW = datetime.now(UTC)
RECENT = NOW - timedelta(days=10)


def seed(stores) -> None:
    stores.execute(
        "INSERT INTO telecom.customers VALUES (1, 'KL-000001', now() - interval '3 years')"
    )
    stores.execute(
        "INSERT INTO telecom.customers VALUES (2, 'KL-000002', now() - interval '3 years')"
    )
    stores.execute(
        "INSERT INTO telecom.contracts VALUES (11, 1, 'mobile', '2023-01-01', NULL),"
        " (21, 2, 'mobile', '2023-01-01', NULL)"
    )
    people = [
        (1, 1, "Jan de Vries", JAN),
        (2, 2, "Jan de Vries", TWIN),
        (3, 1, "Fatima El Amrani", COLLEAGUE),
    ]
    for contact_id, customer_id, name, who in people:
        stores.execute(
            "INSERT INTO telecom.contact_persons VALUES (%s, %s, %s, %s, %s, now())",
            (contact_id, customer_id, name, who["phone"], who["email"]),
        )
    # Usage records: Jan calls and is called; the twin and the colleague call each other.
    stores.execute("SELECT telecom.ensure_usage_partition(%s::date)", (RECENT.date(),))
    calls = [
        (1, JAN["phone"], "+31201234567"),
        (2, "+31201234567", JAN["phone"]),
        (3, JAN["phone"], COLLEAGUE["phone"]),
        (4, TWIN["phone"], COLLEAGUE["phone"]),
        (5, COLLEAGUE["phone"], "+31201234567"),
    ]
    for record_id, caller, callee in calls:
        stores.execute(
            "INSERT INTO telecom.usage_records (record_id, customer_id, contract_id, service,"
            " caller_number, callee_number, started_at, duration_seconds)"
            " VALUES (%s, 1, 11, 'mobile', %s, %s, %s, 60)",
            (record_id, caller, callee, RECENT + timedelta(minutes=record_id)),
        )
    for ticket_id, who in [(1, JAN), (2, TWIN), (3, COLLEAGUE)]:
        stores.execute(
            "INSERT INTO telecom.support_tickets (ticket_id, customer_id, contact_email,"
            " contact_phone, subject, body, opened_at) VALUES (%s, 1, %s, %s, 'Storing',"
            " 'Geen verbinding', now())",
            (ticket_id, who["email"], who["phone"]),
        )
    stamp = RECENT.strftime("%Y%m%dT%H%M%SZ")
    day = RECENT.strftime("%Y/%m/%d")
    for caller, call_id in [(JAN["phone"], "c1"), (TWIN["phone"], "c2")]:
        stores.put_file(
            f"recordings/support/{day}/{stamp}_{caller}_{call_id}.wav",
            RECENT,
            b"RIFF" + call_id.encode() * 50,
        )
    hour = RECENT.strftime("%Y/%m/%d/%H")
    stores.s3.put_object(
        Bucket="lethe-lawful-intercept",
        Key=f"traffic/telephony/{hour}.jsonl",
        Body=json.dumps({"from": JAN["phone"], "to": "+31201234567"}).encode(),
    )


@pytest.fixture(scope="module")
def exported(prepared_stores, dagbag):
    """One access export of Jan (by e-mail only: his phone comes through the links)."""
    stores = prepared_stores
    stores.reset()
    seed(stores)
    stores.hold("email", JAN["email"], "support_tickets")
    dag = dagbag.get_dag("subject_export")
    run = run_dag(dag, NOW, {"emails": [JAN["email"].upper()], "link_expiry_days": 2})
    ti = next(ti for ti in run.get_task_instances() if ti.task_id == "export_subject_data")
    summary = ti.xcom_pull(task_ids="export_subject_data")
    row = stores.query(
        "SELECT request_id::text, status, export_key, export_sha256, export_link,"
        " export_expires_at, identity_types_used FROM privacy.subject_requests"
        " WHERE request_id = %s::uuid",
        (summary["request_id"],),
    )[0]
    body = stores.s3.get_object(Bucket="lethe-exports", Key=row[2])["Body"].read()
    return {"run": run, "summary": summary, "request": row, "zip": body, "stores": stores}


def test_the_run_succeeds_and_the_xcom_holds_no_personal_data(exported):
    assert exported["run"].state == "success", task_states(exported["run"])
    text = json.dumps(exported["summary"])
    for value in (*JAN.values(), "jan", "bakkerij"):
        assert value not in text.lower()
    assert set(exported["summary"]) >= {"request_id", "key", "expires_at", "rows", "files"}


def test_handover_is_recorded_on_the_request_and_the_object_is_encrypted_at_rest(exported):
    request_id, status, key, sha256, link, _, types_used = exported["request"]
    assert status == "completed"
    assert key == f"exports/{NOW:%Y/%m/%d}/{request_id}.zip"
    assert sha256 == hashlib.sha256(exported["zip"]).hexdigest()
    head = exported["stores"].s3.head_object(Bucket="lethe-exports", Key=key)
    assert head["ServerSideEncryption"] == "AES256"
    # The package itself is a plain ZIP (no member is password-protected), as the docs say.
    with _archive(exported) as archive:
        assert not any(info.flag_bits & 0x1 for info in archive.infolist())
    assert "phone" in types_used  # resolved from the e-mail through the contact's row
    with urllib.request.urlopen(link, timeout=10) as response:
        assert hashlib.sha256(response.read()).hexdigest() == sha256


def test_the_recorded_expiry_is_the_signed_links_expiry(exported):
    """What the request, the ledger and the XCom say equals what the link was signed for
    (SigV4: X-Amz-Date + X-Amz-Expires), however long the export took. (moto, the test
    server, does not enforce the expiry; S3 and MinIO do.)"""
    request_id, _, _, _, link, expires, _ = exported["request"]
    query = parse_qs(urlsplit(link).query)
    assert query["X-Amz-Expires"] == [str(2 * 86400)]
    signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert expires == signed + timedelta(days=2)
    assert exported["summary"]["expires_at"] == expires.isoformat()
    (entry,) = [
        e for e in exported["stores"].ledger("subject_export") if str(e["request_id"]) == request_id
    ]
    assert entry["details"]["expires_at"] == expires.isoformat()
    # Signed while the run ran: after it started, before it ended.
    run = exported["run"]
    assert run.start_date.replace(microsecond=0) <= signed <= run.end_date


def test_the_forms_identities_leave_airflows_metadata(exported):
    """The e-mail typed into the form is on the request row only: the run's conf is
    redacted when it ends, and no rendered template field holds it."""
    run = exported["run"]
    metadata = run_metadata(run)
    conf, rendered = metadata["conf"], metadata["rendered"]
    assert conf["emails"] == []
    assert conf["redacted_fields"] == ["emails"]
    assert conf["link_expiry_days"] == 2  # non-identifying fields stay
    assert rendered
    for text in (json.dumps(conf), json.dumps(rendered, default=str)):
        assert "jan" not in text.lower()
    ((identities, intake_run),) = exported["stores"].query(
        "SELECT identities, intake_run_id FROM privacy.subject_requests"
        " WHERE request_id = %s::uuid",
        (exported["request"][0],),
    )
    assert identities == {"email": [JAN["email"]]}
    assert intake_run == run.run_id


def test_the_ledger_proves_delivery_without_the_link_or_personal_data(exported):
    request_id = exported["request"][0]
    (entry,) = [
        e for e in exported["stores"].ledger("subject_export") if str(e["request_id"]) == request_id
    ]
    assert entry["action"] == "export"
    details = entry["details"]
    assert details["sha256"] == exported["request"][3]
    assert "X-Amz-Signature" not in json.dumps(details)
    assert details["link_sha256"] == hashlib.sha256(exported["request"][4].encode()).hexdigest()
    assert JAN["email"] not in json.dumps(entry, default=str)


def _archive(exported) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(exported["zip"]))


def test_checksums_of_every_member_verify(exported):
    with _archive(exported) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        for member in manifest["members"]:
            assert hashlib.sha256(archive.read(member["name"])).hexdigest() == member["sha256"]


def test_every_category_of_jan_is_complete(exported):
    with _archive(exported) as archive:
        usage = json.loads(archive.read("data/usage_records.json"))
        contacts = json.loads(archive.read("data/customer_contact_persons.json"))
        names = archive.namelist()
    record_ids = {row["record_id"] for s in usage["sources"] for row in s["rows"]}
    assert record_ids == {1, 2, 3}
    assert [r["contact_id"] for s in contacts["sources"] for r in s["rows"]] == [1]
    recordings = [n for n in names if n.startswith("recordings/support_call_recordings/")]
    assert len(recordings) == 1
    assert recordings[0].endswith(f"_{JAN['phone']}_c1.wav")


def test_nothing_of_the_twin_or_the_colleagues_other_data_leaks(exported):
    everything = b""
    with _archive(exported) as archive:
        for name in archive.namelist():
            everything += archive.read(name)
    text = everything.decode("utf-8", errors="replace")
    assert TWIN["email"] not in text
    assert TWIN["phone"] not in text
    assert COLLEAGUE["email"] not in text
    # The colleague's number appears once: as the other party of Jan's call (record 3).
    usage = json.loads(_archive(exported).read("data/usage_records.json"))
    assert [r for s in usage["sources"] for r in s["rows"] if COLLEAGUE["phone"] in r.values()] == [
        r for s in usage["sources"] for r in s["rows"] if r["record_id"] == 3
    ]


def test_held_and_lawful_intercept_data_never_appear_nor_are_revealed(exported):
    with _archive(exported) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
        tickets = json.loads(archive.read("data/support_tickets.json"))
        summary = archive.read("README.md").decode()
    assert not [n for n in names if "lawful" in n or "intercept" in n]
    assert "lawful_intercept_traffic" not in {c["id"] for c in manifest["categories"]}
    assert [r for s in tickets["sources"] for r in s["rows"]] == []  # held: looks empty
    for revealing in ("legal hold", "withheld", "intercept"):
        assert revealing not in json.dumps(manifest).lower()
    assert "intercept" not in summary.lower()


def test_portability_leaves_out_legitimate_interest_and_legal_obligation(exported, dagbag):
    stores = exported["stores"]
    run = run_dag(
        dagbag.get_dag("subject_export"),
        NOW + timedelta(seconds=1),
        {"phones": [JAN["phone"]], "right": "portability", "format": "csv"},
    )
    assert run.state == "success", task_states(run)
    summary = next(ti for ti in run.get_task_instances()).xcom_pull(task_ids="export_subject_data")
    key = summary["key"]
    body = stores.s3.get_object(Bucket="lethe-exports", Key=key)["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        usage_csv = archive.read("data/usage_records.csv").decode()
    categories = {c["id"] for c in manifest["categories"]}
    assert "usage_records" in categories  # contract
    assert "support_call_recordings" not in categories  # legitimate interest
    assert "web_statistics" not in categories  # legitimate interest
    assert "lawful_intercept_traffic" not in categories  # legal obligation
    assert usage_csv.splitlines()[0].startswith("source,record_id")
    assert len(usage_csv.strip().splitlines()) == 1 + 3


def test_hostile_identities_are_refused_and_nothing_is_registered(prepared_stores, dagbag):
    stores = prepared_stores
    before = stores.query("SELECT count(*) FROM privacy.subject_requests")[0][0]
    run = run_dag(
        dagbag.get_dag("subject_export"),
        NOW + timedelta(seconds=2),
        {"emails": ["jan'--@x.nl; DROP TABLE telecom.customers"]},
    )
    assert run.state == "failed"
    assert stores.query("SELECT count(*) FROM privacy.subject_requests")[0][0] == before
    assert stores.query("SELECT to_regclass('telecom.customers') IS NOT NULL") == [(True,)]


@pytest.mark.parametrize(
    "conf",
    [
        {"phones": ["+31 6 12 34 56 78; rm -rf /"]},
        {"right": "erasure"},
        {"format": "xml"},
        {"link_expiry_days": 30},
        {"request_id": "../../etc/passwd"},
        {"customer_ids": [12]},
    ],
    ids=["phone-pattern", "right", "format", "expiry", "request-id", "wrong-type"],
)
def test_bad_form_input_is_refused_by_the_form(dagbag, conf):
    with pytest.raises(ParamValidationError):
        run_dag(dagbag.get_dag("subject_export"), NOW + timedelta(seconds=3), conf)


def test_request_id_and_identities_together_are_refused(prepared_stores, dagbag):
    run = run_dag(
        dagbag.get_dag("subject_export"),
        NOW + timedelta(seconds=4),
        {"request_id": "00000000-0000-0000-0000-000000000000", "emails": [JAN["email"]]},
    )
    assert run.state == "failed"
