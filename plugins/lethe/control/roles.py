"""The database roles of the control schema (docs/security.md "Roles").

Migration 0007 creates the group role :data:`RUNTIME_ROLE` and grants it what Lethe's
operators need. A deployment gives its Airflow connection ``lethe_control_db`` a login role
that is a member of it: :func:`ensure_runtime_login` creates (or updates) one, run by the
schema owner (the embedded stack and ``deploy/compose/lethe-init.sh`` do).
"""

from __future__ import annotations

from psycopg import sql

from lethe.exceptions import ControlSchemaError
from lethe.pg_roles import ensure_role

#: The NOLOGIN group role Lethe's runtime logins are granted (migration 0007).
RUNTIME_ROLE = "lethe_runtime"


def ensure_runtime_login(conn, login: str, password: str | None = None) -> None:
    """Create the login role ``login`` (or set its password) as a member of
    :data:`RUNTIME_ROLE`, creating that role when missing; commits.

    :param conn: a psycopg (3) connection of a role with CREATEROLE (the schema owner).
    :param password: its password; None leaves it without one (trust or peer auth).
    :raises ControlSchemaError: ``login`` is the role connected (the admin is no runtime).
    """
    with conn.cursor() as cur:
        cur.execute("SELECT current_user")
        if cur.fetchone()[0] == login:
            raise ControlSchemaError(f"the runtime login {login!r} must not be the schema owner")
        for role, can_login in ((RUNTIME_ROLE, False), (login, True)):
            ensure_role(cur, role, login=can_login)
        cur.execute(
            sql.SQL("ALTER ROLE {} NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS").format(
                sql.Identifier(login)
            )
        )
        if password is not None:
            cur.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(login), sql.Literal(password)
                )
            )
        cur.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(RUNTIME_ROLE), sql.Identifier(login))
        )
    conn.commit()


def drop_login(conn, login: str) -> None:
    """Drop the login role ``login`` if it exists (a test database's own); commits."""
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login)))
    conn.commit()
