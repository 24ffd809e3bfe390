"""The ledger resists its own credentials: the runtime role may only append, every entry is
keyed, and tampering by the schema owner (triggers off) is found, naming the right entry."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict

from lethe.control import ledger_chain
from lethe.control.ledger import AuditEntry
from lethe.control.ledger_chain import Head
from lethe.control.migrate import apply_migrations
from lethe.control.roles import RUNTIME_ROLE
from tests.control.tampering import REHASH
from tests.databases import control_hook, use_ledger_key

KEY = b"k" * 32


@pytest.fixture
def runtime(runtime_dsn):
    conn = psycopg.connect(runtime_dsn, autocommit=True)
    yield conn
    conn.close()


@pytest.fixture
def hook(runtime_dsn, monkeypatch):
    use_ledger_key(monkeypatch, KEY)
    made = control_hook(runtime_dsn)
    yield made
    made.close()


def _entry(n: int, **overrides) -> AuditEntry:
    fields = {
        "action": "purge",
        "outcome": "ok",
        "actor": "tests",
        "counts": {"removed": n, "matched": n + 1},
        "details": {"cutoff": "2026-01-01T00:00:00+00:00", "ratio": 0.25, "n": n},
    }
    return AuditEntry(**(fields | overrides))


# --- the runtime role ----------------------------------------------------------------------


def test_the_runtime_login_is_a_member_of_the_runtime_role(runtime):
    (member,) = runtime.execute("SELECT pg_has_role(%s, 'MEMBER')", (RUNTIME_ROLE,)).fetchone()
    (superuser,) = runtime.execute(
        "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert member
    assert not superuser


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE privacy.audit_ledger SET outcome = 'ok'",
        "DELETE FROM privacy.audit_ledger",
        "TRUNCATE privacy.audit_ledger",
        "ALTER TABLE privacy.audit_ledger DISABLE TRIGGER audit_ledger_no_update",
        "ALTER TABLE privacy.audit_ledger DISABLE TRIGGER ALL",
        "DROP TRIGGER audit_ledger_chain ON privacy.audit_ledger",
        "SET session_replication_role = replica",
        "INSERT INTO privacy.audit_ledger (action, outcome, actor, prev_hash, entry_hash)"
        " VALUES ('x', 'ok', 'x', '', '')",
        "CREATE OR REPLACE FUNCTION privacy.audit_ledger_reject_change() RETURNS trigger"
        " LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        "DELETE FROM privacy.schema_migrations",
    ],
)
def test_the_runtime_role_cannot_change_the_ledger(runtime, hook, statement):
    hook.record(_entry(1))
    with pytest.raises(errors.InsufficientPrivilege):
        runtime.execute(statement)


def test_the_runtime_role_does_lethes_work(hook, runtime):
    request_id = hook.register_request(
        right="erasure",
        identities={"email": ["jan@example.nl"]},
        source="tests",
        status="verified",
        verified_by="tests",
        verification_method="id_document",
    )
    assert hook.claim_verified(claimer="tests") == [(request_id, "erasure")]
    hook.add_progress(request_id, "usage_records", "postgres", removed=3)
    hook.transition(request_id, to="completed", reason="done")
    entry_id = hook.record(_entry(3, request_id=request_id))
    assert hook.ledger_entries()[-1]["entry_id"] == entry_id
    (status,) = runtime.execute(
        "SELECT status FROM privacy.subject_requests WHERE request_id = %s", (request_id,)
    ).fetchone()
    assert status == "completed"
    assert hook.check_ledger().ok


# --- the keyed chain -----------------------------------------------------------------------


def test_every_entry_carries_its_hmac_chained_to_the_previous_one(hook, admin):
    ids = [hook.record(_entry(n)) for n in range(3)]
    rows = admin.execute(
        "SELECT entry_id, entry_hmac FROM privacy.audit_ledger ORDER BY entry_id"
    ).fetchall()
    assert [row[0] for row in rows] == ids
    prev = None
    for entry_id, mac in rows:
        content = ledger_chain.stored_content(admin, entry_id)
        assert mac == ledger_chain.entry_hmac(KEY, content, prev)
        prev = mac
    result = hook.check_ledger()
    assert (result.ok, result.entries, result.unkeyed_before) == (True, 3, 0)


def test_a_keyed_entry_cannot_be_backdated_or_renumbered(runtime, hook):
    hook.record(_entry(1))
    with pytest.raises(errors.IntegrityConstraintViolation):
        runtime.execute(
            "INSERT INTO privacy.audit_ledger (action, outcome, actor, entry_id, entry_hmac)"
            " VALUES ('x', 'ok', 'x', 7, repeat('a', 64))"
        )
    with pytest.raises(errors.IntegrityConstraintViolation):
        runtime.execute(
            "INSERT INTO privacy.audit_ledger (action, outcome, actor, recorded_at, entry_hmac)"
            " VALUES ('x', 'ok', 'x', now() - interval '1 day', repeat('a', 64))"
        )


def test_without_a_key_entries_are_written_unkeyed_and_a_keyed_check_reports_them(
    hook, runtime_dsn, monkeypatch, caplog
):
    hook.record(_entry(1))
    monkeypatch.delenv("AIRFLOW_CONN_LETHE_LEDGER_KEY")
    unkeyed = control_hook(runtime_dsn)
    try:
        entry_id = unkeyed.record(_entry(2))
    finally:
        unkeyed.close()
    assert "No ledger key is configured" in caplog.text
    result = hook.check_ledger()
    assert (result.broken_at, result.reason) == (entry_id, "it carries no HMAC after keying began")


def test_a_short_key_is_refused():
    with pytest.raises(ledger_chain.LedgerKeyError, match="at least 32 bytes"):
        ledger_chain.check_key("short")


# --- tampering by the schema owner -----------------------------------------------------------


@pytest.fixture
def six(hook, admin):
    """Six keyed entries, the head published after the sixth; the admin's triggers off."""
    for n in range(6):
        hook.record(_entry(n))
    result = hook.check_ledger()
    assert result.ok
    assert result.head.entry_id == 6
    admin.execute("SET session_replication_role = replica")
    return result.head


