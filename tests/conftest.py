"""Session-wide test harness: one Airflow home and one embedded stack for the whole run.

Airflow reads its configuration when first imported, so the environment is set here,
before any test module imports it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="lethe-airflow-home-"))

os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"
os.environ.setdefault("LETHE_POLICY_DIR", str(ROOT / "include" / "policies"))
for path in (ROOT / "plugins", ROOT):  # the engine, and tests.* helpers for test modules
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """The embedded PostgreSQL, SFTP and S3 servers, with their AIRFLOW_CONN_* variables set.

    ``LETHE_TEST_POSTGRES_DSN`` points the suite at an existing PostgreSQL server instead.
    """
    from lethe.stack import EmbeddedStack

    with EmbeddedStack(state_dir=tmp_path_factory.mktemp("stack")) as running:
        os.environ.update(running.airflow_env())
        yield running


@pytest.fixture
def scratch_database(stack):
    """A new, empty database on the stack's PostgreSQL server; dropped afterwards.

    Yields a libpq URI; for tests that need a schema of their own from scratch.
    """
    import uuid

    import psycopg2
    from psycopg2 import sql

    name = f"scratch_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(stack.postgres_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = stack.postgres_dsn.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


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
