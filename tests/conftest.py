"""Session-wide test harness: one run directory, one Airflow home, one embedded stack.

Airflow reads its configuration when first imported, so the environment is set here,
before any test module imports it.

Each pytest session keeps its long-lived state in a directory of its own in the checkout,
``.lethe/test-runs/<pid>-<random>/``: ``airflow/`` (AIRFLOW_HOME: the SQLite metadata
database, task logs) and ``stack/`` (the embedded servers: PostgreSQL's data directory and
log, the SFTP keys and served root). None of it lives under pytest's basetemp (the rotating
``/tmp/pytest-of-<user>``, or whatever ``--basetemp`` names, which pytest empties at start),
which holds only the tests' own ``tmp_path`` scratch. No two sessions share a directory, a
port or a database: two runs, in one checkout or in two, can run at once. A session that
passes removes its directory; one that fails (or is interrupted) keeps it for inspection,
and says where. When a session starts, it stops any server a dead run left behind and
removes the directories of dead runs but the newest three.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Where every session's run directory lives.
RUNS_DIR = ROOT / ".lethe" / "test-runs"
#: How many directories of finished (failed or killed) runs are kept for inspection.
KEEP_FINISHED_RUNS = 3


def _run_owner(run_dir: Path) -> int | None:
    """The pid of the session that made ``run_dir`` (its name starts with it)."""
    head = run_dir.name.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _prune_finished_runs() -> None:
    """Stop the servers dead runs left behind; remove all but the newest dead runs' dirs.

    A directory whose session still runs is never touched.
    """
    from lethe.exceptions import StackError
    from lethe_dev.stack.postgres import EmbeddedPostgres

    finished = [
        path
        for path in RUNS_DIR.iterdir()
        if path.is_dir() and (pid := _run_owner(path)) is not None and not _alive(pid)
    ]
    finished.sort(key=lambda path: path.stat().st_mtime, reverse=True)
    for index, path in enumerate(finished):
        postgres = EmbeddedPostgres(path / "stack" / "postgres")
        try:
            # A run killed with SIGKILL leaves its PostgreSQL server running.
            postgres.stop_leftover()
        except StackError:
            continue  # keep what cannot be cleaned up safely
        if index >= KEEP_FINISHED_RUNS:
            shutil.rmtree(path, ignore_errors=True)


for path in (ROOT / "plugins", ROOT):  # the engine, and tests.* helpers for test modules
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

RUNS_DIR.mkdir(parents=True, exist_ok=True)
RUN_DIR = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=RUNS_DIR))
_AIRFLOW_HOME = RUN_DIR / "airflow"
_AIRFLOW_HOME.mkdir()

os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"
# The DAG tests run at the level users run: a lower one once hid a task crashing in a log
# call (DEBUG, asked for explicitly, stays).
if os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "").upper() != "DEBUG":
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "INFO"
os.environ.setdefault("LETHE_POLICY_DIR", str(ROOT / "include" / "policies"))
_prune_finished_runs()  # after the environment is set: it imports the engine


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """Remove the run directory after a passing session (the session fixtures, the stack
    among them, are torn down by then); keep it otherwise."""
    if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        shutil.rmtree(RUN_DIR, ignore_errors=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if RUN_DIR.exists():
        terminalreporter.write_line(
            f"lethe: this run's servers, Airflow home and logs are kept in {RUN_DIR}"
        )


@pytest.fixture(scope="session")
def run_dir() -> Path:
    """This session's own directory (``.lethe/test-runs/<pid>-<random>``)."""
    return RUN_DIR


@pytest.fixture(scope="session")
def stack(run_dir):
    """The embedded PostgreSQL, SFTP and S3 servers, with their AIRFLOW_CONN_* variables set
    (``lethe_control_db`` logs in as the runtime role, a member of ``lethe_runtime``).

    Their state is in the run directory's ``stack/``. ``LETHE_TEST_POSTGRES_DSN`` points the
    suite at an existing PostgreSQL server instead.
    """
    from lethe_dev.stack import EmbeddedStack

    with EmbeddedStack(state_dir=run_dir / "stack") as running:
        # Airflow's components use the runtime role; the owner's connection is there for
        # the lethe_control_schema DAG, which migrates (the suite migrates as the owner too).
        os.environ.update(running.airflow_env())
        os.environ.update(running.admin_env())
        yield running


@pytest.fixture
def scratch_database(stack):
    """A new, empty database on the stack's PostgreSQL server; dropped afterwards.

    Yields a libpq URI; for tests that need a schema of their own from scratch.
    """
    from tests.databases import new_database

    with new_database(stack) as uri:
        yield uri


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's metadata database (SQLite in the session's AIRFLOW_HOME), migrated once."""
    import subprocess

    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, timeout=300)
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


@pytest.fixture(scope="session")
def dagbag(airflow_db):
    """Every DAG in dags/, parsed once and synced to the metadata database for dag.test()."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import sync_bag_to_db
    from airflow.models import DagBag

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, bundle_name="dags-folder", bundle_version=None)
    return bag
