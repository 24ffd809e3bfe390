"""Ledger key rotation (docs/security.md "Rotating the ledger key"): every keyed entry names
its key's id; verification accepts the current key and the retired ones listed in the key
connection's extra, and names an entry made with a key it does not know."""

from __future__ import annotations

import json

import pytest
from psycopg.conninfo import conninfo_to_dict

from lethe.control import ledger_chain
from lethe.control.ledger import AuditEntry
from lethe.ledger.__main__ import main
from tests.control.tampering import REHASH
from tests.databases import control_hook, use_ledger_key

OLD = "old-key-" + "a" * 32
NEW = "new-key-" + "b" * 32
OTHER = "other-key-" + "c" * 32
OLD_ID = ledger_chain.key_id(OLD.encode())
NEW_ID = ledger_chain.key_id(NEW.encode())
OTHER_ID = ledger_chain.key_id(OTHER.encode())


@pytest.fixture
def control_connection(runtime_dsn, monkeypatch):
    """The runtime login, also as connection ``lethe_test_control``."""
    parts = conninfo_to_dict(runtime_dsn)
    monkeypatch.setenv(
        "AIRFLOW_CONN_LETHE_TEST_CONTROL",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": parts["host"],
                "port": int(parts.get("port", 5432)),
                "login": parts["user"],
                "password": parts["password"],
                "schema": parts["dbname"],
            }
        ),
    )
    return runtime_dsn


def _write(runtime_dsn: str, count: int) -> None:
    hook = control_hook(runtime_dsn)
    try:
        for n in range(count):
            hook.record(AuditEntry(action="purge", outcome="ok", actor="tests", counts={"n": n}))
    finally:
        hook.close()


def _check(runtime_dsn: str) -> ledger_chain.LedgerCheck:
    hook = control_hook(runtime_dsn)
    try:
        return hook.check_ledger()
    finally:
        hook.close()


def _verify_cli() -> int:
    return main(["verify", "--conn-id", "lethe_test_control", "--no-heads"])


@pytest.fixture
def rotated(admin, control_connection, monkeypatch):
    """Three entries keyed with OLD, then the key rotated to NEW (OLD retired), three more."""
    runtime_dsn = control_connection
    use_ledger_key(monkeypatch, OLD)
    _write(runtime_dsn, 3)
    use_ledger_key(monkeypatch, NEW, retired=[OLD])
    _write(runtime_dsn, 3)
    return runtime_dsn


def test_each_entry_names_the_key_that_made_its_hmac(rotated, admin):
    rows = admin.execute(
        "SELECT entry_id, entry_key_id FROM privacy.audit_ledger ORDER BY entry_id"
    ).fetchall()
    assert rows == [(1, OLD_ID), (2, OLD_ID), (3, OLD_ID), (4, NEW_ID), (5, NEW_ID), (6, NEW_ID)]
    assert len(OLD_ID) == 8
    assert OLD_ID != NEW_ID


def test_a_ledger_rotated_in_the_middle_verifies_with_the_retired_key(rotated, capsys):
    result = _check(rotated)
    assert result.ok, result.summary()
    assert (result.entries, result.key_ids) == (6, {OLD_ID: 3, NEW_ID: 3})
    assert _verify_cli() == 0
    out = capsys.readouterr().out
    assert "audit ledger holds: 6 entries" in out
    assert f"{OLD_ID} (3), {NEW_ID} (3)" in out


def test_without_the_retired_key_the_first_old_entry_is_named(rotated, monkeypatch, capsys):
    use_ledger_key(monkeypatch, NEW)
    result = _check(rotated)
    assert (result.broken_at, result.reason) == (
        1,
        f"its HMAC was made with key {OLD_ID}, which is neither the current ledger key nor a "
        "retired one",
    )
    assert _verify_cli() == 1
    err = capsys.readouterr().err
    assert f"audit ledger broken at entry 1: its HMAC was made with key {OLD_ID}" in err


def test_an_entry_keyed_with_an_unknown_key_is_named(rotated, monkeypatch, capsys):
    """Someone holding another key appends an entry: verification names it."""
    use_ledger_key(monkeypatch, OTHER, retired=[OLD, NEW])
    _write(rotated, 1)
    use_ledger_key(monkeypatch, NEW, retired=[OLD])
    assert _verify_cli() == 1
    err = capsys.readouterr().err
    assert (
        f"audit ledger broken at entry 7: its HMAC was made with key {OTHER_ID}, which is "
        "neither the current ledger key nor a retired one"
    ) in err


def test_an_entry_tampered_after_the_rotation_is_named(rotated, admin, monkeypatch, capsys):
    admin.execute("SET session_replication_role = replica")
    admin.execute("""UPDATE privacy.audit_ledger SET counts = '{"n": 9}' WHERE entry_id = 5""")
    admin.execute(REHASH)
    result = _check(rotated)
    assert (result.broken_at, result.reason) == (5, "its HMAC does not match (changed or moved)")
    assert _verify_cli() == 1
    assert "audit ledger broken at entry 5: its HMAC does not match" in capsys.readouterr().err


def test_relabelling_an_entry_with_the_retired_keys_id_does_not_help(rotated, admin):
    """The key id is not covered by the HMAC; changing it only moves the check to a key that
    did not make the entry."""
    admin.execute("SET session_replication_role = replica")
    admin.execute("UPDATE privacy.audit_ledger SET entry_key_id = %s WHERE entry_id = 4", (OLD_ID,))
    result = _check(rotated)
    assert (result.broken_at, result.reason) == (4, "its HMAC does not match (changed or moved)")


def test_entries_keyed_before_key_ids_verify_with_any_known_key(rotated, admin):
    """Keyed entries written before migration 0009 carry no key id: every key is tried."""
    admin.execute("SET session_replication_role = replica")
    admin.execute("UPDATE privacy.audit_ledger SET entry_key_id = NULL WHERE entry_id <= 3")
    result = _check(rotated)
    assert result.ok, result.summary()
    assert result.key_ids == {OLD_ID: 3, NEW_ID: 3}


@pytest.mark.parametrize("retired", ["not-a-list", ["short"], [42]])
def test_a_malformed_retired_list_cannot_verify(rotated, monkeypatch, retired, capsys):
    use_ledger_key(monkeypatch, NEW, retired=retired)
    assert _verify_cli() == 2
    err = capsys.readouterr().err
    assert "retired_secrets" in err or "at least 32 bytes" in err


def test_airflow_masks_the_retired_keys_as_secrets():
    from airflow.sdk._shared.secrets_masker import should_hide_value_for_key

    assert should_hide_value_for_key(ledger_chain.RETIRED_EXTRA)
