"""Lethe in a running Airflow: ``python -m lethe_dev.stack.service up | down | status | env``.

``up`` makes one local Airflow 3 service on the embedded stack, all of it under the
checkout's ``.lethe/``:

1. the embedded stores (``python -m lethe_dev.stack up``, in the background, ``.lethe/stack``);
2. the control schema migrated and, when the telecom schema is missing (or ``--reseed``),
   the synthetic provider seeded at scale 1;
3. Airflow's metadata in a database of its own (``airflow``) on the stack's PostgreSQL
   server, migrated with ``airflow db migrate``, and the pools the policies name
   (``deploy/compose/pools.py``, as in the compose stack);
4. the api-server, scheduler (LocalExecutor), dag-processor and triggerer, each started
   in its own process group, its log and pid in ``.lethe/airflow-service/``;
5. a wait until the api-server answers ``/api/v2/monitor/health``; then the login is
   printed.

``AIRFLOW_HOME`` is ``.lethe/airflow``. The executor's parallelism and the tasks a DAG may
run at once are twice the machine's cores (``--parallelism``): the small machine this
runs on must not start more task processes than it can serve, or their calls to the
execution API time out. The admin's password (SimpleAuthManager), the Fernet key and the
JWT secret every component shares are made once and kept, readable by their owner only,
in ``.lethe/airflow-service/``.

``down`` sends each component's process group SIGTERM, then SIGKILL to what is left after
a timeout, and stops the stack. ``env`` prints the variables the service runs with, for
the ``airflow`` command in a shell (``eval "$(python -m lethe_dev.stack.service env)"``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lethe import checkout
from lethe.connections import CONTROL_ADMIN_DB, CONTROL_DB
from lethe.exceptions import StackError
from lethe_dev.stack import cli as stack_cli
from lethe_dev.stack._net import LOOPBACK, port_open

#: Where the service keeps its pids, logs and secrets.
SERVICE_DIR = checkout.state_dir() / "airflow-service"
#: The components, in the order they are started (the api-server serves the execution API
#: every task process reports to, so it comes first).
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: Airflow's metadata database, on the stack's PostgreSQL server.
METADATA_DATABASE = "airflow"
#: The admin login of the service.
ADMIN_USER = "admin"
#: The api-server's port unless ``--port`` or this variable says otherwise.
PORT_ENV = "LETHE_AIRFLOW_PORT"
DEFAULT_PORT = 8080
HEALTH_PATH = "/api/v2/monitor/health"
PASSWORDS_FILE = "passwords.json"
SECRETS_FILE = "secrets.json"


def default_parallelism(cores: int | None = None) -> int:
    """Task processes the executor may run at once: twice the machine's cores.

    :param cores: the number of cores; ``os.cpu_count()`` when None.
    """
    return 2 * max(1, cores or os.cpu_count() or 1)


def metadata_url(postgres_dsn: str, database: str = METADATA_DATABASE) -> str:
    """The SQLAlchemy URL (psycopg 3) of ``database`` on the server of ``postgres_dsn``.

    :param postgres_dsn: a libpq URI or key=value DSN of any database on the server.
    :param database: the database Airflow's metadata lives in.
    """
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(postgres_dsn)
    userinfo = quote(str(params.get("user") or "postgres"), safe="")
    if params.get("password"):
        userinfo += ":" + quote(str(params["password"]), safe="")
    host = str(params.get("host") or LOOPBACK)
    port = int(params.get("port") or 5432)
    if host.startswith("/"):  # a socket directory goes in the query
        return f"postgresql+psycopg://{userinfo}@/{database}?host={quote(host)}&port={port}"
    return f"postgresql+psycopg://{userinfo}@{host}:{port}/{database}"


def airflow_env(
    *,
    root: Path,
    service_dir: Path,
    connections: dict[str, str],
    postgres_dsn: str,
    port: int,
    parallelism: int,
    service_secrets: dict[str, str],
) -> dict[str, str]:
    """The environment every component (and the ``airflow`` command) runs with.

    :param root: the checkout (``dags/``, ``plugins/``, ``.lethe/``).
    :param service_dir: where the passwords file is.
    :param connections: the stack's ``AIRFLOW_CONN_*`` variables (and masked form fields).
    :param postgres_dsn: a DSN of the stack's PostgreSQL server (for the metadata URL).
    :param port: the api-server's port on loopback.
    :param parallelism: the executor's parallelism and the per-DAG task limit.
    :param service_secrets: ``fernet_key`` and ``jwt_secret``.
    :return: variable name to value; holds credentials, so never log it.
    """
    base_url = f"http://{LOOPBACK}:{port}"
    return {
        **connections,
        "AIRFLOW_HOME": str(root / ".lethe" / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(parallelism),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__FERNET_KEY": service_secrets["fernet_key"],
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(service_dir / PASSWORDS_FILE),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url(postgres_dsn),
        "AIRFLOW__API__HOST": LOOPBACK,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": service_secrets["jwt_secret"],
        # A task's calls to the execution API wait for a busy api-server on a small machine
        # instead of failing the try (the default is 5 s).
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }


# --- files of the service directory -------------------------------------------------------------


def _write_private(path: Path, data: Any) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
    os.replace(partial, path)


def ensure_secrets(service_dir: Path) -> dict[str, str]:
    """The Fernet key and JWT secret of the service, made on first use and kept.

    Every component must share them: a task's token is signed by the scheduler and checked
    by the api-server; connections and variables are encrypted with the Fernet key.
    """
    from cryptography.fernet import Fernet

    path = service_dir / SECRETS_FILE
    if path.exists():
        return json.loads(path.read_text())
    made = {"fernet_key": Fernet.generate_key().decode(), "jwt_secret": secrets.token_urlsafe(32)}
    _write_private(path, made)
    return made


def ensure_admin_password(service_dir: Path) -> str:
    """The admin's password: read from the passwords file, made there on first use."""
    path = service_dir / PASSWORDS_FILE
    if path.exists():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            return str(json.loads(path.read_text())[ADMIN_USER])
    password = secrets.token_urlsafe(12)
    _write_private(path, {ADMIN_USER: password})
    return password


