"""Scale-out on a real distributed engine: CeleryExecutor, Redis, two workers.

Airflow runs as production runs it (docker-compose.yaml), as separate processes on this
machine: an api-server (tasks talk to its execution API), a scheduler, a dag-processor and
two Celery workers (``worker1@``, ``worker2@``, one task at a time each), with Redis as the
broker and a fresh database on the suite's PostgreSQL as the metadata database and Celery
result backend. The DAG is ``retention_website``'s tasks with a 1 s retry delay
(``tests/scaleout/dags``), over the suite's PostgreSQL and S3 servers.

Redis: the server on 127.0.0.1:6379 when it answers, else a ``redis-server`` started for
the module; skipped only when neither is possible. Each module run uses its own Redis
database number and queue name, so runs at the same time do not take each other's tasks.
Logs of every process: ``<run dir>/scaleout/logs/`` (kept when the session fails).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from tests.databases import new_database
from tests.scaleout.cluster import ROOT, Cluster, RestClient, free_port, redis_answers, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.dags.conftest import Stores

DAG_ID = "scaleout_retention_website"
#: Each run's logical date (unique per DAG) and its cutoff, one Amsterdam year earlier.
SPREAD_RUN = ("2026-03-30T00:00:00+02:00", datetime(2025, 3, 29, 23, tzinfo=UTC))
KILL_RUN = ("2026-06-01T00:00:00+02:00", datetime(2025, 5, 31, 22, tzinfo=UTC))
BUCKET = "lethe-web-analytics"
WORKERS = ("worker1", "worker2")
PURGES = ("purge_postgres", "purge_s3")
#: Rows per table: ids 1-4 expired, 5-10 not (4 of 10 stays under the 50% purge guard).
EXPIRED_ROWS = {1, 2, 3, 4}
ALL_ROWS = set(range(1, 11))
EXPIRED_FORMS = {1, 2}
ALL_FORMS = set(range(1, 6))
EXPIRED_DAYS = ["20250210", "20250301"]
ALL_DAYS = [*EXPIRED_DAYS, "20250701", "20251001", "20260101", "20260320"]
#: store -> what one run removes there, computed from the seed above.
EXPECTED_REMOVED = {
    "telecom.web_visits": len(EXPIRED_ROWS),
    "telecom.web_cookies": len(EXPIRED_ROWS),
    "telecom.contact_form_entries": len(EXPIRED_FORMS),
    f"{BUCKET}/exports/": len(EXPIRED_DAYS),
}
#: Generous bounds on a loaded 2-core machine; nothing here asserts on timing.
START_TIMEOUT = 150
RUN_TIMEOUT = 150


# --- Redis --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url(run_dir) -> Iterator[str]:
    """A Redis URL with a database number of this module run's own."""
    db = secrets.randbelow(14) + 1  # 0 is what other clients use by default
    if redis_answers("127.0.0.1", 6379):
        yield f"redis://127.0.0.1:6379/{db}"
        return
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip(
            "Redis cannot be started: nothing answers on 127.0.0.1:6379 and redis-server is "
            "not installed (apt-get install redis-server)"
        )
    port = free_port()
    state = run_dir / "scaleout" / "redis"
    state.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(state)],
        stdout=(state / "redis.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for("redis-server", lambda: redis_answers("127.0.0.1", port), timeout=20)
        yield f"redis://127.0.0.1:{port}/{db}"
    finally:
        process.terminate()
        process.wait(timeout=20)


# --- the metadata database ----------------------------------------------------------------


@pytest.fixture(scope="module")
def metadata_db(stack) -> Iterator[str]:
    """A new database on the suite's PostgreSQL for Airflow's metadata; dropped afterwards.

    Yields its libpq URI.
    """
    with new_database(stack, "scaleout") as uri:
        yield uri


def sqlalchemy_url(libpq_uri: str) -> str:
    """The SQLAlchemy (psycopg 3) URL of a libpq URI, socket directories included."""
    from psycopg.conninfo import conninfo_to_dict
    from sqlalchemy.engine import URL

    params = conninfo_to_dict(libpq_uri)
    query = {key: params[key] for key in ("host", "port") if key in params}
    return URL.create(
        "postgresql+psycopg",
        username=params.get("user"),
        password=params.get("password"),
        database=params["dbname"],
        query=query,
    ).render_as_string(hide_password=False)


# --- the cluster --------------------------------------------------------------------------


@dataclass
class Scaleout:
    cluster: Cluster
    api: RestClient
    meta: Any  # psycopg 3 connection (autocommit) to the metadata database
    stores: Stores
    stores_dsn: str
    queue: str

    def task_instances(self, run_id: str) -> dict[str, dict[str, Any]]:
        """``task_id[map_index]`` -> state, hostname, queue, try_number of the run's tasks."""
        with self.meta.cursor() as cur:
            cur.execute(
                "SELECT task_id, map_index, state, hostname, queue, try_number"
                " FROM task_instance WHERE dag_id = %s AND run_id = %s",
                (DAG_ID, run_id),
            )
            rows = cur.fetchall()
        return {
            (task if index < 0 else f"{task}[{index}]"): {
                "state": state,
                "hostname": host,
                "queue": queue,
                "try_number": tries,
            }
            for task, index, state, host, queue, tries in rows
        }

    def earlier_tries(self, run_id: str) -> list[dict[str, Any]]:
        """The tries Airflow kept in task_instance_history (replaced by a retry)."""
        with self.meta.cursor() as cur:
            cur.execute(
                "SELECT task_id, map_index, state, hostname, try_number"
                " FROM task_instance_history WHERE dag_id = %s AND run_id = %s",
                (DAG_ID, run_id),
            )
            rows = cur.fetchall()
        return [
            {"task": t if i < 0 else f"{t}[{i}]", "state": s, "hostname": h, "try_number": n}
            for t, i, s, h, n in rows
        ]

    def run_state(self, run_id: str) -> str | None:
        with self.meta.cursor() as cur:
            cur.execute(
                "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (DAG_ID, run_id)
            )
            row = cur.fetchone()
        return row[0] if row else None

    def trigger(self, run_id: str, logical_date: str) -> None:
        self.api.request(
            "POST",
            f"/api/v2/dags/{DAG_ID}/dagRuns",
            {"dag_run_id": run_id, "logical_date": logical_date, "conf": {}},
        )

    def wait_for_run(self, run_id: str) -> str:
        def finished() -> str | None:
            self.cluster.assert_running()
            state = self.run_state(run_id)
            return state if state in ("success", "failed") else None

        return wait_for(f"run {run_id}", finished, timeout=RUN_TIMEOUT, interval=0.2)


@pytest.fixture(scope="module")
def scaleout(run_dir, stack, redis_url, metadata_db) -> Iterator[Scaleout]:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from lethe.connections import OBJECT_STORE
    from lethe.control.migrate import apply_migrations
    from lethe_dev.synthetic.schema import apply_reference_schema_on
    from tests.dags.conftest import Stores

    state_dir = run_dir / "scaleout"
    api_port = free_port()
    queue = f"lethe-scaleout-{uuid.uuid4().hex[:8]}"
    db_url = sqlalchemy_url(metadata_db)
    env = {
        **stack.airflow_env(),
        "AIRFLOW_HOME": str(state_dir / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "tests" / "scaleout" / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        # The DAG has no schedule: unpaused, it runs only when triggered.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.scaleout.hostnames.hostname",
        # The test's REST calls need no login (whatever auth manager the session sets).
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
        "AIRFLOW__CELERY__BROKER_URL": redis_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + db_url,
        # One task at a time per worker, and no worker holds a second one in reserve: the
        # mapped purges are spread over both workers.
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
        # A killed worker's task is found within seconds, not the default 5 minutes: live
        # tasks heartbeat every second (default 5), so 10 s without one leaves a loaded
        # machine 9 s of slack before a live task would be taken for lost.
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "10",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "1",
        # A run takes a scheduler loop per step (queue, finish, retry, next task); an idle
        # loop sleeps 1 s by default, a fifth of that here.
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "LETHE_POLICY_DIR": str(ROOT / "include" / "policies"),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)]),
        "PATH": os.pathsep.join([str(ROOT / ".venv" / "bin"), os.environ.get("PATH", "")]),
    }
    cluster = Cluster(state_dir, env)
    # The metadata database migrates (the longest step) while the stores are prepared and
    # the Celery workers start on the core the migration leaves free: an Airflow 3 worker
    # does not use Airflow's tables (its tasks go through the execution API); the result
    # backend's tables, in the same database, are Celery's own, which it makes itself.
    cluster.start("db-migrate", "db", "migrate")
    for worker in WORKERS:
        cluster.start_worker(worker, queue)

    conn = psycopg.connect(stack.postgres_dsn)
    apply_reference_schema_on(conn)
    apply_migrations(conn)
    conn.autocommit = True
    stores = Stores(
        db=conn, sftp_root=stack.sftp_root, s3=S3Hook(aws_conn_id=OBJECT_STORE).get_conn()
    )
    meta = psycopg.connect(metadata_db, autocommit=True)
    try:
        cluster.finish("db-migrate", timeout=300)
        cluster.start("api-server", "api-server", "--port", str(api_port))
        cluster.start("scheduler", "scheduler")
        cluster.start("dag-processor", "dag-processor")
        api = RestClient(f"http://127.0.0.1:{api_port}")

        def ready() -> bool:
            cluster.assert_running()
            return (
                api.healthy()
                and all(
                    f"{w}@" in cluster.log_text(w) and " ready." in cluster.log_text(w)
                    for w in WORKERS
                )
                and dag_is_serialized(meta)
            )

        wait_for("the api-server, both workers and the parsed DAG", ready, START_TIMEOUT, 0.2)
        yield Scaleout(
            cluster=cluster,
            api=api,
            meta=meta,
            stores=stores,
            stores_dsn=stack.postgres_dsn,
            queue=queue,
        )
    finally:
        cluster.stop()
        meta.close()
        stores.reset()
        conn.close()