def _tamper(admin, *statements: str, rehash: bool = False) -> None:
    for statement in statements:
        admin.execute(statement)
    if rehash:
        admin.execute(REHASH)
        # The database's own check is fooled: whoever may write the table can rehash it.
        assert admin.execute("SELECT privacy.verify_audit_ledger()").fetchone()[0] is None


def test_an_altered_entry_breaks_the_unkeyed_chain(hook, admin, six):
    _tamper(
        admin, """UPDATE privacy.audit_ledger SET counts = '{"removed": 0}' WHERE entry_id = 3"""
    )
    result = hook.check_ledger([six])
    assert (result.broken_at, result.reason) == (3, "its content or link does not match its hash")


def test_an_altered_and_rehashed_entry_breaks_the_keyed_chain(hook, admin, six):
    _tamper(
        admin,
        """UPDATE privacy.audit_ledger SET counts = '{"removed": 0}' WHERE entry_id = 3""",
        rehash=True,
    )
    result = hook.check_ledger([six])
    assert (result.broken_at, result.reason) == (3, "its HMAC does not match (changed or moved)")


def test_an_entry_deleted_in_the_middle_is_named(hook, admin, six):
    _tamper(admin, "DELETE FROM privacy.audit_ledger WHERE entry_id = 3")
    result = hook.check_ledger([six])
    assert (result.broken_at, result.reason) == (3, "entry 3 is missing or out of order")


def test_an_entry_deleted_in_the_middle_renumbered_and_rehashed_is_named(hook, admin, six):
    _tamper(
        admin,
        "DELETE FROM privacy.audit_ledger WHERE entry_id = 3",
        "UPDATE privacy.audit_ledger SET entry_id = entry_id + 1000 WHERE entry_id > 3",
        "UPDATE privacy.audit_ledger SET entry_id = entry_id - 1001 WHERE entry_id > 1000",
        rehash=True,
    )
    result = hook.check_ledger()  # even without the head
    assert (result.broken_at, result.reason) == (3, "its HMAC does not match (changed or moved)")


def test_deleting_the_newest_entries_is_found_by_the_published_head(hook, admin, six):
    _tamper(admin, "DELETE FROM privacy.audit_ledger WHERE entry_id > 4")
    assert hook.check_ledger().ok  # the chains alone cannot tell
    result = hook.check_ledger([six])
    assert result.broken_at == 5
    assert result.reason == "entries up to 6 were published (ledger) but are gone"


def test_reordered_and_rehashed_entries_are_named(hook, admin, six):
    _tamper(
        admin,
        "UPDATE privacy.audit_ledger SET entry_id = -2 WHERE entry_id = 2",
        "UPDATE privacy.audit_ledger SET entry_id = 2 WHERE entry_id = 4",
        "UPDATE privacy.audit_ledger SET entry_id = 4 WHERE entry_id = -2",
        rehash=True,
    )
    result = hook.check_ledger([six])
    assert (result.broken_at, result.reason) == (2, "its HMAC does not match (changed or moved)")


def test_a_rewritten_head_entry_differs_from_its_published_head(hook, admin, six):
    # Entry 6 replaced by one keyed correctly with a stolen key is still not the one published.
    forged = Head(six.entry_id, six.entry_hash, "f" * 64, source="s3://b/k")
    result = hook.check_ledger([forged])
    assert (result.broken_at, result.reason) == (6, "it differs from its published head (s3://b/k)")


def test_the_messages_name_ids_only(hook, admin, six):
    _tamper(
        admin, """UPDATE privacy.audit_ledger SET actor = 'jan@example.nl' WHERE entry_id = 2"""
    )
    assert "jan@example.nl" not in hook.check_ledger([six]).summary()


def test_the_runtime_conninfo_is_not_the_admins(runtime_dsn, scratch_database):
    assert conninfo_to_dict(runtime_dsn)["user"] != conninfo_to_dict(scratch_database)["user"]


def test_the_runtime_role_checks_an_up_to_date_schema_but_cannot_migrate(runtime):
    from lethe.control.migrate import Migration, discover
    from lethe.exceptions import ControlSchemaError

    assert apply_migrations(runtime) == []
    pending = Migration(9999, "pending", "CREATE TABLE privacy.pending (id int)")
    with pytest.raises(ControlSchemaError, match="needs the control schema's owner"):
        apply_migrations(runtime, [*discover(), pending])
