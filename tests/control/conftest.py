"""Fixtures of the control-schema tests: a migrated scratch database, as its owner, and a
login of the runtime role on it."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from lethe.control.migrate import apply_migrations
from lethe.control.roles import drop_login, ensure_runtime_login


@pytest.fixture
def admin(scratch_database):
    """The schema owner's connection (autocommit) on a freshly migrated scratch database."""
    conn = psycopg.connect(scratch_database, autocommit=True)
    apply_migrations(conn)
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture
def runtime_dsn(admin, scratch_database):
    """A login role of the runtime group, on the scratch database; dropped afterwards."""
    login = f"lethe_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(scratch_database) as conn:
        ensure_runtime_login(conn, login, "runtime-password")
    yield make_conninfo(scratch_database, user=login, password="runtime-password")
    with psycopg.connect(scratch_database) as conn:
        drop_login(conn, login)
