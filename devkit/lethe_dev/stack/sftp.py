"""SFTP for the embedded stack: an asyncssh server in a background thread, on loopback.

It serves one directory as the root of a chroot to one user, who logs in with a password or
with a client key. Paths are confined twice: asyncssh maps ``..`` onto the root, and every
mapped path is also resolved (symbolic links included) and refused when it lands outside.
Creating links is refused, so no link can point out of the root.

The ed25519 host key and client key are generated once and kept in ``key_dir``; the
password is new on every start. Clients pin the host key (the ``host_key`` extra of the
Airflow connection), as the SSH provider checks host keys by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import threading
from pathlib import Path
from typing import Any

import asyncssh

from lethe.exceptions import StackError
from lethe_dev.stack._net import LOOPBACK

log = logging.getLogger(__name__)

#: The one account of the embedded SFTP server.
USERNAME = "lethe"
HOST_KEY_FILE = "ssh_host_ed25519_key"
CLIENT_KEY_FILE = "client_ed25519_key"


def _load_or_create_key(path: Path, comment: str) -> asyncssh.SSHKey:
    if path.exists():
        try:
            return asyncssh.read_private_key(path)
        except (OSError, asyncssh.KeyImportError) as e:
            raise StackError(f"cannot read the SSH key {path}: {e}") from e
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key.export_private_key())
    path.with_name(path.name + ".pub").write_bytes(key.export_public_key())
    log.info("Generated the SSH key %s", path)
    return key


def _openssh_public(key: asyncssh.SSHKey) -> str:
    """``ssh-ed25519 AAAA...``: the key type and data, without a comment."""
    return " ".join(key.export_public_key().decode().split()[:2])


class _ChrootSFTPServer(asyncssh.SFTPServer):
    """asyncssh's chrooted SFTP server, refusing links and any path that resolves outside."""

    def __init__(self, chan: asyncssh.SSHServerChannel, *, root: Path) -> None:
        super().__init__(chan, chroot=os.fsencode(root))
        self._real_root = os.fsencode(os.path.realpath(root))

    def map_path(self, path: bytes) -> bytes:
        local = super().map_path(path)
        resolved = os.path.realpath(local)
        if resolved != self._real_root and not resolved.startswith(self._real_root + b"/"):
            raise asyncssh.SFTPPermissionDenied("Path leaves the served directory")
        return local

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPOpUnsupported("Links are not supported")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPOpUnsupported("Links are not supported")


class _SSHServer(asyncssh.SSHServer):
    """Authenticates the one user by password or client key; tracks open connections."""

    def __init__(self, owner: EmbeddedSFTPServer) -> None:
        self._owner = owner
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._owner._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._owner._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == self._owner.username and secrets.compare_digest(
            password.encode(), self._owner.password.encode()
        )

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return (
            username == self._owner.username and key.public_data == self._owner.client_public_data
        )


class EmbeddedSFTPServer:
    """An SSH server offering only SFTP, chrooted to ``root``, on 127.0.0.1.

    :param root: the directory served as ``/``; created if missing.
    :param key_dir: where the host key and the client key are kept.
    :param username: the one account.
    :param start_timeout: seconds to wait for the listener.
    """

    def __init__(
        self,
        root: Path,
        key_dir: Path,
        *,
        username: str = USERNAME,
        start_timeout: float = 10.0,
    ) -> None:
        self.root = Path(root).absolute()
        self.key_dir = Path(key_dir).absolute()
        self.username = username
        self.start_timeout = start_timeout
        self.host = LOOPBACK
        self.port = 0
        self.password = ""
        self.host_public_key = ""
        self.client_key_file = self.key_dir / CLIENT_KEY_FILE
        self.client_public_data = b""
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None

    def start(self) -> None:
        """Start listening on a free port of 127.0.0.1.

        :raises StackError: when a key cannot be read or the listener does not start.
        """
        if self._loop is not None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        host_key = _load_or_create_key(self.key_dir / HOST_KEY_FILE, "lethe-sftp-host")
        client_key = _load_or_create_key(self.client_key_file, "lethe-sftp-client")
        self.host_public_key = _openssh_public(host_key)
        self.client_public_data = client_key.public_data
        self.password = secrets.token_urlsafe(18)

        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="lethe-sftp-server", daemon=True)
        thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(host_key), loop)
        try:
            self._acceptor = future.result(timeout=self.start_timeout)
        except Exception as e:
            future.cancel()
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()
            raise StackError(f"the SFTP server did not start on {self.host}: {e!r}") from e
        self._loop, self._thread = loop, thread
        self.port = self._acceptor.get_port()
        log.info("SFTP server is up on %s:%d serving %s", self.host, self.port, self.root)

    async def _listen(self, host_key: asyncssh.SSHKey) -> asyncssh.SSHAcceptor:
        def sftp_factory(chan: asyncssh.SSHServerChannel) -> asyncssh.SFTPServer:
            return _ChrootSFTPServer(chan, root=self.root)

        return await asyncssh.listen(
            host=self.host,
            port=0,
            server_host_keys=[host_key],
            server_factory=lambda: _SSHServer(self),
            sftp_factory=sftp_factory,
            allow_scp=False,
            agent_forwarding=False,
            x11_forwarding=False,
        )

    def stop(self) -> None:
        """Close the listener and every open session, then end the loop thread.

        Does nothing when the server is not running.
        """
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        except Exception as e:  # the loop is stopped below all the same
            log.warning("The SFTP server did not close cleanly: %r", e)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            if not thread.is_alive():
                loop.close()
            self._loop = self._thread = self._acceptor = None
        log.info("SFTP server on port %d stopped", self.port)

    async def _shutdown(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
        connections = list(self._connections)
        for conn in connections:
            conn.close()
        for conn in connections:
            await conn.wait_closed()
        if self._acceptor is not None:
            await self._acceptor.wait_closed()
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pending, return_exceptions=True)

    def airflow_connection(self) -> dict[str, Any]:
        """The server as an Airflow SFTP connection, with password, client key and pinned host key.

        :return: the JSON form of ``AIRFLOW_CONN_*``.
        """
        return {
            "conn_type": "sftp",
            "host": self.host,
            "port": self.port,
            "login": self.username,
            "password": self.password,
            "extra": {
                "key_file": str(self.client_key_file),
                "host_key": self.host_public_key,
                "look_for_keys": False,
            },
        }

    def describe(self) -> dict[str, Any]:
        """Where the server is and what it serves, without credentials."""
        return {"host": self.host, "port": self.port, "root": str(self.root)}
