"""The login role of a governed PostgreSQL store (``lethe_telecom_db``): no superuser, only
what retention and the subjects' rights need (docs/security.md "Roles").

The NOLOGIN group role :data:`STORE_ROLE` gets, on each governed schema: USAGE, SELECT,
UPDATE and DELETE on every table and view (purges and erasures delete, rectifications and
free-text redactions update), and ownership of every range-partitioned table and of its
partitions (detaching and dropping an expired month partition needs it). It may not
INSERT into or TRUNCATE the other tables, create anything in the schema, or read other
schemas. A store connection logs in as a member of it (:func:`ensure_store_login`).

Run as a role that may grant on the schema and give its tables away (the tables' owner,
or a superuser); idempotent. Run again after new partitioned tables appear; a partition
created later by ``telecom.ensure_usage_partition`` goes to its parent's owner.
"""

from __future__ import annotations

from psycopg import sql

from lethe.exceptions import StoreError
from lethe.pg_roles import ensure_role

#: The NOLOGIN group role of the governed stores' logins.
STORE_ROLE = "lethe_store"

_PARTITIONED = """
SELECT c.relname, c.relkind = 'p'
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
  AND (c.relkind = 'p' OR c.oid IN (SELECT i.inhrelid FROM pg_inherits i
                                    JOIN pg_class p ON p.oid = i.inhparent
                                    WHERE p.relkind = 'p'))
  AND pg_get_userbyid(c.relowner) <> %(role)s
ORDER BY c.relkind = 'p' DESC, c.relname
"""


def grant_store(conn, schema: str) -> int:
    """Give :data:`STORE_ROLE` what it needs on ``schema`` (creating the role if missing);
    does not commit.

    :return: the number of tables whose ownership it was given (partitioned tables and
        their partitions not yet its own).
    :raises StoreError: the schema does not exist.
    """
    with conn.cursor() as cur:
        cur.execute("SELECT to_regnamespace(%s) IS NOT NULL", (schema,))
        if not cur.fetchone()[0]:
            raise StoreError(f"schema {schema!r} does not exist: create the store's tables first")
        ensure_role(cur, STORE_ROLE, login=False)
        role, name = sql.Identifier(STORE_ROLE), sql.Identifier(schema)
        cur.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(name, role))
        cur.execute(
            sql.SQL("GRANT SELECT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(
                name, role
            )
        )
        cur.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT, UPDATE, DELETE ON TABLES TO {}"
            ).format(name, role)
        )
        cur.execute(_PARTITIONED, {"schema": schema, "role": STORE_ROLE})
        tables = [row[0] for row in cur.fetchall()]
        for table in tables:
            cur.execute(
                sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier(schema, table), role)
            )
    return len(tables)


def ensure_store_login(conn, login: str, password: str | None, schemas: tuple[str, ...]) -> None:
    """Create the login role ``login`` (or set its password) as a member of
    :data:`STORE_ROLE`, no superuser, and grant the role its due on ``schemas``; commits.

    :param conn: a psycopg (3) connection of a role with CREATEROLE that owns the schemas'
        tables (or a superuser).
    :param password: its password; None leaves it without one (trust or peer auth).
    :raises StoreError: ``login`` is the role connected, or a schema does not exist.
    """
    with conn.cursor() as cur:
        cur.execute("SELECT current_user")
        if cur.fetchone()[0] == login:
            raise StoreError(f"the store login {login!r} must not be the role that grants")
        ensure_role(cur, STORE_ROLE, login=False)
        ensure_role(cur, login, login=True)
        who = sql.Identifier(login)
        cur.execute(
            sql.SQL("ALTER ROLE {} NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS").format(who)
        )
        if password is not None:
            cur.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(who, sql.Literal(password)))
        cur.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(STORE_ROLE), who))
    for schema in schemas:
        grant_store(conn, schema)
    conn.commit()
