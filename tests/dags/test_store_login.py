"""The embedded stack's telecom connection is a store login, not a superuser: it may read,
update and delete the telecom tables and drop expired month partitions (a member of
``lethe_store``, which owns the partitioned tables), and nothing more; a retention run that
drops partitions works through it (docs/security.md "Roles")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from psycopg import errors

from lethe.connections import TELECOM_DB
from lethe.stores.postgres.roles import STORE_ROLE
from tests.dags.conftest import run_dag, task_states


@pytest.fixture
def telecom(stores):
    """A psycopg connection through the connection ``lethe_telecom_db`` (autocommit)."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    conn = PostgresHook(postgres_conn_id=TELECOM_DB).get_conn()
    conn.autocommit = True
    yield conn
    conn.close()


def _one(conn, statement: str, params=None):
    with conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchone()


def test_the_telecom_connection_is_no_superuser_but_a_member_of_the_store_role(telecom, stack):
    login, superuser, createrole, createdb, member = _one(
        telecom,
        "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, pg_has_role(%s, 'MEMBER')"
        " FROM pg_roles WHERE rolname = current_user",
        (STORE_ROLE,),
    )
    assert login == stack.store_login
    assert (superuser, createrole, createdb, member) == (False, False, False, True)


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO telecom.customers (customer_id, customer_ref, created_at)"
        " VALUES (99, 'x', now())",
        "TRUNCATE telecom.support_tickets",
        "DROP TABLE telecom.support_tickets",
        "CREATE TABLE telecom.probe (id int)",
        "ALTER TABLE telecom.customers ADD COLUMN probe int",
        "SELECT count(*) FROM privacy.subject_requests",
        "SET session_replication_role = replica",
    ],
)
def test_the_telecom_connection_may_do_nothing_else(telecom, statement):
    with pytest.raises(errors.InsufficientPrivilege):
        _one(telecom, statement)


def test_it_reads_updates_and_deletes_the_telecom_tables(telecom, stores):
    stores.execute(
        "INSERT INTO telecom.contact_form_entries VALUES (1, 'Name', 'a@example.nl', NULL, NULL,"
        " 'Bel mij', now())"
    )
    assert _one(telecom, "SELECT count(*) FROM telecom.contact_form_entries") == (1,)
    _one(telecom, "UPDATE telecom.contact_form_entries SET message = 'x' RETURNING 1")
    _one(telecom, "DELETE FROM telecom.contact_form_entries RETURNING 1")
    assert stores.query("SELECT count(*) FROM telecom.contact_form_entries") == [(0,)]


def test_a_purge_with_partition_drops_works_through_it(dagbag, stores):
    """Month partitions made by the tables' owner belong to the store role (the partition
    function hands them over), so the store login detaches and drops them."""
    expired = {1: datetime(2025, 12, 10, 10, tzinfo=UTC), 2: datetime(2025, 12, 20, tzinfo=UTC)}
    young = {100 + n: datetime(2026, 3, 2 + n, tzinfo=UTC) for n in range(10)}
    for record_id, started in {**expired, **young}.items():
        stores.execute("SELECT telecom.ensure_usage_partition(%s::date)", (started.date(),))
        stores.execute(
            "INSERT INTO telecom.usage_records (record_id, customer_id, contract_id, service,"
            " caller_number, callee_number, started_at, duration_seconds)"
            " VALUES (%s, 1, 1, 'mobile', '+31612345678', '+31201234567', %s, 60)",
            (record_id, started),
        )
    owners = dict(
        stores.query(
            "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'telecom'"
            " AND c.relname LIKE 'usage_records%%' AND c.relkind IN ('r', 'p')"
        )
    )
    assert set(owners.values()) == {STORE_ROLE}, owners
    assert "usage_records_p202512" in owners

    run = run_dag(dagbag.get_dag("retention_usage_records"), datetime(2026, 8, 31, tzinfo=UTC))
    assert run.state == "success", task_states(run)
    partitions = {
        name
        for (name,) in stores.query(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'telecom.usage_records'::regclass"
        )
    }
    assert "usage_records_p202512" not in partitions
    assert "usage_records_p202603" in partitions
    remaining = {r for (r,) in stores.query("SELECT record_id FROM telecom.usage_records")}
    assert remaining == set(young)
    purge = [e for e in stores.ledger("retention_usage_records") if e["run_id"] == run.run_id]
    assert any(e["counts"].get("partitions_dropped") == 1 for e in purge), purge
