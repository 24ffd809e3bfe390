"""The embedded stack's command line: ``python -m lethe_dev.stack up|env|down|status|serve``.

The SFTP and S3 servers live in threads of the process that started them, so ``up`` starts a
detached ``serve`` process (its own session, output in ``STATE_DIR/stack.log``), waits until
it reports the stack up in ``STATE_DIR/stack.json`` and returns. ``down`` sends that process
SIGTERM; it stops PostgreSQL and the servers and removes ``stack.json``.

``stack.json`` holds the connection variables (credentials included): it is readable by its
owner only, and only ``env`` prints its secrets.

The default state directory is the checkout's ``.lethe/stack``, wherever the command runs
from; Airflow's home (should anything import Airflow) is the checkout's ``.lethe/airflow``
unless ``AIRFLOW_HOME`` is set, never ``~/airflow``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lethe
import lethe_dev
from lethe import checkout
from lethe.exceptions import StackError
from lethe_dev.stack import EmbeddedStack
from lethe_dev.stack._net import port_open
from lethe_dev.stack.postgres import EmbeddedPostgres

log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = checkout.state_dir() / "stack"
STATE_FILE = "stack.json"
LOG_FILE = "stack.log"


# --- the state file and the serve process -------------------------------------------------------


def _read_state(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise StackError(f"cannot read {path}: {e}") from e
    if not isinstance(state, dict) or not isinstance(state.get("pid"), int):
        raise StackError(f"{path} is not a stack record: remove it")
    return state


def _write_state(state_dir: Path, state: dict[str, Any]) -> None:
    path = state_dir / STATE_FILE
    partial = path.with_name(f".{STATE_FILE}.{os.getpid()}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(state, handle, indent=2, sort_keys=True)
    os.replace(partial, path)


def _serve_alive(pid: int) -> bool:
    """Whether ``pid`` is a live ``lethe_dev.stack serve`` process (no zombie, no reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    proc = Path("/proc") / str(pid)
    if not proc.exists():
        return True
    try:
        status = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
    except (OSError, IndexError):
        return False
    return status != "Z" and b"lethe_dev.stack" in cmdline and b"serve" in cmdline


def _running_state(state_dir: Path) -> dict[str, Any] | None:
    state = _read_state(state_dir)
    if state is not None and _serve_alive(state["pid"]):
        return state
    return None


def _clean_stale(state_dir: Path) -> None:
    """Remove the record of a serve process that died, and a PostgreSQL server it left behind."""
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    if EmbeddedPostgres(state_dir / "postgres").stop_leftover():
        print(f"stopped a PostgreSQL server left running in {state_dir / 'postgres'}")


def _log_tail(state_dir: Path, offset: int = 0, lines: int = 20) -> str:
    """The last ``lines`` lines the log got after ``offset`` bytes."""
    try:
        with (state_dir / LOG_FILE).open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(nothing logged)"


def _not_up(state_dir: Path) -> StackError:
    return StackError(
        f"the lethe stack is not up in {state_dir}: start it with `python -m lethe_dev.stack up`"
    )


# --- commands ----------------------------------------------------------------------------------


def cmd_up(state_dir: Path, timeout: float) -> int:
    """Start the stack in a detached ``serve`` process and wait until it is up.

    :param state_dir: the stack's state directory.
    :param timeout: seconds to wait for the servers.
    :return: the exit code.
    :raises StackError: when the stack does not come up.
    """
    state = _read_state(state_dir)
    if state is not None:
        if _serve_alive(state["pid"]):
            print(f"the lethe stack is already up in {state_dir} (pid {state['pid']})")
            return 0
        print(f"removing the record of a stack process that is gone (pid {state['pid']})")
        _clean_stale(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)

    env = dict(os.environ)
    package_parents = [
        str(Path(package.__file__).resolve().parents[1]) for package in (lethe, lethe_dev)
    ]
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([*package_parents, *paths])
    command = [sys.executable, "-m", "lethe_dev.stack", "serve", "--state-dir", str(state_dir)]
    with (state_dir / LOG_FILE).open("ab") as log_file:
        log_offset = log_file.tell()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while True:
        state = _read_state(state_dir)
        if state is not None and state["pid"] == process.pid:
            break
        code = process.poll()
        if code is not None:
            raise StackError(
                f"the stack process exited with code {code} before the stack was up; "
                f"end of {state_dir / LOG_FILE}:\n{_log_tail(state_dir, log_offset)}"
            )
        if time.monotonic() > deadline:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=60)
            raise StackError(
                f"the stack was not up within {timeout:.0f} s; "
                f"end of {state_dir / LOG_FILE}:\n{_log_tail(state_dir, log_offset)}"
            )
        time.sleep(0.1)
    print(f"the lethe stack is up in {state_dir} (pid {process.pid})")
    _print_services(state)
    print(f'connection variables: eval "$(python -m lethe_dev.stack env --state-dir {state_dir})"')
    return 0


def cmd_env(state_dir: Path, admin: bool = False) -> int:
    """Print ``export AIRFLOW_CONN_...='...'`` lines for the running stack.

    :param state_dir: the stack's state directory.
    :param admin: also the owners' connections (``lethe_control_admin_db``,
        ``lethe_telecom_admin_db``), for migrating and seeding from a shell.
    :return: the exit code.
    :raises StackError: when the stack is not up.
    """
    state = _running_state(state_dir)
    if state is None:
        raise _not_up(state_dir)
    env = {**state["env"], **(state.get("admin_env", {}) if admin else {})}
    for name, value in sorted(env.items()):
        print(f"export {name}={shlex.quote(value)}")
    return 0


