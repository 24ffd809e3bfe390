"""Where local runs keep their state: the checkout's ``.lethe/``, never ``~/airflow`` or
pytest's rotating temporary directories.

The command lines run in subprocesses against a copy of the package in a checkout of its
own (``tmp_path``), with ``HOME`` pointing at an empty directory, so what they write by
default can be looked at without touching the real checkout.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from lethe import checkout
from lethe_dev.stack.postgres import EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[2]
RUNS_DIR = ROOT / ".lethe" / "test-runs"

# --- the test session's own run directory ----------------------------------------------------


def test_session_state_lives_in_its_own_run_directory(stack, run_dir, tmp_path_factory):
    assert run_dir.parent == RUNS_DIR
    assert run_dir.name.startswith(f"{os.getpid()}-")
    assert stack.state_dir == run_dir / "stack"
    assert Path(os.environ["AIRFLOW_HOME"]) == run_dir / "airflow"
    assert os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith(
        f"sqlite:///{run_dir / 'airflow'}/"
    )
    # Neither under pytest's basetemp (given or not) nor under its rotating per-user root,
    # which other pytest runs on the machine prune.
    basetemp = tmp_path_factory.getbasetemp().resolve()
    rotating = Path(tempfile.gettempdir()).resolve() / f"pytest-of-{getpass.getuser()}"
    for state in (stack.state_dir.resolve(), Path(os.environ["AIRFLOW_HOME"]).resolve()):
        assert not state.is_relative_to(basetemp)
        assert not state.is_relative_to(rotating)


def test_postgres_data_directory_is_in_the_run_directory(stack, run_dir):
    if not isinstance(stack.postgres, EmbeddedPostgres):
        pytest.skip("LETHE_TEST_POSTGRES_DSN: an external server keeps its own data")
    assert (run_dir / "stack" / "postgres" / "data" / "PG_VERSION").is_file()
    assert (run_dir / "stack" / "postgres" / "data" / "postmaster.pid").is_file()


def test_tasks_log_at_info(airflow_db):
    """The DAG tests run at the level a deployment runs at (a lower one hides log crashes)."""
    from airflow.configuration import conf

    assert conf.get("logging", "logging_level") in ("INFO", "DEBUG")


# --- PostgreSQL in a deep directory -----------------------------------------------------------


def test_postgres_in_a_deep_directory_listens_on_tcp_only(tmp_path):
    """A Unix socket path holds at most 107 bytes: deeper, the server goes without one."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    server = EmbeddedPostgres(deep / "postgres")
    assert len(str(server.base_dir / ".s.PGSQL.65535")) > 107
    server.start()
    try:
        assert server.socket_dir is None
        assert not list(server.base_dir.glob(".s.PGSQL.*"))
        with psycopg.connect(server.dsn) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("lethe",)
    finally:
        server.stop()
    assert not (server.data_dir / "postmaster.pid").exists()


def test_postgres_in_a_short_directory_also_has_its_socket():
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="lethe-pg-")) / "postgres")
    try:
        server.start()
        try:
            assert server.socket_dir == server.base_dir
            assert (server.base_dir / f".s.PGSQL.{server.port}").is_socket()
        finally:
            server.stop()
    finally:
        shutil.rmtree(server.base_dir.parent, ignore_errors=True)


# --- the command lines never write to ~/airflow ----------------------------------------------


@pytest.fixture(scope="module")
def other_checkout(tmp_path_factory) -> Path:
    """A checkout of its own: a copy of the engine and the dev kit, and a dags/ folder."""
    root = tmp_path_factory.mktemp("checkout")
    for package in ("plugins/lethe", "devkit/lethe_dev"):
        shutil.copytree(
            ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    (root / "dags").mkdir()
    # `lethe.control migrate` validates the policy catalog before it connects.
    shutil.copytree(ROOT / "include" / "policies", root / "include" / "policies")
    return root


def _run(module: str, *args: str, checkout_root: Path, home: Path, cwd: Path):
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "LETHE_"))
    }
    env.update(
        HOME=str(home),
        PYTHONPATH=os.pathsep.join(str(checkout_root / f) for f in ("plugins", "devkit")),
    )
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.parametrize(
    ("module", "args", "imports_airflow"),
    [
        ("lethe_dev.stack", ["--help"], False),
        ("lethe_dev.stack", ["status"], False),
        ("lethe.control", ["--help"], False),
        # Both import Airflow (a hook), then fail: no connection is defined.
        ("lethe.control", ["migrate"], True),
        ("lethe_dev.synthetic", ["seed", "--stores", "s3", "--as-of", "2024-01-01"], True),
        ("lethe_dev.synthetic", ["--help"], False),
        ("lethe_dev.demo", ["--help"], False),
    ],
)
def test_command_lines_keep_airflow_home_in_the_checkout(
    other_checkout, tmp_path, module, args, imports_airflow
):
    home = tmp_path / "home"
    home.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(other_checkout / ".lethe", ignore_errors=True)
    result = _run(module, *args, checkout_root=other_checkout, home=home, cwd=elsewhere)

    assert "Traceback" not in result.stderr or imports_airflow, result.stderr
    assert not (home / "airflow").exists()
    assert list(home.iterdir()) == []
    assert list(elsewhere.iterdir()) == []  # nor in the current directory
    # Airflow makes its home (a logs/ folder in it) on its first import.
    airflow_home = other_checkout / ".lethe" / "airflow"
    assert airflow_home.is_dir() == imports_airflow, result.stderr


def test_stack_command_defaults_to_the_checkouts_state_directory(other_checkout, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    result = _run(
        "lethe_dev.stack", "status", checkout_root=other_checkout, home=home, cwd=tmp_path
    )
    assert result.returncode == 1
    assert f"not up in {other_checkout / '.lethe' / 'stack'}" in result.stdout


def test_an_airflow_home_the_user_set_is_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "mine"))
    assert checkout.use_local_airflow_home() == tmp_path / "mine"
    assert os.environ["AIRFLOW_HOME"] == str(tmp_path / "mine")
    monkeypatch.delenv("AIRFLOW_HOME")
    assert checkout.use_local_airflow_home() == ROOT / ".lethe" / "airflow"
    assert os.environ["AIRFLOW_HOME"] == str(ROOT / ".lethe" / "airflow")


def test_demo_uses_its_own_airflow_home_whatever_the_shell_says(monkeypatch, tmp_path):
    """The demo migrates and fills its metadata database: never the user's or a deployment's."""
    from lethe_dev import demo

    names = (
        "AIRFLOW_HOME",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CORE__DAGS_FOLDER",
        "AIRFLOW__CORE__PLUGINS_FOLDER",
        "AIRFLOW__CORE__LOAD_EXAMPLES",
        "AIRFLOW__LOGGING__LOGGING_LEVEL",
    )
    for name in names:  # monkeypatch restores each afterwards
        monkeypatch.setenv(name, "postgresql://prod" if "SQL" in name else "/home/me/airflow")
    monkeypatch.setenv("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

    demo._prepare_airflow_home(tmp_path / "demo")

    assert os.environ["AIRFLOW_HOME"] == str(tmp_path / "demo" / "airflow")
    assert os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        f"sqlite:///{tmp_path / 'demo' / 'airflow'}/airflow.db"
    )
    assert os.environ["AIRFLOW__CORE__DAGS_FOLDER"] == str(ROOT / "dags")
    assert os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] == "INFO"
