"""S3 for the embedded stack: moto in server mode on a free port of 127.0.0.1.

moto accepts any credentials; the stack hands out fixed test values so that every
client signs its requests the same way. Buckets live in this process's memory.
"""

from __future__ import annotations

import copy
import logging
import threading
from datetime import UTC, datetime
from typing import Any

from lethe.exceptions import StackError
from lethe_dev.stack._net import LOOPBACK, wait_for_port

log = logging.getLogger(__name__)

#: Fixed test credentials: moto checks none of them.
ACCESS_KEY_ID = "lethe-test-access-key"
SECRET_ACCESS_KEY = "lethe-test-secret-key"
REGION = "us-east-1"


class EmbeddedS3Server:
    """moto's S3-compatible HTTP server, in a thread of this process.

    :param start_timeout: seconds to wait for the server to listen.
    """

    def __init__(self, *, start_timeout: float = 30.0) -> None:
        self.start_timeout = start_timeout
        self.host = LOOPBACK
        self.port = 0
        self.access_key_id = ACCESS_KEY_ID
        self.secret_access_key = SECRET_ACCESS_KEY
        self.region = REGION
        self._server: Any = None

    @property
    def endpoint_url(self) -> str:
        """The base URL clients pass as ``endpoint_url``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Start moto's server on a port the kernel picks.

        :raises StackError: when moto is missing or the server does not listen in time.
        """
        if self._server is not None:
            return
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as e:
            raise StackError("the S3 server needs moto[server]: pip install 'moto[server]'") from e

        _parse_iso_timestamps_natively()
        _list_versions_without_deep_copies()
        server = ThreadedMotoServer(ip_address=self.host, port=0, verbose=False)
        # ThreadedMotoServer.start() waits without a timeout; a server that fails to bind
        # would hang it, so it is started from a helper thread and awaited with one.
        starter = threading.Thread(target=server.start, name="lethe-s3-start", daemon=True)
        starter.start()
        starter.join(timeout=self.start_timeout)
        if starter.is_alive():
            raise StackError(f"the S3 server did not start within {self.start_timeout:.0f} s")
        self.port = int(server.get_host_and_port()[1])
        if not wait_for_port(self.port, self.host, timeout=self.start_timeout):
            server.stop()
            raise StackError(f"the S3 server does not answer on {self.endpoint_url}")
        self._server = server
        log.info("S3 server (moto) is up on %s", self.endpoint_url)

    def stop(self) -> None:
        """Shut the server down; nothing happens when it is not running."""
        if self._server is None:
            return
        self._server.stop()
        self._server = None
        log.info("S3 server on port %d stopped", self.port)

    def airflow_connection(self) -> dict[str, Any]:
        """The server as an Airflow AWS connection.

        :return: the JSON form of ``AIRFLOW_CONN_*``.
        """
        return {
            "conn_type": "aws",
            "login": self.access_key_id,
            "password": self.secret_access_key,
            "extra": {"endpoint_url": self.endpoint_url, "region_name": self.region},
        }

    def describe(self) -> dict[str, Any]:
        """Where the server is, without credentials."""
        return {"endpoint_url": self.endpoint_url}


def _parse_iso_timestamps_natively() -> None:
    """Have moto's response serializer read ISO 8601 timestamps with the standard library.

    moto turns every ``LastModified`` it lists back into a datetime through botocore's
    general parser (dateutil), twice a key: two thirds of a listing's time here. The
    standard library reads the same strings hundreds of times faster; any other form still
    goes to moto's own parser. Listings answer the same, only sooner.
    """
    import moto.core.serialize as serialize

    original = serialize.parse_to_aware_datetime
    if getattr(original, "lethe_native", False):
        return

    def parse_to_aware_datetime(value: Any) -> datetime:
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                return original(value)
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
        return original(value)

    parse_to_aware_datetime.lethe_native = True  # type: ignore[attr-defined]
    serialize.parse_to_aware_datetime = parse_to_aware_datetime


def _list_versions_without_deep_copies() -> None:
    """Have moto's version listing copy each version shallowly.

    For every page it answers, moto deep-copies every version of every key in the bucket,
    contents included (a new spooled file each), only to mark each copy ``is_latest``:
    most of a versioned listing's time. A shallow copy serves the same, since the listing
    sets nothing else on its copies. The copies read the stored versions' contents and
    never close them (a copy's ``dispose``, which its garbage collection calls, does
    nothing); the stored versions stay as they are.
    """
    import moto.s3.models as models

    if not isinstance(models.copy, _ShallowVersionCopies):
        models.copy = _ShallowVersionCopies(models.FakeKey, models.FakeDeleteMarker)


class _ShallowVersionCopies:
    """What :mod:`moto.s3.models` sees as its ``copy`` module: ``deepcopy`` of a list of
    versions (the only deep copy there, the version listing's) copies each shallowly;
    anything else is the standard module's."""

    copy = staticmethod(copy.copy)

    def __init__(self, *version_types: type) -> None:
        # Each version type's listed copy: the same class, but disposing of it leaves the
        # contents it shares with the stored version open.
        self.copy_types = {
            kind: type(kind.__name__, (kind,), {"dispose": _keep_shared_contents})
            for kind in version_types
        }

    def deepcopy(self, value: Any) -> Any:
        if not (isinstance(value, list) and all(type(v) in self.copy_types for v in value)):
            return copy.deepcopy(value)
        shallow = []
        for version in value:
            clone = object.__new__(self.copy_types[type(version)])
            clone.__dict__.update(version.__dict__)
            shallow.append(clone)
        return shallow


def _keep_shared_contents(self: Any, garbage: bool = False) -> None:
    """A listed copy's ``dispose``: its contents are the stored version's, left open."""