def dag_is_serialized(meta) -> bool:
    with meta.cursor() as cur:
        cur.execute("SELECT 1 FROM serialized_dag WHERE dag_id = %s", (DAG_ID,))
        return cur.fetchone() is not None


# --- the data -----------------------------------------------------------------------------


def export_key(day: str) -> str:
    return f"exports/{day[:4]}/{day[4:6]}/{day[6:8]}/visits-{day}.csv"


def seed(stores: Stores, cutoff: datetime) -> None:
    """Rows aged from ``cutoff``: ids in EXPIRED_* lie before it, the others after."""
    stores.reset()
    for row_id in ALL_ROWS:
        age = (
            cutoff - timedelta(days=row_id)
            if row_id in EXPIRED_ROWS
            else cutoff + timedelta(days=row_id)
        )
        visitor = f"v{row_id}-scaleout"
        stores.execute(
            "INSERT INTO telecom.web_visits (visit_id, visitor_id, ip_address, user_agent,"
            " page_path, visited_at) VALUES (%s, %s, '192.0.2.10', 'Firefox', '/pricing', %s)",
            (row_id, visitor, age),
        )
        stores.execute(
            "INSERT INTO telecom.web_cookies (cookie_id, visitor_id, purpose, name, value,"
            " set_at) VALUES (%s, %s, 'statistical', '_stats', %s, %s)",
            (row_id, visitor, visitor, age),
        )
    for entry_id in ALL_FORMS:
        submitted = cutoff + (
            timedelta(days=-entry_id) if entry_id in EXPIRED_FORMS else timedelta(days=entry_id)
        )
        stores.execute(
            "INSERT INTO telecom.contact_form_entries (entry_id, full_name, email, phone,"
            " company_name, message, submitted_at)"
            " VALUES (%s, 'Test Person', %s, '+31612345678', 'Test BV', 'Offer?', %s)",
            (entry_id, f"person{entry_id}@example.nl", submitted),
        )
    for day in ALL_DAYS:
        body = f"visitor_id,page_path,visited_at\nv-{day},/pricing,{day}\n".encode()
        stores.s3.put_object(Bucket=BUCKET, Key=export_key(day), Body=body)


