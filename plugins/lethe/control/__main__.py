"""``python -m lethe.control migrate [--conn-id ID]``: create or upgrade the control schema.

``python -m lethe.control runtime-login --conn-id ADMIN --runtime-conn-id lethe_control_db``
creates (or updates) the login role of the runtime connection (its login and password) as
a member of ``lethe_runtime``, connected as the schema owner ADMIN (docs/security.md).

It refuses to run (exit code 1, every error printed with its file, category and field)
while the policy catalog is invalid: a deployment must not go ahead on a policy the
retention DAGs cannot enforce. Airflow's home is the checkout's ``.lethe/airflow`` unless
``AIRFLOW_HOME`` is set.
"""

from __future__ import annotations

import argparse
import logging
import sys

from lethe import checkout
from lethe.connections import CONTROL_ADMIN_DB, CONTROL_DB
from lethe.control import connect
from lethe.control.migrate import apply_migrations, discover
from lethe.exceptions import LetheError
from lethe.policy.check import catalog_errors
from lethe.policy.loader import default_policy_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lethe.control", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    migrate = sub.add_parser("migrate", help="apply the control schema's migrations")
    migrate.add_argument("--conn-id", default=CONTROL_DB, help="Airflow connection id")
    login = sub.add_parser("runtime-login", help="create the runtime connection's login role")
    login.add_argument("--conn-id", default=CONTROL_ADMIN_DB, help="the schema owner's")
    login.add_argument("--runtime-conn-id", default=CONTROL_DB, help="the runtime connection")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    checkout.use_local_airflow_home()  # before connect() imports Airflow
    if args.command == "runtime-login":
        return _runtime_login(args.conn_id, args.runtime_conn_id)

    errors = catalog_errors()
    if errors:
        for line in errors:
            print(line, file=sys.stderr)
        print(
            f"error: refusing to migrate: the policy catalog in {default_policy_dir()} has "
            f"{len(errors)} error(s) (python -m lethe.policy validate)",
            file=sys.stderr,
        )
        return 1
    try:
        with connect(args.conn_id) as conn:
            applied = apply_migrations(conn)
    except LetheError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"control schema at version {discover()[-1].version}; applied now: {applied or 'none'}")
    return 0


def _runtime_login(admin_conn_id: str, runtime_conn_id: str) -> int:
    from airflow.sdk import BaseHook

    from lethe.control.roles import RUNTIME_ROLE, ensure_runtime_login

    runtime = BaseHook.get_connection(runtime_conn_id)
    if not runtime.login:
        print(f"error: the connection {runtime_conn_id} names no login", file=sys.stderr)
        return 1
    try:
        with connect(admin_conn_id) as conn:
            ensure_runtime_login(conn, runtime.login, runtime.password or None)
    except LetheError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"login role {runtime.login} ({runtime_conn_id}) is a member of {RUNTIME_ROLE}")
    return 0


# Airflow's plugin loader may import files under plugins/ as top-level modules (named
# "__main__" for this one): run only when started with -m.
if __name__ == "__main__" and __spec__ is not None and __spec__.name == "lethe.control.__main__":
    sys.exit(main())
