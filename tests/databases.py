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

    import psycopg2
    from psycopg2 import sql

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(stack.postgres_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = stack.postgres_dsn.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()
