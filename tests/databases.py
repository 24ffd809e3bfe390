"""Databases of their own for tests, on the suite's PostgreSQL server.

A plain module (not a conftest) so test modules can import it: importing ``tests.conftest``
a second time would set up a second run directory.
"""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def new_database(stack, prefix: str = "scratch"):
    """A new, empty database on the stack's PostgreSQL server, dropped on exit.

    Yields a libpq URI.
    """
    import uuid

    import psycopg
    from psycopg import sql

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    # CREATE/DROP DATABASE cannot run in a transaction block.
    admin = psycopg.connect(stack.postgres_dsn, autocommit=True)
    with admin.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = stack.postgres_dsn.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


def control_hook(dsn: str):
    """A :class:`~lethe.control.hook.PrivacyControlHook` on the database of the libpq URI
    ``dsn`` (a database of a test's own), not on the ``lethe_control_db`` connection."""
    from airflow.sdk import Connection
    from psycopg.conninfo import conninfo_to_dict

    from lethe.control.hook import PrivacyControlHook

    parts = conninfo_to_dict(dsn)
    connection = Connection(
        conn_id="lethe_test_control",
        conn_type="postgres",
        host=parts.get("host"),
        port=int(parts["port"]) if parts.get("port") else None,
        login=parts.get("user"),
        password=parts.get("password"),
        schema=parts.get("dbname"),
    )
    return PrivacyControlHook(control_conn_id=connection.conn_id, connection=connection)


def use_ledger_key(monkeypatch, key: bytes | str, retired: list[str] | None = None) -> None:
    """Make ``key`` the ledger key connection (``lethe_ledger_key``) for this test, with the
    ``retired`` keys in its extra."""
    import json

    secret = key.decode() if isinstance(key, bytes) else key
    connection: dict = {"conn_type": "generic", "password": secret}
    if retired is not None:
        connection["extra"] = json.dumps({"retired_secrets": retired})
    monkeypatch.setenv("AIRFLOW_CONN_LETHE_LEDGER_KEY", json.dumps(connection))
