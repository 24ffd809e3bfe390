"""The privacy control schema: versioned migrations and the append-only, chained ledger."""

from __future__ import annotations

import re
import threading

import psycopg
import pytest

from lethe.control import ledger
from lethe.control.migrate import Migration, apply_migrations, discover
from lethe.exceptions import ControlSchemaError


@pytest.fixture
def control_db(scratch_database):
    conn = psycopg.connect(scratch_database)
    apply_migrations(conn)
    yield conn
    conn.close()


def _tables(conn) -> set[str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'privacy'"
        )
        return {name for (name,) in cur.fetchall()}


class TestMigrations:
    def test_creates_every_control_table(self, control_db):
        assert _tables(control_db) >= {
            "schema_migrations",
            "subject_requests",
            "legal_holds",
            "processing_restrictions",
            "audit_ledger",
            "request_progress",
        }

    def test_unused_customer_retention_settings_are_dropped(self, scratch_database):
        """0005 drops the table 0001 made (nothing read it), on a schema that has it."""
        conn = psycopg.connect(scratch_database)
        try:
            before = [m for m in discover() if m.version < 5]
            apply_migrations(conn, before)
            assert "customer_retention_settings" in _tables(conn)
            conn.rollback()
            assert apply_migrations(conn) == [m.version for m in discover() if m.version >= 5]
            assert "customer_retention_settings" not in _tables(conn)
        finally:
            conn.close()

    def test_second_run_applies_nothing(self, control_db):
        assert apply_migrations(control_db) == []
        with control_db.cursor() as cur:
            cur.execute("SELECT version FROM privacy.schema_migrations ORDER BY version")
            assert [v for (v,) in cur.fetchall()] == [m.version for m in discover()]

    def test_concurrent_runs_apply_each_version_once(self, scratch_database):
        results: list[list[int]] = []
        errors: list[BaseException] = []

        def run() -> None:
            conn = psycopg.connect(scratch_database)
            try:
                results.append(apply_migrations(conn))
            except BaseException as exc:  # surfaced below
                errors.append(exc)
            finally:
                conn.close()

        threads = [threading.Thread(target=run) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert sorted(len(r) for r in results) == [0, 0, len(discover())]

    def test_edited_migration_is_refused(self, control_db):
        first, *later = discover()
        edited = Migration(first.version, first.name, first.sql + "\n-- edited\n")
        with pytest.raises(ControlSchemaError, match=r"0001_control_schema was changed"):
            apply_migrations(control_db, [edited, *later])

    def test_newer_database_is_refused(self, control_db):
        with pytest.raises(ControlSchemaError, match=r"newer than this code"):
            apply_migrations(control_db, [])

    def test_failed_migration_leaves_nothing_half_applied(self, control_db):
        broken = Migration(9999, "broken", "CREATE TABLE privacy.half (x int); SELECT 1/0;")
        with pytest.raises(psycopg.errors.DivisionByZero):
            apply_migrations(control_db, [*discover(), broken])
        assert "half" not in _tables(control_db)
        with control_db.cursor() as cur:
            cur.execute("SELECT count(*) FROM privacy.schema_migrations WHERE version = 9999")
            assert cur.fetchone() == (0,)

    def test_misnamed_file_is_refused(self, tmp_path):
        (tmp_path / "1_first.sql").write_text("SELECT 1")
        with pytest.raises(ControlSchemaError, match=r"1_first.sql: migration files are named"):
            discover(tmp_path)

    def test_restriction_and_hold_shapes_are_checked(self, control_db):
        with control_db.cursor() as cur, pytest.raises(psycopg.errors.CheckViolation):
            cur.execute(
                "INSERT INTO privacy.legal_holds (identity_type, reason, placed_by)"
                " VALUES ('email', 'case 12', 'legal')"
            )
        control_db.rollback()


def _entry(**overrides) -> ledger.AuditEntry:
    values = {
        "action": "purge",
        "outcome": "ok",
        "actor": "retention_usage_records.purge",
        "policy_family": "usage_records",
        "category_id": "usage_records",
        "counts": {"matched": 3, "removed": 3},
        "details": {"cutoff": "2026-05-28T00:00:00+02:00"},
    }
    return ledger.AuditEntry(**(values | overrides))


class TestAuditLedger:
    def test_entries_are_chained_in_order(self, control_db):
        ids = [ledger.record(control_db, _entry(counts={"removed": n})) for n in range(3)]
        assert ids == [1, 2, 3]
        with control_db.cursor() as cur:
            cur.execute("SELECT prev_hash, entry_hash FROM privacy.audit_ledger ORDER BY entry_id")
            rows = cur.fetchall()
        assert rows[0][0] == "0" * 64
        assert rows[1][0] == rows[0][1]
        assert rows[2][0] == rows[1][1]
        ledger.verify(control_db)

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE privacy.audit_ledger SET counts = '{}'",
            "DELETE FROM privacy.audit_ledger",
            "TRUNCATE privacy.audit_ledger",
        ],
    )
    def test_changes_are_refused(self, control_db, statement):
        ledger.record(control_db, _entry())
        with control_db.cursor() as cur, pytest.raises(psycopg.errors.InsufficientPrivilege):
            cur.execute(statement)
        control_db.rollback()

    def test_tampering_behind_the_triggers_is_detected(self, control_db):
        for n in range(3):
            ledger.record(control_db, _entry(counts={"removed": n}))
        with control_db.cursor() as cur:
            cur.execute("ALTER TABLE privacy.audit_ledger DISABLE TRIGGER audit_ledger_no_update")
            cur.execute(
                "UPDATE privacy.audit_ledger SET counts = '{\"removed\": 0}' WHERE entry_id = 2"
            )
        control_db.commit()
        with pytest.raises(ControlSchemaError, match=r"broken at entry 2"):
            ledger.verify(control_db)

    def test_removed_entry_is_detected(self, control_db):
        for n in range(3):
            ledger.record(control_db, _entry(counts={"removed": n}))
        with control_db.cursor() as cur:
            cur.execute("ALTER TABLE privacy.audit_ledger DISABLE TRIGGER audit_ledger_no_update")
            cur.execute("DELETE FROM privacy.audit_ledger WHERE entry_id = 2")
        control_db.commit()
        with pytest.raises(ControlSchemaError, match=r"broken at entry 3"):
            ledger.verify(control_db)

    def test_concurrent_writers_form_one_chain(self, scratch_database, control_db):
        def write(n: int) -> None:
            conn = psycopg.connect(scratch_database)
            try:
                for i in range(10):
                    ledger.record(conn, _entry(counts={"writer": n, "i": i}))
            finally:
                conn.close()

        threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with control_db.cursor() as cur:
            cur.execute("SELECT count(*), max(entry_id) FROM privacy.audit_ledger")
            assert cur.fetchone() == (40, 40)
        ledger.verify(control_db)

    def test_counts_must_be_numbers(self):
        with pytest.raises(ValueError, match=r"'removed' must be an integer"):
            _entry(counts={"removed": "jan@example.nl"})


def test_identity_types_match_the_policy_vocabulary(control_db):
    from lethe.policy import Identity

    with control_db.cursor() as cur:
        cur.execute(
            "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c"
            " JOIN pg_type t ON t.oid = c.contypid WHERE t.typname = 'identity_type'"
        )
        (definition,) = cur.fetchone()
    assert set(re.findall(r"'([a-z_]+)'::text", definition)) == {i.value for i in Identity}
