"""PostgreSQL roles, shared by the control schema's runtime login (:mod:`lethe.control.roles`)
and the stores' login (:mod:`lethe.stores.postgres.roles`)."""

from __future__ import annotations

from typing import Any

from psycopg import sql


def ensure_role(cur: Any, role: str, *, login: bool) -> None:
    """Create ``role`` (LOGIN or NOLOGIN) unless it exists; does not commit."""
    # Roles are the server's: a caller on another database may create one at once.
    cur.execute(
        sql.SQL(
            "DO $$ BEGIN"
            " IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) THEN"
            " CREATE ROLE {role} {login}; END IF;"
            " EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        ).format(
            name=sql.Literal(role),
            role=sql.Identifier(role),
            login=sql.SQL("LOGIN" if login else "NOLOGIN"),
        )
    )