def _pid_file(service_dir: Path, component: str) -> Path:
    return service_dir / f"{component}.pid"


def _log_file(service_dir: Path, component: str) -> Path:
    return service_dir / f"{component}.log"


def component_pid(service_dir: Path, component: str) -> int | None:
    """The pid of a running component (its process group), or None."""
    try:
        pid = int(_pid_file(service_dir, component).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _airflow_alive(pid) else None


def _airflow_alive(pid: int) -> bool:
    """Whether ``pid`` is a live ``airflow`` process (not a zombie, not a reused pid)."""
    proc = Path("/proc") / str(pid)
    try:
        status = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    return status != "Z" and b"airflow" in cmdline


# --- steps of up ---------------------------------------------------------------------------------


def _stack_state(timeout: float) -> dict[str, Any]:
    state_dir = stack_cli.DEFAULT_STATE_DIR
    state = stack_cli._running_state(state_dir)
    if state is None:
        stack_cli.cmd_up(state_dir, timeout)
        state = stack_cli._running_state(state_dir)
    if state is None:
        raise StackError(f"the lethe stack in {state_dir} is not up")
    return state


def _ensure_database(postgres_dsn: str, database: str = METADATA_DATABASE) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(postgres_dsn, autocommit=True, connect_timeout=10) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if found.fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            print(f"created the database {database!r} for Airflow's metadata")


def _seeded(stack: dict[str, Any]) -> bool:
    """Whether the stores hold the synthetic provider: the telecom schema in PostgreSQL and
    the buckets in S3 (the embedded S3 server keeps its objects in memory, so a stack that
    was stopped and started again has none, while PostgreSQL's and SFTP's data stay)."""
    import psycopg

    with psycopg.connect(stack["postgres_dsn"], connect_timeout=10) as conn:
        if conn.execute("SELECT to_regclass('telecom.customers')").fetchone()[0] is None:
            return False
    return _buckets_present(stack["env"])


def _buckets_present(env: dict[str, str]) -> bool:
    import boto3

    from lethe import connections
    from lethe_dev.synthetic.model import BUCKETS

    s3 = json.loads(env[connections.env_var_name(connections.OBJECT_STORE)])
    client = boto3.client(
        "s3",
        endpoint_url=s3["extra"]["endpoint_url"],
        aws_access_key_id=s3.get("login"),
        aws_secret_access_key=s3.get("password"),
        region_name=s3["extra"].get("region_name", "us-east-1"),
    )
    present = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", ())}
    return set(BUCKETS) <= present


def _run_step(title: str, command: list[str], env: dict[str, str], log_path: Path) -> None:
    """Run one preparation command, its output appended to ``log_path``."""
    print(f"{title} ...", flush=True)
    started = time.monotonic()
    with log_path.open("ab") as log:
        log.write(f"\n$ {shlex.join(command)}\n".encode())
        log.flush()
        code = subprocess.run(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
        ).returncode
    if code != 0:
        raise StackError(
            f"{title} failed (exit code {code}); end of {log_path}:\n{_tail(log_path)}"
        )
    print(f"{title}: done in {time.monotonic() - started:.0f} s")


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_bytes()[-20000:].decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(nothing logged)"


def _health(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}{HEALTH_PATH}", timeout=5) as answer:
            return json.loads(answer.read()) if answer.status == 200 else None
    except (OSError, urllib.error.URLError, ValueError):
        return None


def _start(component: str, env: dict[str, str], service_dir: Path) -> int:
    airflow = Path(sys.executable).with_name("airflow")
    with _log_file(service_dir, component).open("ab") as log:
        process = subprocess.Popen(
            [str(airflow), component],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=env["AIRFLOW_HOME"],
            start_new_session=True,  # its own process group: down stops its children too
        )
    _pid_file(service_dir, component).write_text(f"{process.pid}\n")
    return process.pid


def service_env(service_dir: Path, port: int, parallelism: int, stack: dict[str, Any]) -> dict:
    """The whole environment of the components: this process's, PATH with the venv's bin
    first, and :func:`airflow_env`."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(
        airflow_env(
            root=checkout.root(),
            service_dir=service_dir,
            connections=stack["env"],
            postgres_dsn=stack["postgres_dsn"],
            port=port,
            parallelism=parallelism,
            service_secrets=ensure_secrets(service_dir),
        )
    )
    return env


def cmd_up(service_dir: Path, *, port: int, parallelism: int, timeout: float, reseed: bool) -> int:
    """Start the stack, prepare the databases and start every Airflow component.

    :raises StackError: when a step fails or the api-server does not answer in time.
    """
    service_dir.mkdir(parents=True, exist_ok=True)
    running = {c: pid for c in COMPONENTS if (pid := component_pid(service_dir, c))}
    if len(running) == len(COMPONENTS) and _health(port) is not None:
        print(f"Airflow is already up on http://{LOOPBACK}:{port} (pids {running})")
        _print_login(service_dir, port)
        return 0
    if running:
        print(f"stopping what is left of an earlier start: {', '.join(running)}")
        _stop_components(service_dir, timeout=30)
    if port_open(port):
        raise StackError(
            f"port {port} is taken by another program: stop it or choose another port "
            f"(--port or {PORT_ENV})"
        )
    stack = _stack_state(timeout)
    env = service_env(service_dir, port, parallelism, stack)
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    ensure_admin_password(service_dir)
    prepare_log = service_dir / "prepare.log"
    python = sys.executable
    # The migrations run as the schema owner; the components use the runtime role (a stack
    # started by an older checkout has no admin connection: its control connection owns all).
    admin_env = stack.get("admin_env", {})
    owner = CONTROL_ADMIN_DB if admin_env else CONTROL_DB
    _run_step(
        "the control schema",
        [python, "-m", "lethe.control", "migrate", "--conn-id", owner],
        {**env, **admin_env},
        prepare_log,
    )
    if reseed or not _seeded(stack):
        _run_step(
            "the synthetic provider (scale 1)",
            [python, "-m", "lethe_dev.synthetic", "seed", "--scale", "1"],
            {**env, **admin_env},  # the telecom tables' owner loads them
            prepare_log,
        )
    _ensure_database(stack["postgres_dsn"])
    airflow = str(Path(python).with_name("airflow"))
    _run_step("Airflow's metadata database", [airflow, "db", "migrate"], env, prepare_log)
    # As airflow-init does: a task in a pool that does not exist is never scheduled.
    pools = checkout.root() / "deploy" / "compose" / "pools.py"
    _run_step("the Airflow pools the policies name", [python, str(pools)], env, prepare_log)

    for component in COMPONENTS:
        pid = _start(component, env, service_dir)
        print(f"started {component} (pid {pid}, log {_log_file(service_dir, component)})")
    deadline = time.monotonic() + timeout
    while _health(port) is None:
        dead = [c for c in COMPONENTS if component_pid(service_dir, c) is None]
        if dead or time.monotonic() > deadline:
            reason = f"{dead[0]} exited" if dead else f"no answer within {timeout:.0f} s"
            log_of = _log_file(service_dir, dead[0] if dead else "api-server")
            _stop_components(service_dir, timeout=30)
            raise StackError(
                f"Airflow did not come up ({reason}); end of {log_of}:\n{_tail(log_of)}"
            )
        time.sleep(1.0)
    print(f"Airflow is up on http://{LOOPBACK}:{port} (parallelism {parallelism})")
    _print_login(service_dir, port)
    return 0


def _print_login(service_dir: Path, port: int) -> None:
    password = ensure_admin_password(service_dir)
    print(f"  UI and REST API: http://{LOOPBACK}:{port}/")
    print(f"  login: {ADMIN_USER} / {password}   ({service_dir / PASSWORDS_FILE})")
    print("  every DAG starts paused: unpause one in the UI (the toggle) or with")
    print('    eval "$(make -s airflow-env)" && airflow dags unpause retention_support_tickets')
    print(f"  logs: {service_dir}/*.log and {checkout.state_dir() / 'airflow' / 'logs'}")
    print("  stop: make airflow-down")


# --- down and status -----------------------------------------------------------------------------


def _stop_components(service_dir: Path, timeout: float) -> list[str]:
    """SIGTERM to every component's process group, SIGKILL to what outlives ``timeout``.

    :return: the components that had to be killed.
    """
    groups = {}
    for component in COMPONENTS:
        pid = component_pid(service_dir, component)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
                groups[component] = pid
        _pid_file(service_dir, component).unlink(missing_ok=True)
    deadline = time.monotonic() + timeout
    while groups and time.monotonic() < deadline:
        groups = {c: pid for c, pid in groups.items() if _group_alive(pid)}
        if groups:
            time.sleep(0.2)
    killed = []
    for component, pid in groups.items():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
            killed.append(component)
    return killed


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A group of zombies only (children of this process) is as good as gone.
    return any(
        _airflow_alive(int(proc.name))
        for proc in Path("/proc").iterdir()
        if proc.name.isdigit() and _pgid(proc) == pgid
    )


def _pgid(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return None


def cmd_down(service_dir: Path, *, timeout: float, keep_stack: bool) -> int:
    """Stop every component, then the stack (unless ``keep_stack``)."""
    killed = _stop_components(service_dir, timeout)
    if killed:
        print(f"killed after {timeout:.0f} s: {', '.join(killed)}")
    print("Airflow is down")
    if not keep_stack:
        stack_cli.cmd_down(stack_cli.DEFAULT_STATE_DIR, 60.0)
    return 0


def cmd_status(service_dir: Path, port: int) -> int:
    """Print which component runs and whether the api-server answers; 0 when all is up."""
    ok = True
    for component in COMPONENTS:
        pid = component_pid(service_dir, component)
        ok &= pid is not None
        print(f"  {component:<14} {f'pid {pid}' if pid else 'not running'}")
    health = _health(port)
    print(f"  health         {json.dumps(health) if health else 'no answer'}")
    return 0 if ok and health is not None else 1


def cmd_env(service_dir: Path, port: int, parallelism: int) -> int:
    """Print ``export`` lines of the service's environment (holds credentials)."""
    state = stack_cli._running_state(stack_cli.DEFAULT_STATE_DIR)
    if state is None:
        raise stack_cli._not_up(stack_cli.DEFAULT_STATE_DIR)
    env = airflow_env(
        root=checkout.root(),
        service_dir=service_dir,
        connections=state["env"],
        postgres_dsn=state["postgres_dsn"],
        port=port,
        parallelism=parallelism,
        service_secrets=ensure_secrets(service_dir),
    )
    for name, value in sorted(env.items()):
        print(f"export {name}={shlex.quote(value)}")
    print(f'export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"')
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m lethe_dev.stack.service``."""
    parser = argparse.ArgumentParser(
        prog="python -m lethe_dev.stack.service",
        description="Airflow 3 with every lethe DAG on the embedded stack, under .lethe/.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    helps = {
        "up": "start the stack, seed it, start Airflow and wait until it answers",
        "down": "stop Airflow's components and the stack",
        "status": "show which component runs (exit code 1 when not all are up)",
        "env": "print export lines of the service's environment (holds credentials)",
    }
    port = int(os.environ.get(PORT_ENV) or DEFAULT_PORT)
    for name, text in helps.items():
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("--port", type=int, default=port, help=f"api-server port ({port})")
        command.add_argument(
            "--parallelism",
            type=int,
            default=default_parallelism(),
            help="task processes at once, in all and per DAG (twice the cores)",
        )
        if name in ("up", "down"):
            command.add_argument(
                "--timeout", type=float, default=300.0 if name == "up" else 30.0, help="seconds"
            )
        if name == "up":
            command.add_argument(
                "--reseed", action="store_true", help="seed the synthetic provider again"
            )
        if name == "down":
            command.add_argument("--keep-stack", action="store_true", help="leave the stack up")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the exit code."""
    args = build_parser().parse_args(argv)
    checkout.use_local_airflow_home()
    service_dir = SERVICE_DIR
    try:
        if args.command == "up":
            return cmd_up(
                service_dir,
                port=args.port,
                parallelism=args.parallelism,
                timeout=args.timeout,
                reseed=args.reseed,
            )
        if args.command == "down":
            return cmd_down(service_dir, timeout=args.timeout, keep_stack=args.keep_stack)
        if args.command == "status":
            return cmd_status(service_dir, args.port)
        return cmd_env(service_dir, args.port, args.parallelism)
    except StackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__" and __spec__ is not None and __spec__.name == "lethe_dev.stack.service":
    sys.exit(main())
