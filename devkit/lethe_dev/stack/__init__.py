"""The embedded stack: real PostgreSQL, SFTP and S3 servers on loopback, from pip packages alone.

Used by the demo and the test suite::

    with EmbeddedStack(state_dir=Path(".lethe/stack")) as stack:
        os.environ.update(stack.airflow_env())

PostgreSQL runs as its own server process (``pg_ctl``); the SFTP (asyncssh) and S3 (moto)
servers run in threads of the calling process, so they live as long as it does. The command
line (``python -m lethe_dev.stack up``) keeps a detached process around for them.

With ``LETHE_TEST_POSTGRES_DSN`` set, no PostgreSQL server is started: a fresh database on
that server is used and dropped on stop.

Two database roles, as in a deployment (docs/security.md): the superuser owns the control
schema and runs its migrations (:meth:`EmbeddedStack.admin_env`, ``postgres_dsn``); the
control connection Airflow's components use logs in as a runtime role that may only
append to the audit ledger. The telecom connection logs in as a store login, a member of
``lethe_store`` (:mod:`lethe.stores.postgres.roles`: SELECT, UPDATE, DELETE on the telecom
tables and ownership of the partitioned ones, no superuser); the superuser is
``lethe_telecom_admin_db`` (:meth:`EmbeddedStack.admin_env`), which creates and loads the
telecom tables. The stack also generates the ledger's HMAC key (kept in
``state_dir/ledger-key``, so that a restarted stack verifies what it wrote before).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lethe import connections
from lethe_dev.stack.postgres import EXTERNAL_DSN_ENV, EmbeddedPostgres, ExternalPostgres

if TYPE_CHECKING:
    from types import TracebackType

    from lethe_dev.stack.s3 import EmbeddedS3Server
    from lethe_dev.stack.sftp import EmbeddedSFTPServer

__all__ = ["EmbeddedStack"]

log = logging.getLogger(__name__)

#: The login role of the control connection on the embedded server (a member of
#: ``lethe_runtime``); on an external server it is ``<database>_app``.
RUNTIME_LOGIN = "lethe_app"
#: The login role of the telecom connection on the embedded server (a member of
#: ``lethe_store``); on an external server it is ``<database>_telecom``.
STORE_LOGIN = "lethe_telecom"
#: The governed schema the telecom connection is granted (when it exists at start, else
#: when the reference schema is applied: lethe_dev.synthetic.schema).
STORE_SCHEMAS = ("telecom",)
_LEDGER_KEY_FILE = "ledger-key"


class EmbeddedStack:
    """PostgreSQL, SFTP and S3 servers for the four lethe connections.

    Layout of ``state_dir``: ``postgres/`` (data directory, log, socket), ``sftp/`` (host and
    client keys), ``sftp-root/`` (the directory served over SFTP).

    :param state_dir: where the servers keep their state; created if missing.
    :param external_postgres_dsn: a server to use instead of starting one; defaults to
        ``LETHE_TEST_POSTGRES_DSN``. An empty string forces the embedded server.
    """

    def __init__(self, state_dir: Path | str, *, external_postgres_dsn: str | None = None) -> None:
        self.state_dir = Path(state_dir).absolute()
        dsn = (
            os.environ.get(EXTERNAL_DSN_ENV, "")
            if external_postgres_dsn is None
            else external_postgres_dsn
        )
        self.postgres: EmbeddedPostgres | ExternalPostgres = (
            ExternalPostgres(dsn) if dsn else EmbeddedPostgres(self.state_dir / "postgres")
        )
        # Imported here: asyncssh and moto take seconds to import, and the command line's
        # env, status and down (which import this package) need neither.
        from lethe_dev.stack.s3 import EmbeddedS3Server
        from lethe_dev.stack.sftp import EmbeddedSFTPServer

        self.sftp: EmbeddedSFTPServer = EmbeddedSFTPServer(
            self.state_dir / "sftp-root", self.state_dir / "sftp"
        )
        self.s3: EmbeddedS3Server = EmbeddedS3Server()
        self.runtime_password = secrets.token_urlsafe(24)
        self.store_password = secrets.token_urlsafe(24)
        self._started = False

    @property
    def runtime_login(self) -> str:
        """The login role of the control connection (a member of ``lethe_runtime``)."""
        if isinstance(self.postgres, ExternalPostgres):
            return f"{self.postgres.database}_app"
        return RUNTIME_LOGIN

    @property
    def store_login(self) -> str:
        """The login role of the telecom connection (a member of ``lethe_store``)."""
        if isinstance(self.postgres, ExternalPostgres):
            return f"{self.postgres.database}_telecom"
        return STORE_LOGIN

    @property
    def postgres_dsn(self) -> str:
        """A libpq URI of the ``lethe`` database (for psycopg or psql)."""
        return self.postgres.dsn

    @property
    def sftp_root(self) -> Path:
        """The directory served over SFTP, on local disk."""
        return self.sftp.root

    @property
    def s3_endpoint_url(self) -> str:
        """The URL of the S3 server."""
        return self.s3.endpoint_url

    def start(self) -> EmbeddedStack:
        """Start the three servers; on failure stop those already started.

        :return: the stack itself.
        :raises StackError: when a server cannot start.
        """
        if self._started:
            return self
        self.state_dir.mkdir(parents=True, exist_ok=True)
        started: list[EmbeddedPostgres | ExternalPostgres | EmbeddedSFTPServer | EmbeddedS3Server]
        started = []
        try:
            for server in (self.postgres, self.sftp, self.s3):
                server.start()
                started.append(server)
                if server is self.postgres:
                    self._create_runtime_login()
                    self._create_store_login()
        except BaseException:
            for server in reversed(started):
                try:
                    server.stop()
                except Exception:
                    log.exception("Could not stop %s after a failed start", type(server).__name__)
            raise
        self._started = True
        # A caller that forgets stop() (or dies of an exception) must not leave servers behind.
        atexit.register(self.stop)
        log.info("Embedded stack is up in %s", self.state_dir)
        return self

    def stop(self) -> None:
        """Stop every server; safe to call more than once.

        :raises StackError: when PostgreSQL cannot be stopped (after the others were stopped).
        """
        if not self._started:
            return
        self._started = False
        atexit.unregister(self.stop)
        errors: list[Exception] = []
        logins = (self.runtime_login, self.store_login)
        for server in (self.s3, self.sftp, self.postgres):
            try:
                server.stop()
            except Exception as e:
                log.exception("Could not stop %s", type(server).__name__)
                errors.append(e)
        if isinstance(self.postgres, ExternalPostgres) and not errors:
            for login in logins:
                self._drop_runtime_login(login)
        if errors:
            raise errors[0]
        log.info("Embedded stack in %s stopped", self.state_dir)

    def __enter__(self) -> EmbeddedStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _create_runtime_login(self) -> None:
        import psycopg

        from lethe.control.roles import ensure_runtime_login

        with psycopg.connect(self.postgres.dsn, connect_timeout=10) as conn:
            ensure_runtime_login(conn, self.runtime_login, self.runtime_password)

    def _create_store_login(self) -> None:
        import psycopg

        from lethe.stores.postgres.roles import ensure_store_login

        with psycopg.connect(self.postgres.dsn, connect_timeout=10) as conn:
            present = tuple(
                schema
                for schema in STORE_SCHEMAS
                if conn.execute("SELECT to_regnamespace(%s)", (schema,)).fetchone()[0] is not None
            )
            ensure_store_login(conn, self.store_login, self.store_password, present)

    def _drop_runtime_login(self, login: str) -> None:
        import psycopg

        from lethe.control.roles import drop_login

        assert isinstance(self.postgres, ExternalPostgres)
        try:
            with psycopg.connect(self.postgres.admin_dsn, connect_timeout=10) as conn:
                drop_login(conn, login)
        except psycopg.Error:
            log.exception("Could not drop the role %s", login)

    def ledger_key(self) -> str:
        """The ledger's HMAC key: made once per state directory, kept there (mode 0600)."""
        path = self.state_dir / _LEDGER_KEY_FILE
        if not path.exists():
            self.state_dir.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32))
        return path.read_text().strip()

    def airflow_connections(self) -> dict[str, dict[str, Any]]:
        """The lethe connections Airflow's components use, by connection id, as JSON-ready
        dicts: the four stores' (the control database as the runtime role, the telecom
        database as the store login) and the ledger key."""
        database = self.postgres.airflow_connection()
        control = dict(database, login=self.runtime_login, password=self.runtime_password)
        telecom = dict(database, login=self.store_login, password=self.store_password)
        return {
            connections.TELECOM_DB: telecom,
            connections.CONTROL_DB: control,
            connections.RECORDINGS_SFTP: self.sftp.airflow_connection(),
            connections.OBJECT_STORE: self.s3.airflow_connection(),
            connections.LEDGER_KEY: {"conn_type": "generic", "password": self.ledger_key()},
        }

    def admin_env(self) -> dict[str, str]:
        """``AIRFLOW_CONN_LETHE_CONTROL_ADMIN_DB`` and ``AIRFLOW_CONN_LETHE_TELECOM_ADMIN_DB``:
        the owner of the control schema and of the telecom tables (the server's superuser),
        for ``python -m lethe.control migrate --conn-id lethe_control_admin_db`` and for
        creating and loading the telecom tables only."""
        admin = json.dumps(self.postgres.airflow_connection(), sort_keys=True)
        return {
            connections.env_var_name(connections.CONTROL_ADMIN_DB): admin,
            connections.env_var_name(connections.TELECOM_ADMIN_DB): admin,
        }

    def airflow_env(self) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` variables (JSON values) for the lethe connections, and the
        form fields Airflow must mask as sensitive (:data:`lethe.intake.SENSITIVE_FIELDS`).

        :return: variable name to value; holds credentials, so never log it.
        """
        from lethe.intake import SENSITIVE_FIELDS_ENV

        return {
            **SENSITIVE_FIELDS_ENV,
            **{
                connections.env_var_name(conn_id): json.dumps(connection, sort_keys=True)
                for conn_id, connection in self.airflow_connections().items()
            },
        }

    def describe(self) -> dict[str, Any]:
        """Where each server is, without credentials."""
        return {
            "state_dir": str(self.state_dir),
            "postgres": {
                **self.postgres.describe(),
                "external": isinstance(self.postgres, ExternalPostgres),
            },
            "sftp": self.sftp.describe(),
            "s3": self.s3.describe(),
        }
