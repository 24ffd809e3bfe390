"""``python -m lethe_dev.stack.service`` (``make airflow``): its configuration and its stop.

Starting the whole service (stack, seeding, metadata migration, four Airflow components)
takes over a minute on two cores, so the suite checks the pieces: the environment every
component runs with, the secrets kept between starts, and that ``down`` ends each
component's whole process group, with SIGKILL for what ignores SIGTERM. The end-to-end
run (trigger a retention DAG through the REST API) is measured by hand: see
docs/operations.md.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lethe_dev.stack import service

ROOT = Path(__file__).resolve().parents[2]
DSN = "postgresql://postgres@127.0.0.1:54321/lethe"


def _env(tmp_path: Path, **overrides) -> dict[str, str]:
    arguments = {
        "root": ROOT,
        "service_dir": tmp_path,
        "connections": {"AIRFLOW_CONN_LETHE_TELECOM_DB": "{}"},
        "postgres_dsn": DSN,
        "port": 8091,
        "parallelism": 4,
        "service_secrets": {"fernet_key": "f", "jwt_secret": "j"},
        **overrides,
    }
    return service.airflow_env(**arguments)


def test_metadata_lives_in_its_own_database_on_the_stacks_postgresql(tmp_path):
    env = _env(tmp_path)
    url = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert url == "postgresql+psycopg://postgres@127.0.0.1:54321/airflow"
    assert "sqlite" not in url


def test_metadata_url_keeps_a_password_and_a_socket_directory():
    assert (
        service.metadata_url("postgresql://u:p%40ss@10.0.0.1:6543/x")
        == "postgresql+psycopg://u:p%40ss@10.0.0.1:6543/airflow"
    )
    socket = service.metadata_url("host=/tmp/pg port=5433 user=postgres dbname=lethe")
    assert socket == "postgresql+psycopg://postgres@/airflow?host=/tmp/pg&port=5433"


def test_every_component_runs_localexecutor_sized_for_the_machine(tmp_path):
    env = _env(tmp_path, parallelism=service.default_parallelism(2))
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "4"
    assert env["AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG"] == "4"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8091/execution/"
    assert env["AIRFLOW__API__PORT"] == "8091"
    assert float(env["AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT"]) > 5.0


def test_everything_stays_in_the_checkout_and_every_dag_and_connection_is_wired(tmp_path):
    env = _env(tmp_path)
    assert env["AIRFLOW_HOME"] == str(ROOT / ".lethe" / "airflow")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(ROOT / "dags")
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(ROOT / "plugins")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW_CONN_LETHE_TELECOM_DB"] == "{}"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(
        tmp_path / service.PASSWORDS_FILE
    )
    assert "airflow.api_fastapi.auth.managers.simple" in env["AIRFLOW__CORE__AUTH_MANAGER"]
    assert not any(str(Path.home() / "airflow") in value for value in env.values())


def test_secrets_and_the_admin_password_are_made_once_and_private(tmp_path):
    first = service.ensure_secrets(tmp_path)
    password = service.ensure_admin_password(tmp_path)

    assert service.ensure_secrets(tmp_path) == first
    assert service.ensure_admin_password(tmp_path) == password
    assert len(first["jwt_secret"]) >= 32
    for name in (service.SECRETS_FILE, service.PASSWORDS_FILE):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    env = _env(tmp_path, service_secrets=first)
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == first["jwt_secret"]
    assert env["AIRFLOW__CORE__FERNET_KEY"] == first["fernet_key"]


# A stand-in for a component: "airflow" in its command line (how the service recognises
# its processes), a child in the same process group, and SIGTERM ignored or obeyed.
_COMPONENT = """
import signal, subprocess, sys, time  # airflow component stand-in
if sys.argv[1] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)  # airflow"])
print(child.pid, flush=True)
time.sleep(600)
"""


def _component(tmp_path: Path, name: str, behaviour: str) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen(
        [sys.executable, "-c", _COMPONENT, behaviour],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    child = int(process.stdout.readline())
    (tmp_path / f"{name}.pid").write_text(f"{process.pid}\n")
    return process, child


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state == "Z"


def test_down_ends_each_process_group_and_kills_what_ignores_sigterm(tmp_path):
    polite, polite_child = _component(tmp_path, "scheduler", "polite")
    stubborn, stubborn_child = _component(tmp_path, "api-server", "stubborn")
    try:
        assert service.component_pid(tmp_path, "scheduler") == polite.pid

        # SIGTERM's default action ends the polite group at once; the wait is the stubborn's.
        killed = service._stop_components(tmp_path, timeout=1)

        assert killed == ["api-server"]
        polite.wait(timeout=10)
        stubborn.wait(timeout=10)
        deadline = time.monotonic() + 10
        while not (_gone(polite_child) and _gone(stubborn_child)):
            assert time.monotonic() < deadline, "a component's child outlived down"
            time.sleep(0.1)
        assert not list(tmp_path.glob("*.pid"))
        assert service.component_pid(tmp_path, "scheduler") is None
    finally:
        for process in (polite, stubborn):
            if process.poll() is None:
                os.killpg(process.pid, 9)


@pytest.mark.parametrize("command", ["up", "down", "status", "env"])
def test_the_command_line_knows_its_commands(command):
    args = service.build_parser().parse_args([command, "--port", "8099"])
    assert (args.command, args.port) == (command, 8099)
    assert args.parallelism == service.default_parallelism()
