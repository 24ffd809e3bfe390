"""``python -m lethe_dev.demo``: the main job on the embedded default stores (``make demo``).

Starts the embedded PostgreSQL, SFTP and S3 servers, applies the reference telecom schema
and the privacy control schema, seeds the synthetic provider and prints the policy
catalog. Then it runs the seven retention DAGs with ``dag.test()`` as the scheduler would:
the purge guard stops the stores whose four-year backlog is too large a share, and a
second run overrides it with a recorded reason. Finally it prints, per statement row,
the records before and after, the oldest remaining age against the limit and whether the
row is compliant; it exits non-zero if any row is out of policy. At the end it writes the
compliance report (``report/compliance-report.html`` and ``.csv`` in the state directory):
the same per-row table and a chart of the oldest item against the limit, viewable offline.

Everything it writes lives in its state directory (the checkout's ``.lethe/demo``, wiped
first): the servers' data and an Airflow home of its own, whatever ``AIRFLOW_HOME`` and
the metadata database of the shell say, so it never touches ``~/airflow`` or a real
deployment's database. Airflow logs the tasks at INFO, the level a deployment runs at; that
log, and everything else logged, goes to ``airflow/demo.log`` there, so the console shows
the demo's own summary.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import shutil
import sys
import time
import warnings
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from lethe import checkout
from lethe.control import connect  # imports no Airflow: the demo sets its home first

if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_STATE_DIR = checkout.state_dir() / "demo"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lethe_dev.demo", description=__doc__)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"where the servers and Airflow keep their data, wiped first ({DEFAULT_STATE_DIR})",
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
    """Airflow reads its configuration on first import: point it at the demo's own home.

    Set, not defaulted: the demo migrates and fills this metadata database, which must
    never be a user's own (``~/airflow``) or a deployment's.
    """
    home = state_dir / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    root = checkout.root()
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(root / "dags")
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(root / "plugins")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
    # Tasks log at INFO, as in a deployment: a lower level once hid a task that crashed in a
    # log call. The logs go to a file (_output_to_log): the console stays readable.
    if os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "").upper() != "DEBUG":
        os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "INFO"


def _log_path() -> Path:
    """The file the demo's logs and the tasks' logs go to."""
    return Path(os.environ["AIRFLOW_HOME"]) / "demo.log"


#: Where the demo's own lines go: the console, also while the process's output goes to the log.
_console: TextIO = sys.stdout
_console_err: TextIO = sys.stderr


def _say(text: str = "", *, err: bool = False) -> None:
    """A line of the demo's own output, on the console."""
    print(text, file=_console_err if err else _console, flush=True)


@contextlib.contextmanager
def _output_to_log(path: Path) -> Iterator[None]:
    """Send the process's stdout and stderr (file descriptors 1 and 2) to ``path``.

    Airflow's logging (structlog and the stdlib root logger, at the configured level), the
    libraries' output and the tasks' output all write there; :func:`_say` keeps writing to
    the console. Restored afterwards, so an uncaught error is printed on the console.
    """
    global _console, _console_err
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    console = open(os.dup(1), "w", buffering=1, encoding="utf-8")  # noqa: SIM115
    console_err = open(os.dup(2), "w", buffering=1, encoding="utf-8")  # noqa: SIM115
    previous = _console, _console_err
    with path.open("ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        _console, _console_err = console, console_err
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for descriptor in saved:
                os.close(descriptor)
            _console, _console_err = previous
            console.close()
            console_err.close()


def _step(message: str) -> None:
    _say(f"\n==> {message}")


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # libraries' notices
    state_dir = args.state_dir.resolve()
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)
    _prepare_airflow_home(state_dir)
    _say(f"Logs (Airflow's tasks at INFO): {_log_path()}")
    with _output_to_log(_log_path()):
        return _run(args, state_dir)


