"""PostgreSQL for the embedded stack: a real server on loopback, or a database on an external one.

:class:`EmbeddedPostgres` drives ``initdb`` and ``pg_ctl`` itself. The binaries come from
``LETHE_PG_BIN`` when set, else from the ``pgserver`` wheel (``pgserver/pginstall/bin``), else
from the machine (``pg_config --bindir``, ``/usr/lib/postgresql/*/bin``). PostgreSQL refuses
to run as root; as root the server runs as an unprivileged system account instead
(``LETHE_PG_SYSTEM_USER``, else ``postgres`` or ``pgserver`` when present, else a ``pgserver``
account created with ``useradd``, as the pgserver package does).

:class:`ExternalPostgres` uses a server that already runs (``LETHE_TEST_POSTGRES_DSN``): it
creates a fresh ``lethe_<suffix>`` database and drops it on stop.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import re
import secrets
import shlex
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from lethe.exceptions import StackError
from lethe_dev.stack._net import LOOPBACK, free_port

log = logging.getLogger(__name__)

#: Superuser created by ``initdb`` and used by every connection of the stack.
SUPERUSER = "postgres"
#: Database created on the embedded server.
DATABASE = "lethe"
#: Names a directory holding ``initdb``, ``pg_ctl`` and ``postgres`` to use instead of pgserver's.
PG_BIN_ENV = "LETHE_PG_BIN"
#: Names the system account the server runs as when the stack is started by root.
SYSTEM_USER_ENV = "LETHE_PG_SYSTEM_USER"
#: A libpq DSN of an existing server to use instead of starting one.
EXTERNAL_DSN_ENV = "LETHE_TEST_POSTGRES_DSN"

_BINARIES = ("initdb", "pg_ctl", "postgres")
_ROOT_ACCOUNTS = ("postgres", "pgserver")
#: ``sun_path`` holds 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107
_START_ATTEMPTS = 3
_CONNECT_PARAMS = ("host", "hostaddr", "port", "user", "password", "dbname")


def find_bin_dir() -> Path:
    """Locate the PostgreSQL server binaries.

    :return: a directory holding ``initdb``, ``pg_ctl`` and ``postgres``.
    :raises StackError: when ``LETHE_PG_BIN`` names an unusable directory or nothing is found.
    """
    configured = os.environ.get(PG_BIN_ENV)
    if configured:
        missing = _missing_binaries(Path(configured))
        if missing:
            raise StackError(
                f"{PG_BIN_ENV}={configured} lacks the PostgreSQL binaries {', '.join(missing)}"
            )
        return Path(configured)

    candidates: list[Path] = []
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin is not None:
        candidates.append(Path(spec.origin).parent / "pginstall" / "bin")
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False, timeout=10
        )
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()))
    candidates.extend(
        sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    )
    for candidate in candidates:
        if not _missing_binaries(candidate):
            return candidate
    raise StackError(
        "no PostgreSQL server binaries found: install the pgserver package "
        f"or set {PG_BIN_ENV} to a directory holding {', '.join(_BINARIES)}"
    )


def _missing_binaries(directory: Path) -> list[str]:
    return [
        name
        for name in _BINARIES
        if not ((directory / name).is_file() and os.access(directory / name, os.X_OK))
    ]


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name)) or (0,)


def _server_account() -> pwd.struct_passwd | None:
    """The account the server runs as: None when not root (it runs as the caller)."""
    if os.geteuid() != 0:
        return None
    configured = os.environ.get(SYSTEM_USER_ENV)
    for name in [configured] if configured else _ROOT_ACCOUNTS:
        try:
            account = pwd.getpwnam(name)
        except KeyError:
            continue
        if account.pw_uid == 0:
            raise StackError(f"PostgreSQL cannot run as {name!r}: it is a root account")
        return account
    if configured:
        raise StackError(f"{SYSTEM_USER_ENV}={configured} names no system account")
    useradd = shutil.which("useradd")
    if useradd is None:
        raise StackError(
            "PostgreSQL refuses to run as root and there is no 'postgres' or 'pgserver' "
            f"account, nor useradd to create one: set {SYSTEM_USER_ENV}"
        )
    log.info("Creating the system account 'pgserver' to run PostgreSQL as (we are root)")
    result = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "pgserver"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        try:  # a concurrent run (a second test session) may have created it just now
            return pwd.getpwnam("pgserver")
        except KeyError:
            pass
        raise StackError(f"could not create the system account 'pgserver': {result.stderr.strip()}")
    return pwd.getpwnam("pgserver")


def _is_postgres_of(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is a live ``postgres`` process started on ``data_dir``."""
    import psutil  # an Airflow dependency; imported only when a data directory is checked

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        command = process.cmdline()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied as e:  # whose it is cannot be told: touch neither it nor the file
        raise StackError(f"cannot tell whether process {pid} is a PostgreSQL server") from e
    if not command or Path(command[0]).name != "postgres":
        return False
    # pg_ctl starts it as `postgres -D <data_dir> ...`, the directory as we gave it.
    return str(data_dir) in command or str(data_dir.resolve()) in command


