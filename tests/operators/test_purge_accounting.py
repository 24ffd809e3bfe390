"""A purge killed mid-way (SIGKILL, as an OOM kill or a lost node does it) is accounted for.

The retention operator runs in a process of its own on a real table, in small committed
transactions; the test kills it with SIGKILL at a random transaction, then compares what
left the table with what the ledger says: a ``purge_progress started`` entry, and one
``committed`` entry per committed transaction. A kill between a transaction's commit and
its ledger entry leaves at most that one transaction's rows unrecorded (bounded by the
batch size); nothing else may be missing, and the ledger never claims more than was removed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

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
    from lethe.stores.postgres import connection

    # Slow enough to be killed mid-way: a pause after each committed transaction.
    committed = connection.Progress.committed
    def slowly(self, count):
        committed(self, count)
        time.sleep(0.05)
    connection.Progress.committed = slowly

    moment = datetime(2026, 6, 1, tzinfo=UTC)
    ti = SimpleNamespace(dag_id="retention_kill", task_id="purge_postgres", run_id=sys.argv[1],
                         map_index=0)
    PostgresRetentionOperator(
        task_id="purge_postgres", family_id="website", category_id="web_statistics",
        store_index=0, batch_size=int(sys.argv[2]),
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


def test_a_purge_killed_at_a_random_transaction_is_in_the_ledger(stack, visits):
    run_id = f"killed-{random.randrange(10**9)}"
    kill_after = random.randint(2, EXPIRED // BATCH - 10)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, run_id, str(BATCH)],
        env=_env(stack, visits),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            committed = [e for e in _progress(stack, run_id) if e["outcome"] == "committed"]
            if len(committed) >= kill_after:
                break
            time.sleep(0.02)
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()

    with psycopg.connect(visits) as conn:
        (left,) = conn.execute(
            "SELECT count(*) FROM telecom.web_visits WHERE visited_at < '2021-01-01'"
        ).fetchone()
        (young,) = conn.execute(
            "SELECT count(*) FROM telecom.web_visits WHERE visited_at >= '2021-01-01'"
        ).fetchone()
    removed = EXPIRED - left
    progress = _progress(stack, run_id)
    assert progress[0]["outcome"] == "started"
    assert progress[0]["counts"] == {"removable": EXPIRED}
    recorded = sum(e["counts"]["removed"] for e in progress if e["outcome"] == "committed")
    assert 0 < removed < EXPIRED, "the kill came before or after the purge, not during it"
    assert young == YOUNG
    # Never more than was removed; at most the one transaction being recorded when it died.
    assert recorded <= removed <= recorded + BATCH
    # Every committed entry is of one whole transaction, in order.
    so_far = [e["counts"]["removed_so_far"] for e in progress if e["outcome"] == "committed"]
    assert so_far == sorted(so_far)
    assert so_far[-1] == recorded