def _run(args: argparse.Namespace, state_dir: Path) -> int:
    """The demo itself; its lines go to the console through :func:`_say`."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the S3 server's request log
    from lethe.connections import CONTROL_ADMIN_DB, TELECOM_ADMIN_DB
    from lethe.control.migrate import apply_migrations
    from lethe.exceptions import LetheError
    from lethe.policy import load_catalog
    from lethe.policy.table import format_policy_table
    from lethe_dev.stack import EmbeddedStack
    from lethe_dev.synthetic.generator import SyntheticProvider
    from lethe_dev.synthetic.schema import apply_reference_schema

    as_of = args.as_of or date.today()
    compliant = False
    started = time.monotonic()
    try:
        _step("Loading the policy catalog (include/policies/)")
        catalog = load_catalog()
        _say(f"{len(catalog.families)} service families, {len(catalog.categories())} categories")

        _step("Starting the embedded stores (PostgreSQL, SFTP, S3) on loopback")
        with EmbeddedStack(state_dir=state_dir / "stack") as stack:
            os.environ.update(stack.airflow_env())
            _say(f"PostgreSQL {stack.postgres_dsn.rsplit('@', 1)[-1]}")
            _say(f"SFTP root  {stack.sftp_root}")
            _say(f"S3         {stack.s3_endpoint_url}")

            from airflow.providers.postgres.hooks.postgres import PostgresHook

            _step("Applying the reference telecom schema and the privacy control schema")
            os.environ.update(stack.admin_env())  # the owners create the schemas
            apply_reference_schema(PostgresHook(postgres_conn_id=TELECOM_ADMIN_DB))
            with connect(CONTROL_ADMIN_DB) as conn:  # the schema owner migrates
                applied = apply_migrations(conn)
            _say(f"control schema migrations applied: {applied or 'none (up to date)'}")

            _step(
                f"Seeding the synthetic provider (seed {args.seed}, scale {args.scale}, "
                f"as of {as_of})"
            )
            summary = SyntheticProvider(seed=args.seed, scale=args.scale, as_of=as_of).seed_all()
            for location, count in summary.items():
                _say(f"  {location:<55} {count:>9}")

            _step("Policies in force: the privacy statement's table as enforced")
            _say(format_policy_table(catalog))

            moment = datetime.combine(as_of, dt_time(0), tzinfo=UTC)
            before = _statuses(catalog, moment)
            bag = _prepare_airflow()
            _run_retention_dags(bag, catalog, moment)
            after = _statuses(catalog, moment)
            _step(f"Statement rows after retention (counted at {moment.isoformat()})")
            _say(_compliance_table(before, after))
            compliant = all(status.compliant for status in after)
            _subject_requests(bag)
            _verify_ledger()
            _write_report(catalog, moment, state_dir / "report")

            if args.keep_running:
                _step("Stores are up; in another shell:")
                for name, value in stack.airflow_env().items():
                    _say(f"export {name}={shlex.quote(value)}")
                _say("Ctrl-C stops them.")
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    pass
    except LetheError as exc:
        _say(f"\ndemo failed: {exc}", err=True)
        return 1
    _say(f"\nDemo finished in {time.monotonic() - started:.1f} s; stores stopped.")
    if not compliant:
        _say("Some statement rows are OUT OF POLICY (see above).", err=True)
        return 1
    return 0


def _statuses(catalog, moment: datetime) -> list:
    """Every category's standing at ``moment`` (counts only), in statement-row order."""
    from lethe.control.protection import load_protection
    from lethe.retention import check_category

    with connect() as conn:
        return [
            check_category(category, moment, load_protection(conn, category))
            for category in catalog.categories()
        ]


def _prepare_airflow():
    """Migrate the demo's metadata database and register every DAG; return the DagBag."""
    import subprocess

    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import sync_bag_to_db
    from airflow.models import DagBag

    _step("Preparing Airflow (metadata database in the demo's own AIRFLOW_HOME)")
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    sync_bag_to_db(bag, bundle_name="dags-folder", bundle_version=None)
    return bag


def _run_retention_dags(bag, catalog, moment: datetime) -> None:
    """Run each family's retention DAG once as scheduled, then again where the guard stopped."""
    for family in catalog.families:
        dag = bag.get_dag(f"retention_{family.family}")
        _step(f"{dag.dag_id}: scheduled run for {moment.date()}")
        mark = _last_entry()
        run = dag.test(logical_date=moment)
        stopped = _report_run(run, mark)
        if stopped:
            _say(
                f"  the purge guard stopped {stopped} store(s): a four-year backlog is more than "
                "the policy lets one run remove. After review, rerun with the override:"
            )
            mark = _last_entry()
            run = dag.test(
                logical_date=moment,
                run_conf={
                    "override_guard": True,
                    "override_reason": "demo: first purge of the seeded four-year backlog",
                },
            )
            _report_run(run, mark)


def _last_entry() -> int:
    from lethe.control.ledger import entries

    with connect() as conn:
        logged = entries(conn)
    return logged[-1]["entry_id"] if logged else 0


def _report_run(run, after_entry: int) -> int:
    """Print what each store's task did; return how many stores the guard stopped."""
    from lethe.control.ledger import entries

    with connect() as conn:
        logged = entries(conn, dag_id=run.dag_id, run_id=run.run_id, after_entry=after_entry)
    stopped = 0
    for entry in logged:
        counts = entry["counts"]
        if entry["action"] == "compliance_check":
            _say(f"  compliance check: {entry['outcome']}")
            continue
        if entry["outcome"] == "stopped":
            stopped += 1
        _say(
            f"  {entry['category_id']:<25} {entry['store']:<57} {entry['outcome']:<8} "
            f"matched {counts.get('matched', 0):>6}, removed {counts.get('removed', 0):>6}, "
            f"kept for hold/restriction {counts.get('skipped_hold', 0)}"
            f"/{counts.get('skipped_restriction', 0)}"
        )
    _say(f"  run state: {run.state}")
    return stopped


