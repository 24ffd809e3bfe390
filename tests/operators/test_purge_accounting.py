"""A purge killed mid-way (SIGKILL, as an OOM kill or a lost node does it) is accounted for.

The retention operator runs in a process of its own on a real store of each kind (a
PostgreSQL table beside the ledger or in another database, an S3 prefix, an SFTP tree),
removing in small units; the test kills it with SIGKILL at a random unit, then compares
what left the store with what the ledger says: a ``purge_progress started`` entry, and one
``committed`` entry per final unit (a committed transaction, a DeleteObjects call, a unit
of file removes). A unit recorded in its own transaction is exact at once; any other is
opened as a purge intent before it starts, and a kill between the unit and its entry
leaves the intent open: the next purge of the store settles it in the killed task's name.
After that rerun the killed task's entries add up to exactly what it removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lethe import connections
from lethe.control import ledger
from tests.databases import new_database

ROOT = Path(__file__).resolve().parents[2]
BATCH = 40
EXPIRED, YOUNG = 2_000, 2_400

CHILD = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from lethe.operators.retention import PostgresRetentionOperator
    from lethe.stores.postgres import blocks, connection

    # Two sessions walk the expired blocks at once, as on a large table (parts of 2 blocks
    # here, where a table needs 8 MB): a kill also finds the other session mid-transaction.
    blocks.MIN_PART_BLOCKS = 2

    # Slow enough to be killed mid-way: a pause after each committed transaction, before
    # or after its entry is written when that comes after the commit ("before" puts the
    # kill where an entry written after the commit would be lost); none for a run that is
    # not killed ("none").
    committed = connection.Progress.committed
    pause = sys.argv[4] if len(sys.argv) > 4 else "after"
    def slowly(self, count):
        if pause == "before":
            time.sleep(0.05)
        committed(self, count)
        if pause == "after":
            time.sleep(0.05)
    connection.Progress.committed = slowly

    sys.stdin.readline()  # the test's go (start_purge)
    moment = datetime(2026, 6, 1, tzinfo=UTC)
    ti = SimpleNamespace(dag_id="retention_kill", task_id="purge_postgres", run_id=sys.argv[1],
                         map_index=0)
    PostgresRetentionOperator(
        task_id="purge_postgres", family_id="website", category_id="web_statistics",
        store_index=0, batch_size=int(sys.argv[2]),
        policy_dir=sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None,
    ).execute({"ti": ti, "logical_date": moment, "dag_run": SimpleNamespace(run_after=moment)})
    """
)


@pytest.fixture
def visits(stack):
    """A telecom database of its own holding web visits, half of them long expired."""
    from lethe.control.migrate import apply_migrations
    from lethe_dev.synthetic.schema import apply_reference_schema_on

    with psycopg.connect(stack.postgres_dsn) as control:  # the ledger the operator writes
        apply_migrations(control)
    with new_database(stack, "killed_purge") as dsn:
        with psycopg.connect(dsn) as conn:
            apply_reference_schema_on(conn)
            conn.execute(
                "INSERT INTO telecom.web_visits (visit_id, visitor_id, page_path, visited_at)"
                " SELECT g, 'v' || g, '/', CASE WHEN g <= %s THEN timestamptz '2020-01-01'"
                " + g * interval '1 minute' ELSE timestamptz '2026-05-20' END"
                " FROM generate_series(1, %s) AS g",
                (EXPIRED, EXPIRED + YOUNG),
            )
            conn.commit()
        yield dsn


def _env(stack, dsn: str) -> dict[str, str]:
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(dsn)
    telecom = {
        "conn_type": "postgres",
        "host": parts["host"],
        "port": int(parts["port"]),
        "login": parts["user"],
        "schema": parts["dbname"],
    }
    return {
        **os.environ,
        connections.env_var_name(connections.TELECOM_DB): json.dumps(telecom),
        "PYTHONPATH": os.pathsep.join(str(ROOT / f) for f in ("plugins", "devkit")),
    }


def _progress(stack, run_id: str) -> list[dict]:
    with psycopg.connect(stack.postgres_dsn) as control:
        entries = ledger.entries(control, dag_id="retention_kill", run_id=run_id)
    return [e for e in entries if e["action"] == "purge_progress"]