def ids(stores: Stores, table: str, column: str) -> set[int]:
    return {row_id for (row_id,) in stores.query(f"SELECT {column} FROM telecom.{table}")}  # noqa: S608


def export_days(stores: Stores) -> set[str]:
    listing = stores.s3.list_objects_v2(Bucket=BUCKET, Prefix="exports/")
    return {
        obj["Key"].rsplit("-", 1)[1].removesuffix(".csv") for obj in listing.get("Contents", [])
    }


def run_ledger(stores: Stores, run_id: str) -> list[dict[str, Any]]:
    return [e for e in stores.ledger(DAG_ID) if e["run_id"] == run_id]


def assert_removed_exactly_once(stores: Stores, run_id: str) -> None:
    """The stores and the ledger hold what one worker running the DAG alone produces."""
    kept_rows = ALL_ROWS - EXPIRED_ROWS
    assert ids(stores, "web_visits", "visit_id") == kept_rows
    assert ids(stores, "web_cookies", "cookie_id") == kept_rows
    assert ids(stores, "contact_form_entries", "entry_id") == ALL_FORMS - EXPIRED_FORMS
    assert export_days(stores) == set(ALL_DAYS) - set(EXPIRED_DAYS)

    entries = run_ledger(stores, run_id)
    purges = [e for e in entries if e["action"] == "purge"]
    # One entry per store, none from a killed try: no store is counted twice or as failed.
    assert sorted(e["store"].split(":", 2)[2] for e in purges) == sorted(EXPECTED_REMOVED), [
        (e["store"], e["task_id"], e["outcome"], e["counts"], e["details"]) for e in purges
    ]
    for entry in purges:
        store = entry["store"].split(":", 2)[2]
        assert entry["outcome"] == "ok", entry
        assert entry["counts"]["matched"] == EXPECTED_REMOVED[store], store
        assert entry["counts"]["removed"] == EXPECTED_REMOVED[store], store
    (check,) = [e for e in entries if e["action"] == "compliance_check"]
    assert check["outcome"] == "ok", check


