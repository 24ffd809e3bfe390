"""``python -m lethe.demo``: the main job on the embedded default stores (``make demo``).

Starts the embedded PostgreSQL, SFTP and S3 servers, applies the reference telecom schema
and the privacy control schema, seeds the synthetic provider, loads the policy catalog
and prints it: which statement row is enforced how, and where its data lives.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import sys
import time
from datetime import date
from pathlib import Path

DEFAULT_STATE_DIR = Path(".lethe") / "demo"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lethe.demo", description=__doc__)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="where the embedded servers keep their data (wiped first)",
    )
    parser.add_argument("--scale", type=int, default=1, help="synthetic data volume (1 = small)")
    parser.add_argument("--seed", type=int, default=20180417, help="synthetic data seed")
    parser.add_argument(
        "--as-of",
        type=date.fromisoformat,
        default=None,
        help="the day the synthetic data is generated for (default: today)",
    )
    parser.add_argument(
        "--keep-running", action="store_true", help="leave the stores up afterwards until Ctrl-C"
    )
    return parser.parse_args(argv)


def _prepare_airflow_home(state_dir: Path) -> None:
    """Airflow reads its configuration on first import: point it at the demo's own home."""
    home = state_dir / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[2]
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(root / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(root / "plugins"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home}/airflow.db")


def _step(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    state_dir = args.state_dir.resolve()
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)
    _prepare_airflow_home(state_dir)

    from lethe.connections import CONTROL_DB, TELECOM_DB
    from lethe.control.migrate import apply_migrations
    from lethe.exceptions import LetheError
    from lethe.policy import load_catalog
    from lethe.policy.table import format_policy_table
    from lethe.stack import EmbeddedStack
    from lethe.synthetic.generator import SyntheticProvider
    from lethe.synthetic.schema import apply_reference_schema

    as_of = args.as_of or date.today()
    started = time.monotonic()
    try:
        _step("Loading the policy catalog (include/policies/)")
        catalog = load_catalog()
        print(f"{len(catalog.families)} service families, {len(catalog.categories())} categories")

        _step("Starting the embedded stores (PostgreSQL, SFTP, S3) on loopback")
        with EmbeddedStack(state_dir=state_dir / "stack") as stack:
            os.environ.update(stack.airflow_env())
            print(f"PostgreSQL {stack.postgres_dsn.rsplit('@', 1)[-1]}")
            print(f"SFTP root  {stack.sftp_root}")
            print(f"S3         {stack.s3_endpoint_url}")

            from airflow.providers.postgres.hooks.postgres import PostgresHook

            _step("Applying the reference telecom schema and the privacy control schema")
            apply_reference_schema(PostgresHook(postgres_conn_id=TELECOM_DB))
            conn = PostgresHook(postgres_conn_id=CONTROL_DB).get_conn()
            try:
                applied = apply_migrations(conn)
            finally:
                conn.close()
            print(f"control schema migrations applied: {applied or 'none (up to date)'}")

            _step(
                f"Seeding the synthetic provider (seed {args.seed}, scale {args.scale}, "
                f"as of {as_of})"
            )
            summary = SyntheticProvider(seed=args.seed, scale=args.scale, as_of=as_of).seed_all()
            for location, count in summary.items():
                print(f"  {location:<55} {count:>9}")

            _step("Policies in force: the privacy statement's table as enforced")
            print(format_policy_table(catalog))

            if args.keep_running:
                _step("Stores are up; in another shell:")
                for name, value in stack.airflow_env().items():
                    print(f"export {name}={shlex.quote(value)}")
                print("Ctrl-C stops them.")
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    pass
    except LetheError as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    print(f"\nDemo finished in {time.monotonic() - started:.1f} s; stores stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