@pytest.fixture
def start_purge():
    """A function: start a purge child ahead, a :class:`subprocess.Popen`. It loads its
    modules (over a second), then waits for a line on its stdin before it runs, so the
    loading overlaps the test's other work: seeding, or the run before it. A child still
    running at the end of the test is killed."""
    children: list[subprocess.Popen] = []

    def start(command: list[str], env: dict[str, str]) -> subprocess.Popen:
        child = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        children.append(child)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait(30)
        for pipe in (child.stdin, child.stderr):
            with contextlib.suppress(OSError):
                pipe.close()


def _kill_at_random(stack, child: subprocess.Popen, run_id: str, most: int):
    """Let ``child`` (a purge writing the ledger as ``run_id``, from ``start_purge``) run and
    SIGKILL it once it has written between 2 and ``most`` committed entries."""
    kill_after = random.randint(2, most)
    child.stdin.write(b"go\n")
    child.stdin.close()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and child.poll() is None:
        committed = [e for e in _progress(stack, run_id) if e["outcome"] == "committed"]
        if len(committed) >= kill_after:
            break
        time.sleep(0.02)
    assert child.poll() is None, child.stderr.read().decode()[-2000:]
    child.send_signal(signal.SIGKILL)
    child.wait(30)


def _rerun(child: subprocess.Popen) -> None:
    """Let ``child`` (the purge again, from ``start_purge``) run to its end, as the next
    scheduled run would."""
    _, stderr = child.communicate(b"go\n", timeout=300)
    assert child.returncode == 0, stderr.decode()[-3000:]


def _open_intents(stack, store_prefix: str) -> int:
    with psycopg.connect(stack.postgres_dsn) as control:
        (count,) = control.execute(
            "SELECT count(*) FROM privacy.purge_intents WHERE store LIKE %s",
            (store_prefix + "%",),
        ).fetchone()
    return count


def _committed(progress: list[dict]) -> int:
    return sum(e["counts"]["removed"] for e in progress if e["outcome"] == "committed")


def _settled_exactly(stack, run_id: str, rerun_id: str, removable: int, removed: int) -> list:
    """Check the killed run's entries after ``rerun_id`` settled them: started with what
    was ``removable``, nothing in doubt, and its committed entries (the settled ones
    included) add up to what it ``removed``. :return: the entries the rerun settled."""
    progress = _progress(stack, run_id)
    assert progress[0]["outcome"] == "started"
    assert progress[0]["counts"] == {"removable": removable}
    assert not [e for e in progress if e["outcome"] == "in_doubt"]
    assert _committed(progress) == removed
    settled = [e for e in progress if "reconciled_by" in e["details"]]
    assert all(e["details"]["reconciled_by"] == rerun_id for e in settled)
    return settled


