"""A small Airflow cluster on this machine: CeleryExecutor, Redis broker, PostgreSQL metadata.

An api-server (the workers' tasks talk to the execution API), a scheduler, a dag-processor
and any number of Celery workers, each a process group of its own, their output in
``<state_dir>/logs/<name>.log``. Used by the scale-out tests only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from tests.scaleout import hostnames

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_answers(host: str, port: int) -> bool:
    """Whether a Redis server answers PING on host:port."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def wait_for(what: str, check: Callable[[], object], timeout: float, interval: float = 0.5):
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Cluster:
    """The Airflow processes of one test module.

    :param state_dir: AIRFLOW_HOME, logs; created.
    :param env: the environment every process gets (on top of this process's).
    """

    def __init__(self, state_dir: Path, env: Mapping[str, str]) -> None:
        self.state_dir = state_dir
        self.logs = state_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **env}
        self.processes: dict[str, subprocess.Popen] = {}
        self.killed: set[str] = set()

    def start(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> None:
        """``airflow <args>`` in the background, in a process group of its own."""
        out = (self.logs / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [AIRFLOW, *args],
            env={**self.env, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()

    def finish(self, name: str, timeout: float) -> None:
        """Wait for the background command ``name`` to end; fail unless it succeeded."""
        code = self.processes[name].wait(timeout=timeout)  # on timeout, stop() ends it
        process = self.processes.pop(name)
        if code != 0:
            raise subprocess.CalledProcessError(code, process.args, self.log_text(name))

    def start_worker(self, name: str, queue: str) -> None:
        """A Celery worker named ``name@<host>`` serving ``queue``, one task at a time."""
        self.start(
            name,
            "celery",
            "worker",
            "--celery-hostname",
            f"{name}@%h",
            "--queues",
            queue,
            "--concurrency",
            "1",
            "--skip-serve-logs",  # two workers on one host would both take port 8793
            "--without-gossip",
            "--without-mingle",
            env={hostnames.ENV: name},
        )

    def log_text(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def assert_running(self) -> None:
        """Fail when a process that was not killed on purpose has exited."""
        dead = {
            name: p.returncode
            for name, p in self.processes.items()
            if name not in self.killed and p.poll() is not None
        }
        assert not dead, f"Airflow processes exited: {dead}; logs in {self.logs}"

    def kill(self, name: str) -> None:
        """SIGKILL ``name`` and every process it started, as when its machine is lost.

        Airflow puts each task process in a process group of its own, so killing the
        worker's group alone would leave its running task behind.
        """
        process = self.processes[name]
        self.killed.add(name)
        _kill_tree(process.pid)
        process.wait(timeout=30)

    def stop(self, grace: float = 2.0) -> None:
        """SIGTERM every process group, then SIGKILL whatever is left of each tree after
        ``grace`` seconds.

        Nothing of the cluster is kept, and the api-server, done serving within a second,
        then spends seconds more in its interpreter's final garbage collection.
        """
        trees = {name: _descendants(p.pid) for name, p in self.processes.items()}
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for name, process in self.processes.items():
            _kill_tree(process.pid, also=trees[name])
            if process.poll() is None:
                process.wait(timeout=10)


def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _kill_tree(pid: int, also: list | None = None) -> None:
    """SIGKILL ``pid``'s group and every descendant (and ``also``), leaves first."""
    import psutil

    for child in reversed([*(also or []), *_descendants(pid)]):
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


class RestClient:
    """The api-server's REST API (the test runs it with every user an admin)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")

    def healthy(self) -> bool:
        try:
            return self.request("GET", "/api/v2/monitor/health")["metadatabase"]["status"] == (
                "healthy"
            )
        except OSError:
            return False