def _make_traversable(path: Path, uid: int) -> None:
    """Let ``uid`` reach ``path``: add the search bit for others where a parent lacks it."""
    for directory in [path, *path.parents]:
        mode = directory.stat()
        if mode.st_uid == uid or mode.st_mode & stat.S_IXOTH:
            continue
        log.info("Adding o+x to %s so that PostgreSQL's account can reach its files", directory)
        directory.chmod(stat.S_IMODE(mode.st_mode) | stat.S_IXOTH)


def _libpq_uri(
    host: str, port: int, user: str, password: str | None, dbname: str, extra: dict[str, str]
) -> str:
    userinfo = quote(user, safe="")
    if password:
        userinfo += ":" + quote(password, safe="")
    location = quote(host, safe="") if host.startswith("/") else host
    uri = f"postgresql://{userinfo}@{location}:{port}/{quote(dbname, safe='')}"
    return f"{uri}?{urlencode(extra)}" if extra else uri


class _PostgresTarget:
    """What the stack needs to know of a PostgreSQL database, wherever it lives."""

    host: str
    port: int
    user: str
    password: str | None
    database: str
    extra: dict[str, str]

    @property
    def dsn(self) -> str:
        """A libpq URI of the database, for psycopg and psql."""
        return _libpq_uri(self.host, self.port, self.user, self.password, self.database, self.extra)

    def airflow_connection(self) -> dict[str, Any]:
        """The database as an Airflow connection (the JSON form of ``AIRFLOW_CONN_*``).

        :return: a dict with ``conn_type`` postgres and host, port, login, schema.
        """
        connection: dict[str, Any] = {
            "conn_type": "postgres",
            "host": self.host,
            "port": self.port,
            "login": self.user,
            "schema": self.database,
        }
        if self.password:
            connection["password"] = self.password
        if self.extra:
            connection["extra"] = dict(self.extra)
        return connection

    def describe(self) -> dict[str, Any]:
        """Where the database is, without credentials."""
        return {"host": self.host, "port": self.port, "database": self.database}