def _subject_requests(bag) -> None:
    """A contact person asks for their data, then for its erasure: both carried out."""
    import json

    from lethe.connections import TELECOM_DB
    from lethe.control.requests import load_request

    # The governed database, through its own connection (the control connection's runtime
    # role may not read the telecom schema).
    with connect(TELECOM_DB) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT c.email FROM telecom.contact_persons c WHERE c.email IS NOT NULL AND EXISTS"
            " (SELECT 1 FROM telecom.usage_records u WHERE u.caller_number = c.phone)"
            " ORDER BY c.contact_id LIMIT 1"
        )
        found = cur.fetchone()
    if found is None:
        _say("  (no contact person with usage records left to demonstrate with)")
        return
    subject = {"emails": [found[0]]}  # synthetic, and never printed
    verification = {"verified_by": "Demo support desk", "verification_method": "id_document"}
    now = datetime.now(UTC).replace(microsecond=0)
    for offset, right in enumerate(("access", "erasure")):
        _step(f"A contact person asks for {right} (register_subject_request, subject_requests)")
        when = now + timedelta(minutes=10 * offset)
        run = bag.get_dag("register_subject_request").test(
            logical_date=when,
            run_conf={**subject, **verification, "right": right},
        )
        ti = next(t for t in run.get_task_instances() if t.task_id == "register_request")
        request_id = ti.xcom_pull(task_ids="register_request")["request_id"]
        _say(f"  request {request_id}: registered ({run.state})")
        run = bag.get_dag("subject_requests").test(logical_date=when + timedelta(minutes=1))
        _say(f"  subject_requests run: {run.state}")
        if right == "access":
            run = bag.get_dag("subject_export").test(
                logical_date=when + timedelta(minutes=2),
                run_conf={"request_id": request_id},
            )
            ti = next(t for t in run.get_task_instances() if t.task_id == "export_subject_data")
            result = ti.xcom_pull(task_ids="export_subject_data") or {}
            _say(
                f"  subject_export run: {run.state}: {result.get('categories', 0)} categories, "
                f"{result.get('rows', 0)} rows, {result.get('files', 0)} recordings -> "
                f"s3://lethe-exports/{result.get('key', '?')} (link expires "
                f"{result.get('expires_at', '?')})"
            )
        with connect() as conn:
            request = load_request(conn, request_id)
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT answer FROM privacy.subject_requests WHERE request_id = %s::uuid",
                    (request_id,),
                )
                (answer,) = cur.fetchone()
        answer = json.loads(answer) if isinstance(answer, str) else (answer or {})
        _say(
            f"  request status: {request.status}; identity types used: "
            f"{', '.join(answer.get('identity_types_used', []))}"
        )
        for entry in answer.get("categories", []):
            items = "" if entry.get("items") is None else f" ({entry['items']} items)"
            _say(f"    {entry['category']:<28} {entry['outcome']}{items}")


def _compliance_table(before: list, after: list) -> str:
    header = (
        f"{'row':>3}  {'category':<26} {'limit':<47} {'before':>8} {'after':>8} "
        f"{'oldest (days)':>13}  compliant"
    )
    lines = [header, "-" * len(header)]
    for b, a in zip(before, after, strict=True):
        oldest = "-" if a.oldest_age_days is None else str(a.oldest_age_days)
        lines.append(
            f"{'-' if a.statement_row is None else a.statement_row:>3}  {a.category_id:<26} "
            f"{a.limit:<47} {b.items:>8} {a.items:>8} "
            f"{oldest:>13}  {'yes' if a.compliant else 'NO'}"
        )
    return "\n".join(lines)


def _write_report(catalog, moment: datetime, directory: Path) -> None:
    """The compliance report of every row at ``moment`` (the table's): HTML and CSV."""
    from lethe.report.render import report_html, to_csv
    from lethe.report.status import ledger_chain, survey_rows

    with connect() as conn:
        rows = survey_rows(catalog, moment, conn)
        _, _, chain = ledger_chain(conn)
    directory.mkdir(parents=True, exist_ok=True)
    html, table = directory / "compliance-report.html", directory / "compliance-report.csv"
    html.write_text(report_html(rows, moment, chain), encoding="utf-8")
    table.write_text(to_csv(rows), encoding="utf-8")
    _step("Compliance report (open in a browser; no network needed)")
    _say(f"  {html}\n  {table}")


def _verify_ledger() -> None:
    from lethe.control import ledger

    with connect() as conn:
        ledger.verify(conn)
        entries = len(ledger.entries(conn))
    _say(f"\nAudit ledger: {entries} entries, hash chain verified.")


if __name__ == "__main__":
    sys.exit(main())
