"""``python -m lethe.ledger verify`` and the published heads: put-if-absent, every version
read, a truncated tail found; exit codes 0 (holds), 1 (broken, first entry named), 2."""

from __future__ import annotations

import json
import uuid
from datetime import date

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from lethe.connections import OBJECT_STORE
from lethe.control import ledger_heads
from lethe.control.ledger import AuditEntry
from lethe.control.migrate import apply_migrations
from lethe.control.roles import drop_login, ensure_runtime_login
from lethe.ledger.__main__ import main
from tests.databases import control_hook, use_ledger_key

KEY = "0123456789abcdef" * 4


@pytest.fixture
def s3(stack):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=OBJECT_STORE).get_conn()


@pytest.fixture
def bucket(s3):
    name = f"heads-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture
def ledger(scratch_database, monkeypatch):
    """A control schema of its own with four keyed entries, written by a runtime login; its
    connection is ``lethe_test_control``. Yields (hook, admin connection)."""
    admin = psycopg.connect(scratch_database, autocommit=True)
    apply_migrations(admin)
    admin.autocommit = True
    login = f"lethe_test_{uuid.uuid4().hex[:8]}"
    ensure_runtime_login(admin, login, "pw")
    admin.autocommit = True
    parts = conninfo_to_dict(scratch_database)
    runtime = {
        "conn_type": "postgres",
        "host": parts["host"],
        "port": int(parts.get("port", 5432)),
        "login": login,
        "password": "pw",
        "schema": parts["dbname"],
    }
    monkeypatch.setenv("AIRFLOW_CONN_LETHE_TEST_CONTROL", json.dumps(runtime))
    use_ledger_key(monkeypatch, KEY)
    hook = control_hook(
        f"postgresql://{login}:pw@{parts['host']}:{runtime['port']}/{parts['dbname']}"
    )
    for n in range(4):
        hook.record(AuditEntry(action="purge", outcome="ok", actor="tests", counts={"removed": n}))
    yield hook, admin
    hook.close()
    admin.autocommit = False
    drop_login(admin, login)
    admin.close()


def _verify(bucket: str, *extra: str) -> int:
    return main(["verify", "--conn-id", "lethe_test_control", "--bucket", bucket, *extra])


def test_a_head_is_published_once_and_never_overwritten(s3, bucket, ledger):
    hook, _ = ledger
    head = hook.check_ledger().head
    day = date(2026, 11, 30)
    assert ledger_heads.publish(s3, bucket, day, head, run_id="r1") is True
    assert ledger_heads.publish(s3, bucket, day, head, run_id="r2") is False
    body = json.loads(
        s3.get_object(Bucket=bucket, Key="ledger-heads/2026/11/30.json")["Body"].read()
    )
    assert (body["entry_id"], body["entry_hmac"], body["run_id"]) == (4, head.entry_hmac, "r1")
    versions = s3.list_object_versions(Bucket=bucket, Prefix="ledger-heads/")["Versions"]
    assert len(versions) == 1


def test_verify_passes_on_a_whole_ledger(s3, bucket, ledger, capsys):
    hook, _ = ledger
    ledger_heads.publish(s3, bucket, date(2026, 11, 30), hook.check_ledger().head)
    assert _verify(bucket) == 0
    out = capsys.readouterr().out
    assert "4 entries (head entry 4)" in out
    assert "1 published head(s) match" in out


def test_verify_names_the_first_entry_a_truncation_removed(s3, bucket, ledger, capsys):
    hook, admin = ledger
    ledger_heads.publish(s3, bucket, date(2026, 11, 29), hook.check_ledger().head)
    admin.execute("SET session_replication_role = replica")
    admin.execute("DELETE FROM privacy.audit_ledger WHERE entry_id > 2")
    assert _verify(bucket, "--no-heads") == 0  # the chains alone cannot tell
    capsys.readouterr()
    assert _verify(bucket) == 1
    err = capsys.readouterr().err
    assert "audit ledger broken at entry 3: entries up to 4 were published" in err
    assert "s3://" in err


def test_an_overwritten_head_is_still_read_in_its_first_version(s3, bucket, ledger, capsys):
    hook, admin = ledger
    head = hook.check_ledger().head
    ledger_heads.publish(s3, bucket, date(2026, 11, 28), head)
    admin.execute("SET session_replication_role = replica")
    admin.execute("DELETE FROM privacy.audit_ledger WHERE entry_id = 4")
    # Whoever holds the S3 credentials overwrites the head to match the shortened ledger.
    forged = hook.check_ledger().head
    s3.put_object(
        Bucket=bucket,
        Key=ledger_heads.head_key(date(2026, 11, 28)),
        Body=json.dumps(forged.as_json()).encode(),
    )
    assert _verify(bucket) == 1
    assert "broken at entry 4" in capsys.readouterr().err


def test_verify_without_a_key_cannot_check(bucket, ledger, monkeypatch, capsys):
    monkeypatch.delenv("AIRFLOW_CONN_LETHE_LEDGER_KEY")
    assert _verify(bucket) == 2
    assert "no ledger key" in capsys.readouterr().err