def cmd_down(state_dir: Path, timeout: float) -> int:
    """Stop the stack: SIGTERM to the ``serve`` process, then wait for it to end.

    :param state_dir: the stack's state directory.
    :param timeout: seconds to wait for the process to end.
    :return: the exit code (0 also when the stack was not up).
    :raises StackError: when the process does not end in time.
    """
    state = _read_state(state_dir)
    if state is None:
        print(f"the lethe stack is not up in {state_dir}: nothing to stop")
        return 0
    pid = state["pid"]
    if _serve_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _serve_alive(pid):
            if time.monotonic() > deadline:
                raise StackError(
                    f"the stack process (pid {pid}) did not stop within {timeout:.0f} s; "
                    f"see {state_dir / LOG_FILE}"
                )
            time.sleep(0.1)
    else:
        print(f"the stack process (pid {pid}) was already gone")
    # Also when the serve process ended without stopping PostgreSQL (killed, or stopped
    # while PostgreSQL was still shutting down): no server may outlive `down`.
    _clean_stale(state_dir)
    print(f"the lethe stack in {state_dir} is down")
    return 0


def cmd_status(state_dir: Path) -> int:
    """Print what runs, without credentials.

    :param state_dir: the stack's state directory.
    :return: 0 when the stack is up and every server answers, else 1.
    """
    state = _read_state(state_dir)
    if state is None:
        print(f"the lethe stack is not up in {state_dir}")
        return 1
    if not _serve_alive(state["pid"]):
        print(
            f"the lethe stack is not up in {state_dir}: its process (pid {state['pid']}) is gone; "
            "`down` cleans up, `up` starts it again"
        )
        return 1
    print(f"the lethe stack is up in {state_dir} (pid {state['pid']}, since {state['started_at']})")
    return 0 if _print_services(state) else 1


def _print_services(state: dict[str, Any]) -> bool:
    services = state["services"]
    postgres, sftp, s3 = services["postgres"], services["sftp"], services["s3"]
    s3_port = int(s3["endpoint_url"].rsplit(":", 1)[1])
    rows = [
        (
            "postgres",
            f"{postgres['host']}:{postgres['port']} database {postgres['database']}"
            + (" (external server)" if postgres["external"] else ""),
            port_open(postgres["port"], postgres["host"]),
        ),
        ("sftp", f"{sftp['host']}:{sftp['port']} root {sftp['root']}", port_open(sftp["port"])),
        ("s3", s3["endpoint_url"], port_open(s3_port)),
    ]
    for name, where, reachable in rows:
        print(f"  {name:<9} {where}  [{'reachable' if reachable else 'NOT REACHABLE'}]")
    return all(reachable for _, _, reachable in rows)


def cmd_serve(state_dir: Path) -> int:
    """Run the stack in the foreground until SIGTERM or SIGINT.

    :param state_dir: the stack's state directory.
    :return: the exit code.
    :raises StackError: when another serve process runs on the directory or a server fails.
    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("asyncssh", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    other = _running_state(state_dir)
    if other is not None:
        raise StackError(f"a stack process (pid {other['pid']}) already serves {state_dir}")

    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("Received %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    stack = EmbeddedStack(state_dir)
    stack.start()
    try:
        _write_state(
            state_dir,
            {
                "pid": os.getpid(),
                "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "services": stack.describe(),
                "postgres_dsn": stack.postgres_dsn,
                "env": stack.airflow_env(),
                "admin_env": stack.admin_env(),
            },
        )
        log.info("The stack is up (pid %d); SIGTERM stops it", os.getpid())
        while not stop.wait(1.0):
            pass
    finally:
        try:
            stack.stop()
        finally:
            (state_dir / STATE_FILE).unlink(missing_ok=True)
    log.info("The stack is down")
    return 0


# --- entry point -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m lethe_dev.stack``."""
    parser = argparse.ArgumentParser(
        prog="python -m lethe_dev.stack",
        description="Local PostgreSQL, SFTP and S3 servers for lethe's Airflow connections.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    helps = {
        "up": "start the stack in the background and wait until it is reachable",
        "env": "print export lines of the AIRFLOW_CONN_* variables (holds credentials)",
        "down": "stop the stack and wait for it",
        "status": "show what runs (exit code 1 when not up)",
        "serve": "run the stack in the foreground until SIGTERM/SIGINT",
    }
    for name, text in helps.items():
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument(
            "--state-dir",
            type=Path,
            default=DEFAULT_STATE_DIR,
            help=f"where the servers keep their state (default: {DEFAULT_STATE_DIR})",
        )
        if name == "env":
            command.add_argument(
                "--admin",
                action="store_true",
                help="also the owners' connections (migrating and seeding only)",
            )
        if name in ("up", "down"):
            command.add_argument(
                "--timeout", type=float, default=120.0 if name == "up" else 60.0, help="seconds"
            )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command of the stack's command line.

    :param argv: the arguments; ``sys.argv[1:]`` if None.
    :return: the exit code.
    """
    args = build_parser().parse_args(argv)
    checkout.use_local_airflow_home()  # inherited by the serve process too
    state_dir = args.state_dir.expanduser().absolute()
    try:
        if args.command == "up":
            return cmd_up(state_dir, args.timeout)
        if args.command == "env":
            return cmd_env(state_dir, args.admin)
        if args.command == "down":
            return cmd_down(state_dir, args.timeout)
        if args.command == "status":
            return cmd_status(state_dir)
        return cmd_serve(state_dir)
    except StackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