def test_a_purge_of_a_table_in_another_database_killed_at_a_random_transaction_is_exact(
    stack, visits, start_purge
):
    """The store is not in the ledger's database: each transaction opens an intent naming
    its transaction id before its commit. The kill comes after a commit, before its entry
    (where an entry written only after the commit would be lost); the next purge settles
    the open intent as committed, in the killed task's name."""
    run_id = f"killed-{random.randrange(10**9)}"
    rerun_id = f"{run_id}-rerun"
    env = _env(stack, visits)
    child = start_purge([sys.executable, "-c", CHILD, run_id, str(BATCH), "", "before"], env)
    rerun = start_purge([sys.executable, "-c", CHILD, rerun_id, str(BATCH), "", "none"], env)
    _kill_at_random(stack, child, run_id, EXPIRED // BATCH - 10)

    def expired_left() -> int:
        with psycopg.connect(visits) as conn:
            (left,) = conn.execute(
                "SELECT count(*) FROM telecom.web_visits WHERE visited_at < '2021-01-01'"
            ).fetchone()
        return left

    removed = EXPIRED - expired_left()
    assert 0 < removed < EXPIRED, "the kill came before or after the purge, not during it"
    before = _committed(_progress(stack, run_id))
    assert before <= removed <= before + BATCH  # at most the transaction in flight is open

    _rerun(rerun)

    settled = _settled_exactly(stack, run_id, rerun_id, EXPIRED, removed)
    assert all(e["task_id"] == "purge_postgres[0]" for e in settled)
    # The rerun's own entries are its own, and it removed the rest.
    assert expired_left() == 0
    assert _committed(_progress(stack, rerun_id)) == EXPIRED - removed
    assert _open_intents(stack, "postgres:lethe_telecom_db:telecom.web_visits") == 0
    with psycopg.connect(visits) as conn:
        (young,) = conn.execute(
            "SELECT count(*) FROM telecom.web_visits WHERE visited_at >= '2021-01-01'"
        ).fetchone()
    assert young == YOUNG


def test_a_purge_of_a_table_beside_the_ledger_is_recorded_exactly(stack, tmp_path, start_purge):
    """Where the store's table and the ledger share a database, each transaction's entry
    commits with its rows: whatever the moment of the kill, the ledger is exact."""
    import shutil

    from lethe.control.migrate import apply_migrations

    schema = f"killtest_{random.randrange(10**9)}"
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "include" / "policies", policies)
    website = policies / "website.yaml"
    website.write_text(
        website.read_text().replace("table: telecom.web_visits", f"table: {schema}.web_visits")
    )
    run_id = f"killed-{schema}"
    env = {
        **os.environ,
        # A login that may write the ledger beside the table: the stack's telecom connection
        # is a store login, which may not (docs/security.md "Roles"), so the tables' owner.
        connections.env_var_name(connections.TELECOM_DB): os.environ[
            connections.env_var_name(connections.TELECOM_ADMIN_DB)
        ],
        "PYTHONPATH": os.pathsep.join(str(ROOT / f) for f in ("plugins", "devkit")),
    }
    command = [sys.executable, "-c", CHILD, run_id, str(BATCH), str(policies), "before"]
    child = start_purge(command, env)  # loads its modules while the table is made
    with psycopg.connect(stack.postgres_dsn) as conn:
        apply_migrations(conn)
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(
            f"CREATE TABLE {schema}.web_visits (visit_id bigint PRIMARY KEY, visitor_id text"
            " NOT NULL, ip_address inet, user_agent text, page_path text NOT NULL,"
            " visited_at timestamptz NOT NULL)"
        )
        conn.execute(
            # The schema name is this test's own (digits only).
            f"INSERT INTO {schema}.web_visits (visit_id, visitor_id, page_path, visited_at)"  # noqa: S608
            " SELECT g, 'v' || g, '/', CASE WHEN g <= %s THEN timestamptz '2020-01-01'"
            " + g * interval '1 minute' ELSE timestamptz '2026-05-20' END"
            " FROM generate_series(1, %s) AS g",
            (EXPIRED, EXPIRED + YOUNG),
        )
        conn.commit()
    _kill_at_random(stack, child, run_id, EXPIRED // BATCH - 10)
    with psycopg.connect(stack.postgres_dsn) as conn:
        (left,) = conn.execute(
            f"SELECT count(*) FROM {schema}.web_visits WHERE visited_at < '2021-01-01'"  # noqa: S608
        ).fetchone()
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
    removed = EXPIRED - left
    progress = _progress(stack, run_id)
    recorded = sum(e["counts"]["removed"] for e in progress if e["outcome"] == "committed")
    assert progress[0]["outcome"] == "started"
    assert 0 < removed < EXPIRED, "the kill came before or after the purge, not during it"
    assert recorded == removed


# --------------------------------------------------------------- S3 and SFTP stores

OBJECTS = 300
OBJECT_CHILD = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from lethe.operators import retention as operators
    from lethe.stores.s3 import deletion
    from lethe.stores.sftp import access, retention

    kind, run_id, policy_dir, pace = sys.argv[1:5]
    # Small units; slow ones in a run to be killed mid-way ("slow"), not in its rerun.
    deletion.DELETE_BATCH = 20
    retention.REPORT_EVERY = 10
    if pace == "slow":
        call = deletion.Deleter._call
        def slow_call(self, batch):
            time.sleep(0.05)
            return call(self, batch)
        deletion.Deleter._call = slow_call
        remove = access.RemovePipeline.remove
        def slow_remove(self, path, done):
            time.sleep(0.01)
            return remove(self, path, done)
        access.RemovePipeline.remove = slow_remove

    operator = {"s3": operators.S3RetentionOperator, "sftp": operators.SFTPRetentionOperator}
    family, category = {
        "s3": ("subject_exports", "subject_exports"),
        "sftp": ("call_recordings", "support_call_recordings"),
    }[kind]
    sys.stdin.readline()  # the test's go (start_purge)
    moment = datetime(2026, 6, 1, tzinfo=UTC)
    ti = SimpleNamespace(dag_id="retention_kill", task_id=f"purge_{kind}", run_id=run_id,
                         map_index=0)
    operator[kind](
        task_id=f"purge_{kind}", family_id=family, category_id=category, store_index=0,
        policy_dir=policy_dir, override_guard="True", override_reason="the kill test",
    ).execute({"ti": ti, "logical_date": moment, "dag_run": SimpleNamespace(run_after=moment)})
    """
)


def _policies(tmp_path: Path, kind: str, place: str) -> Path:
    """A copy of the policies whose store of ``kind`` is moved to ``place`` (a bucket, or
    an SFTP root), so the test's items are the store's only ones."""
    import shutil

    folder = tmp_path / "policies"
    shutil.copytree(ROOT / "include" / "policies", folder)
    if kind == "s3":
        path = folder / "subject_exports.yaml"
        path.write_text(path.read_text().replace("bucket: lethe-exports", f"bucket: {place}"))
    else:
        path = folder / "call_recordings.yaml"
        path.write_text(path.read_text().replace("root: /recordings/support", f"root: {place}"))
    return folder


def _seed_objects(stack, bucket: str) -> Any:
    import boto3

    from lethe import connections as conns

    extra = json.loads(os.environ[conns.env_var_name(conns.OBJECT_STORE)])
    client = boto3.client(
        "s3",
        endpoint_url=extra["extra"]["endpoint_url"],
        aws_access_key_id=extra["login"],
        aws_secret_access_key=extra["password"],
        region_name=extra["extra"].get("region_name", "us-east-1"),
    )
    from concurrent.futures import ThreadPoolExecutor

    client.create_bucket(Bucket=bucket)
    keys = [f"exports/2024/01/02/{n:08d}-kill.zip" for n in range(OBJECTS)]
    # Young ones too, which the purge must neither count nor remove; a few are enough (the
    # policy's purge guard is 100% and it has no stale guard, so their share is no matter).
    keys += [f"exports/2026/05/30/{n:08d}-young.zip" for n in range(20)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=b"x"), keys))

    def expired_left() -> int:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix="exports/2024/"
        )
        return sum(len(page.get("Contents", ())) for page in pages)

    return expired_left


def _seed_files(stack, root: str) -> Any:
    local = stack.sftp_root / root.lstrip("/")
    day = local / "2024" / "03" / "15"
    day.mkdir(parents=True)
    for n in range(OBJECTS):
        (day / f"20240315T{n // 60:02d}{n % 60:02d}00Z_+31611111111_k{n}.wav").write_bytes(b"x")
    young = local / "2026" / "05" / "30"
    young.mkdir(parents=True)
    for n in range(OBJECTS):
        (young / f"20260530T{n // 60:02d}{n % 60:02d}00Z_+31611111111_y{n}.wav").write_bytes(b"x")

    def expired_left() -> int:
        return len(list(day.glob("*.wav"))) if day.is_dir() else 0

    return expired_left


@pytest.mark.parametrize(
    ("kind", "in_flight"),
    [
        # DeleteObjects calls of 20 keys, up to 4 in flight.
        ("s3", 4 * 20),
        # Units of 10 file removes; up to 64 removes in flight.
        ("sftp", 10 + 64),
    ],
)
def test_an_object_or_file_purge_killed_mid_way_is_exact_after_the_next_run(
    stack, tmp_path, start_purge, kind, in_flight
):
    from lethe.control.migrate import apply_migrations

    with psycopg.connect(stack.postgres_dsn) as control:
        apply_migrations(control)
    tag = f"kill{random.randrange(10**9)}"
    place = f"lethe-{tag}" if kind == "s3" else f"/{tag}/support"
    policies = _policies(tmp_path, kind, place)
    run_id = f"killed-{kind}-{tag}"
    rerun_id = f"{run_id}-rerun"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(ROOT / f) for f in ("plugins", "devkit")),
    }
    command = [sys.executable, "-c", OBJECT_CHILD, kind, run_id, str(policies), "slow"]
    child = start_purge(command, env)
    rerun = start_purge([*command[:4], rerun_id, str(policies), "fast"], env)
    # The purges load their modules meanwhile.
    expired_left = (_seed_objects if kind == "s3" else _seed_files)(stack, place)
    _kill_at_random(stack, child, run_id, 8)

    removed = OBJECTS - expired_left()
    assert 0 < removed < OBJECTS, "the kill came before or after the purge, not during it"
    before = _committed(_progress(stack, run_id))
    assert before <= removed <= before + in_flight

    _rerun(rerun)

    _settled_exactly(stack, run_id, rerun_id, OBJECTS, removed)
    assert expired_left() == 0
    assert _committed(_progress(stack, rerun_id)) == OBJECTS - removed
    assert _open_intents(stack, f"{kind}:%{place}") == 0