class EmbeddedPostgres(_PostgresTarget):
    """A PostgreSQL server of our own, listening on 127.0.0.1 and in ``base_dir``.

    :param base_dir: directory for the data directory (``data``), the log and the socket.
    :param bin_dir: directory of the server binaries; found by :func:`find_bin_dir` if None.
    :param database: the database to create.
    :param start_timeout: seconds ``pg_ctl`` may wait for the server to accept connections.
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        bin_dir: Path | None = None,
        database: str = DATABASE,
        start_timeout: float = 30.0,
    ) -> None:
        self.base_dir = Path(base_dir).absolute()
        self.data_dir = self.base_dir / "data"
        self.log_file = self.base_dir / "postgres.log"
        self.bin_dir = bin_dir
        self.start_timeout = start_timeout
        self.host = LOOPBACK
        self.port = 0
        self.user = SUPERUSER
        self.password = None
        self.database = database
        self.extra = {}
        self.socket_dir: Path | None = None
        self._account: pwd.struct_passwd | None = None
        self._version = ""
        self._running = False

    def start(self) -> None:
        """Initialise the data directory if needed, start the server, create the database.

        :raises StackError: when a binary is missing, the data directory is unusable, or the
            server does not come up.
        """
        if self._running:
            return
        self.bin_dir = self.bin_dir or find_bin_dir()
        self._account = _server_account()
        self._prepare_dirs()
        self._stop_leftover_server()
        self._initdb()
        self._start_server()
        self._running = True
        try:
            self._ensure_database()
        except Exception:
            self.stop()
            raise
        log.info(
            "PostgreSQL %s is up on %s:%d (data %s)",
            self._binary_version(),
            self.host,
            self.port,
            self.data_dir,
        )

    def stop(self) -> None:
        """Stop the server with ``pg_ctl stop -m fast``; nothing happens when it is not running.

        :raises StackError: when the server is still running afterwards.
        """
        if not self._running:
            return
        self._pg_ctl_stop()
        self._running = False
        log.info("PostgreSQL on port %d stopped", self.port)

    def stop_leftover(self) -> bool:
        """Stop a server that an earlier, killed run left on this data directory.

        :return: True when such a server was found and stopped.
        :raises StackError: when it cannot be stopped.
        """
        if self._running or not (self.data_dir / "postmaster.pid").exists():
            return False
        self.bin_dir = self.bin_dir or find_bin_dir()
        self._account = _server_account()
        return self._stop_leftover_server()

    # --- steps of start() -------------------------------------------------------------------

    def _prepare_dirs(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self._account is None:
            self.base_dir.chmod(0o700)
            return
        assert self.bin_dir is not None
        os.chown(self.base_dir, self._account.pw_uid, self._account.pw_gid)
        self.base_dir.chmod(0o700)
        _make_traversable(self.base_dir.parent, self._account.pw_uid)
        _make_traversable(self.bin_dir, self._account.pw_uid)

    def _stop_leftover_server(self) -> bool:
        if self._server_pid() is not None and self._pg_ctl_status():
            log.warning(
                "A PostgreSQL server from an earlier run uses %s: stopping it", self.data_dir
            )
            self._pg_ctl_stop()
            return True
        return False

    def _server_pid(self) -> int | None:
        """The PID of the live PostgreSQL server of this data directory (``postmaster.pid``).

        A PID is reused once its process has ended (a server killed long ago, a reboot): a
        ``postmaster.pid`` whose PID is gone, or is now some other process (not ``postgres``
        with this data directory on its command line), is stale. It is removed, so that the
        server can start again, and nothing is ever sent to that process: ``pg_ctl stop``
        would signal whatever process holds the PID now.
        """
        pid_file = self.data_dir / "postmaster.pid"
        try:
            first_line = pid_file.read_text(errors="replace").split("\n", 1)[0]
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StackError(f"cannot read {pid_file}: {e}") from e
        pid = int(first_line) if first_line.strip().isdigit() else None
        if pid is not None and _is_postgres_of(pid, self.data_dir):
            return pid
        log.warning(
            "%s names process %s, which is not a PostgreSQL server of this data directory: "
            "the file is stale; removing it (nothing is sent to that process)",
            pid_file,
            pid,
        )
        pid_file.unlink(missing_ok=True)
        return None

    def _initdb(self) -> None:
        version_file = self.data_dir / "PG_VERSION"
        binary_major = self._binary_version().split(".")[0]
        if version_file.exists():
            data_major = version_file.read_text().strip()
            if data_major != binary_major:
                raise StackError(
                    f"{self.data_dir} was made by PostgreSQL {data_major} but the binaries in "
                    f"{self.bin_dir} are version {binary_major}: remove the directory or set "
                    f"{PG_BIN_ENV}"
                )
            return
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise StackError(f"{self.data_dir} is not empty but holds no PostgreSQL data directory")
        code, output = self._run(
            [
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            timeout=120,
        )
        if code != 0:
            raise StackError(f"initdb failed for {self.data_dir}:\n{output.strip()}")

    def _start_server(self) -> None:
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = free_port()
            socket_dir = self.base_dir
            if len(str(socket_dir / f".s.PGSQL.{port}")) > _MAX_SOCKET_PATH:
                socket_dir = None
            options = [
                "-p",
                str(port),
                "-c",
                f"listen_addresses={LOOPBACK}",
                "-c",
                f"unix_socket_directories={shlex.quote(str(socket_dir or ''))}",
            ]
            log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            code, output = self._run(
                [
                    "pg_ctl",
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    str(int(self.start_timeout)),
                    "-o",
                    " ".join(options),
                    "start",
                ],
                timeout=self.start_timeout + 30,
            )
            if code == 0:
                self.port = port
                self.socket_dir = socket_dir
                return
            server_log = self._read_log(log_offset)
            if "could not bind" in server_log and attempt < _START_ATTEMPTS:
                log.warning("Port %d was taken before PostgreSQL could bind it; retrying", port)
                continue
            self._pg_ctl_stop(missing_ok=True)
            raise StackError(
                f"PostgreSQL could not start on {LOOPBACK}:{port} (log {self.log_file}):\n"
                f"{output.strip()}\n{server_log.strip()}"
            )

    def _ensure_database(self) -> None:
        with psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        ) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if found is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
                log.info("Created database %s", self.database)

    # --- pg_ctl --------------------------------------------------------------------------------

    def _pg_ctl_status(self) -> bool:
        code, _ = self._run(["pg_ctl", "-D", str(self.data_dir), "status"], timeout=30)
        return code == 0

    def _pg_ctl_stop(self, *, missing_ok: bool = False) -> None:
        if self._server_pid() is None:
            return  # no server of ours runs: there is nothing to signal
        code, output = self._run(
            ["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop"],
            timeout=90,
        )
        if code != 0 and self._pg_ctl_status() and not missing_ok:
            raise StackError(f"pg_ctl could not stop the server on {self.data_dir}: {output}")

    def _binary_version(self) -> str:
        if not self._version:
            code, output = self._run(["postgres", "--version"], timeout=30)
            found = re.search(r"(\d+(?:\.\d+)*)", output)
            if code != 0 or found is None:
                raise StackError(f"{self.bin_dir}/postgres does not run: {output.strip()}")
            self._version = found.group(1)
        return self._version

    def _read_log(self, offset: int) -> str:
        try:
            with self.log_file.open("rb") as handle:
                handle.seek(offset)
                return handle.read().decode(errors="replace")
        except OSError:
            return ""

    def _run(self, argv: list[str], *, timeout: float) -> tuple[int, str]:
        """Run a PostgreSQL binary (as the server account when root); return code and output.

        The output goes through a temporary file, never a pipe: the server started by
        ``pg_ctl start`` would otherwise inherit the pipe and keep the read from ending.
        """
        assert self.bin_dir is not None
        command = [str(self.bin_dir / argv[0]), *argv[1:]]
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        kwargs: dict[str, Any] = {}
        if self._account is not None:
            env["HOME"] = self._account.pw_dir
            env["USER"] = env["LOGNAME"] = self._account.pw_name
            kwargs = {
                "user": self._account.pw_uid,
                "group": self._account.pw_gid,
                "extra_groups": [],
            }
        with tempfile.TemporaryFile() as output:
            try:
                result = subprocess.run(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    cwd=self.base_dir if self.base_dir.exists() else None,
                    env=env,
                    timeout=timeout,
                    check=False,
                    **kwargs,
                )
            except subprocess.TimeoutExpired as e:
                raise StackError(f"{argv[0]} did not finish within {timeout:.0f} s") from e
            except OSError as e:
                raise StackError(f"cannot run {command[0]}: {e}") from e
            output.seek(0)
            return result.returncode, output.read().decode(errors="replace")


class ExternalPostgres(_PostgresTarget):
    """A fresh database ``lethe_<suffix>`` on a server that already runs.

    :param admin_dsn: libpq DSN (URI or key=value) of a role allowed to create databases.
    """

    def __init__(self, admin_dsn: str) -> None:
        try:
            params = conninfo_to_dict(admin_dsn)
        except psycopg.ProgrammingError as e:
            raise StackError(f"{EXTERNAL_DSN_ENV} is not a valid libpq DSN: {e}") from e
        self.admin_dsn = admin_dsn
        self.host = str(params.get("host") or LOOPBACK)
        self.port = int(params.get("port") or 5432)
        self.user = str(params.get("user") or pwd.getpwuid(os.getuid()).pw_name)
        self.password = str(params["password"]) if params.get("password") else None
        self.database = ""
        self.extra = {
            key: str(value) for key, value in params.items() if key not in _CONNECT_PARAMS
        }
        self._created = False

    def start(self) -> None:
        """Create the database ``lethe_<random suffix>``.

        :raises StackError: when the server cannot be reached or refuses the creation.
        """
        if self._created:
            return
        self.database = f"lethe_{secrets.token_hex(4)}"
        try:
            with self._admin() as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        except psycopg.Error as e:
            raise StackError(
                f"cannot create database {self.database} on {self.host}:{self.port}: {e}"
            ) from e
        self._created = True
        log.info("Created database %s on %s:%d", self.database, self.host, self.port)

    def stop(self) -> None:
        """Drop the database, closing its remaining sessions; nothing happens when not created.

        :raises StackError: when the database cannot be dropped.
        """
        if not self._created:
            return
        try:
            with self._admin() as conn:
                force = (
                    sql.SQL(" WITH (FORCE)") if conn.info.server_version >= 130000 else sql.SQL("")
                )
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {}{}").format(
                        sql.Identifier(self.database), force
                    )
                )
        except psycopg.Error as e:
            raise StackError(f"cannot drop database {self.database}: {e}") from e
        self._created = False
        log.info("Dropped database %s on %s:%d", self.database, self.host, self.port)

    def _admin(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as e:
            raise StackError(f"cannot reach PostgreSQL at {self.host}:{self.port}: {e}") from e
