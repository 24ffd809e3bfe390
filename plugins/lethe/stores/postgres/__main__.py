"""``python -m lethe.stores.postgres store-login --conn-id ADMIN --store-conn-id
lethe_telecom_db [--schema telecom ...]``: create (or update) the login role of a governed
PostgreSQL store's connection (its login and password) as a member of ``lethe_store``, and
grant that role what retention and the subjects' rights need on each schema
(:mod:`lethe.stores.postgres.roles`), connected as ADMIN (the tables' owner or a superuser,
with CREATEROLE). A schema that does not exist yet is skipped with a note: run the command
again once its tables exist. Airflow's home is the checkout's ``.lethe/airflow`` unless
``AIRFLOW_HOME`` is set.
"""

from __future__ import annotations

import argparse
import sys

from lethe import checkout
from lethe.connections import TELECOM_ADMIN_DB, TELECOM_DB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lethe.stores.postgres", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    login = sub.add_parser("store-login", help="create the store connection's login role")
    login.add_argument("--conn-id", default=TELECOM_ADMIN_DB, help="the tables' owner")
    login.add_argument("--store-conn-id", default=TELECOM_DB, help="the store's connection")
    login.add_argument(
        "--schema", action="append", help="a governed schema (repeatable; default telecom)"
    )
    args = parser.parse_args(argv)
    checkout.use_local_airflow_home()  # before Airflow is imported

    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk import BaseHook

    from lethe.exceptions import LetheError
    from lethe.stores.postgres.roles import STORE_ROLE, ensure_store_login

    store = BaseHook.get_connection(args.store_conn_id)
    if not store.login:
        print(f"error: the connection {args.store_conn_id} names no login", file=sys.stderr)
        return 1
    conn = PostgresHook(postgres_conn_id=args.conn_id).get_conn()
    try:
        present = []
        for schema in args.schema or ["telecom"]:
            with conn.cursor() as cur:
                cur.execute("SELECT to_regnamespace(%s)", (schema,))
                exists = cur.fetchone()[0] is not None
            if exists:
                present.append(schema)
            else:
                print(f"note: schema {schema} does not exist yet: run this again once it does")
        ensure_store_login(conn, store.login, store.password or None, tuple(present))
    except LetheError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    print(
        f"login role {store.login} ({args.store_conn_id}) is a member of {STORE_ROLE}, "
        f"granted on: {', '.join(present) or 'no schema yet'}"
    )
    return 0


# Airflow's plugin loader may import files under plugins/ as top-level modules (named
# "__main__" for this one): run only when started with -m.
if (
    __name__ == "__main__"
    and __spec__ is not None
    and __spec__.name == "lethe.stores.postgres.__main__"
):
    sys.exit(main())