# --- the tests ----------------------------------------------------------------------------


def test_mapped_purges_are_spread_over_both_workers(scaleout):
    logical_date, cutoff = SPREAD_RUN
    seed(scaleout.stores, cutoff)
    run_id = f"scaleout_spread_{uuid.uuid4().hex[:8]}"
    scaleout.trigger(run_id, logical_date)

    assert scaleout.wait_for_run(run_id) == "success", scaleout.task_instances(run_id)
    tis = scaleout.task_instances(run_id)
    purges = {key: ti for key, ti in tis.items() if key.startswith(PURGES)}
    assert len(purges) == len(EXPECTED_REMOVED)
    assert {ti["state"] for ti in tis.values()} == {"success"}
    # Every task went through this run's queue and ran on one of the two workers, once.
    assert {ti["queue"] for ti in tis.values()} == {scaleout.queue}
    assert {ti["try_number"] for ti in tis.values()} == {1}
    assert {ti["hostname"] for ti in purges.values()} == set(WORKERS), purges
    assert_removed_exactly_once(scaleout.stores, run_id)


def test_a_killed_workers_task_is_retried_on_the_other(scaleout):
    """A worker lost mid-task (SIGKILL to it and every process it started, as when its
    machine goes) has its task found by the scheduler's heartbeat check and retried on the
    other worker; the lost try removed nothing and wrote nothing, so the stores and the
    ledger are what one worker alone would leave."""
    stores = scaleout.stores
    logical_date, cutoff = KILL_RUN
    seed(stores, cutoff)
    run_id = f"scaleout_kill_{uuid.uuid4().hex[:8]}"
    # Hold web_visits: its purge task blocks in its survey until the lock is released,
    # so it is mid-run, on a known table, when its worker is killed.
    locker = psycopg.connect(scaleout.stores_dsn)
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLE telecom.web_visits IN ACCESS EXCLUSIVE MODE")
        scaleout.trigger(run_id, logical_date)

        def blocked_task() -> dict[str, Any] | None:
            scaleout.cluster.assert_running()
            ti = scaleout.task_instances(run_id).get("purge_postgres[0]")  # web_visits
            if not ti or ti["state"] != "running" or not ti["hostname"]:
                return None
            with stores.db.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted"
                    " AND relation = 'telecom.web_visits'::regclass"
                )
                (waiting,) = cur.fetchone()
            return ti if waiting else None

        victim = wait_for(
            "the web_visits purge to wait on its lock", blocked_task, RUN_TIMEOUT, interval=0.2
        )
        killed = victim["hostname"]
        assert killed in WORKERS
        scaleout.cluster.kill(killed)
    finally:
        locker.rollback()
        locker.close()

    assert scaleout.wait_for_run(run_id) == "success", scaleout.task_instances(run_id)
    (survivor,) = set(WORKERS) - {killed}
    retried = scaleout.task_instances(run_id)["purge_postgres[0]"]
    assert retried["state"] == "success"
    assert retried["try_number"] == 2
    assert retried["hostname"] == survivor
    (first,) = [t for t in scaleout.earlier_tries(run_id) if t["task"] == "purge_postgres[0]"]
    assert (first["try_number"], first["hostname"], first["state"]) == (1, killed, "failed")
    # Everything after the kill ran on the survivor.
    after = [ti for ti in scaleout.task_instances(run_id).values() if ti["try_number"] > 1]
    assert {ti["hostname"] for ti in after} == {survivor}
    assert_removed_exactly_once(stores, run_id)
