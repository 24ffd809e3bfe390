"""Deleting S3 objects in ``DeleteObjects`` calls of at most 1000 entries, several in flight.

A purge and an erase queue (key, version) entries in a :class:`Deleter`; every 1000
entries go out in one ``DeleteObjects`` call with ``Quiet: true`` (the response lists
only the entries that failed), sent from a small thread pool so that up to
:data:`IN_FLIGHT` calls wait on the server at once (boto3 clients are thread-safe). A key
counts as removed once every entry queued for it is deleted, as failed when any was
refused. Per-key errors are counted (their codes, never keys) and the rest is still
tried; a refused call ends the operation with a :class:`~lethe.exceptions.PurgeError`
carrying what it achieved, after the calls already in flight have been answered.

What counts as removed (what existed and went, not what the server says it deleted): S3
answers "deleted" for a key that does not exist (a plain bucket) and for a version that
is already gone (a versioned bucket). So a key is only ever queued after a listing showed
it, and a purge of a plain bucket sends each key with the ``ETag`` it was listed with: S3
deletes it only while that object is still there (a conditional delete, S3 since
2025-09), and answers ``NoSuchKey`` when another run (or anyone) removed it meanwhile, or
``PreconditionFailed`` when it was rewritten since it was listed. Such a key is counted
in ``gone_meanwhile`` (not removed, not failed): two concurrent purges together count
each key once. Servers that ignore the ``ETag`` element (moto, older S3-compatible
stores) delete unconditionally, and then a key removed by two concurrent runs is counted
by both. In a versioned bucket the condition cannot be used (it applies to the current
version, and a purge deletes versions by id, delete markers included): a key counts when
every version listed for it was reported deleted, so two purges of one versioned store
running at the same moment may both count it; serialising purges per store avoids that.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from lethe.exceptions import PurgeError
from lethe.stores.base import Refs
from lethe.stores.s3.access import error_code

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Future

    from lethe.stores.s3.access import S3Access, S3Tally

#: The most keys one DeleteObjects call takes.
DELETE_BATCH = 1000
#: DeleteObjects calls waiting on the server at once.
IN_FLIGHT = 4
#: Per-key error codes of a conditional delete that mean "not there as listed any more".
GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "PreconditionFailed"})


@dataclass
class _KeyState:
    """What the deletions of one key's entries came to, across DeleteObjects calls."""

    live: bool
    outstanding: int
    unsent: int = 0
    failed: bool = False
    gone: bool = False


#: One queued entry: key, version id (None: the current object), ETag condition (or None).
_Entry = tuple[str, "str | None", "str | None"]
#: One call in flight: its answer, its entries, and what to tell its count (or None).
_Call = tuple["Future[dict[str, Any]]", "list[_Entry]", "Callable[[int], None] | None"]


@dataclass
class Deleter:
    """Queues (key, version) entries and sends them in DeleteObjects calls of 1000.

    Thread-safe: listings running in several threads may :meth:`add` at once; they
    update the shared tally under :attr:`lock` too.
    """

    access: S3Access
    tally: S3Tally
    in_flight: int = IN_FLIGHT
    pending: list[_Entry] = field(default_factory=list)
    states: dict[str, _KeyState] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _calls: deque[_Call] = field(default_factory=deque)
    _pool: ThreadPoolExecutor | None = None
    #: Told the count of objects each DeleteObjects call removed, once its answer is in.
    on_removed: Callable[[int], None] | None = None
    #: Told, before each call is sent, how many keys it completes and their entries
    #: (``StoreAdapter.removing``); what it returns is told the call's count instead of
    #: :attr:`on_removed` once its answer is in.
    removing: Callable[[int, Refs], Callable[[int], None]] | None = None

    def add(
        self,
        key: str,
        version_ids: list[str | None],
        *,
        live: bool,
        etag: str | None = None,
    ) -> None:
        """Queue every entry of ``key``; ``live``: it has a current object (counts as
        removed); ``etag``: delete the current object only while it has this ETag."""
        if not version_ids:
            return
        with self.lock:
            self.states[key] = _KeyState(
                live=live, outstanding=len(version_ids), unsent=len(version_ids)
            )
            for version_id in version_ids:
                self.pending.append((key, version_id, etag if version_id is None else None))
                if len(self.pending) >= DELETE_BATCH:
                    self._send()

    def flush(self) -> None:
        """Send the queued entries (at most 1000) in one DeleteObjects call, and wait for
        every call in flight."""
        with self.lock:
            self._send()
        self._settle(0)

    def close(self) -> None:
        """Send whatever is still queued and wait for every answer."""
        try:
            with self.lock:
                while self.pending:
                    self._send()
            self._settle(0)
        finally:
            self._shutdown()

    def abandon(self) -> None:
        """Drop what is queued, wait for the calls in flight and count their answers
        (after a failed listing: what was deleted is still reported)."""
        with self.lock:
            for key, _, _ in self.pending:
                self.states.pop(key, None)
            self.pending.clear()
        try:
            self._settle(0)
        except PurgeError:
            pass  # the listing's error is the one the caller reports
        finally:
            self._shutdown()

    def _send(self) -> None:
        """Hand the next batch to the pool; wait for the oldest call when too many are out."""
        if not self.pending:
            return
        batch, self.pending = self.pending[:DELETE_BATCH], self.pending[DELETE_BATCH:]
        done = self._announce(batch)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.in_flight, thread_name_prefix="lethe-s3-delete")
        self._calls.append((self._pool.submit(self._call, batch), batch, done))
        if len(self._calls) > self.in_flight:
            self._settle(self.in_flight)

    def _settle(self, keep: int) -> None:
        """Count the answers of the oldest calls until at most ``keep`` are in flight.

        A refused call is raised (as a PurgeError with the counts) once every other call
        in flight has been answered and counted.
        """
        error: BaseException | None = None
        while True:
            with self.lock:
                if len(self._calls) <= keep:
                    break
                future, batch, done = self._calls.popleft()
            try:
                response = future.result()
            except (ClientError, BotoCoreError) as e:
                with self.lock:
                    self.tally.note_error(error_code(e))
                error = error or e
                keep = 0  # stop: answer what is out, then report
                continue
            with self.lock:
                self._count(batch, response, done)
        if error is not None:
            raise self._refused(error) from error

    def _announce(self, batch: list[_Entry]) -> Callable[[int], None] | None:
        """Before ``batch`` is sent: tell :attr:`removing` the keys whose last entry it
        holds (the keys its answer can count as removed) and those entries."""
        completing: set[str] = set()
        for key, _, _ in batch:
            state = self.states[key]
            state.unsent -= 1
            if state.unsent == 0 and state.live:
                completing.add(key)
        if self.removing is None or not completing:
            return None
        items = tuple([key, version_id] for key, version_id, _ in batch if key in completing)
        return self.removing(len(completing), Refs(items=items))

    def _count(
        self, batch: list[_Entry], response: dict[str, Any], done: Callable[[int], None] | None
    ) -> None:
        """Count one call's answer: every entry not listed among the errors went."""
        before = self.tally.removed
        self._count_entries(batch, response)
        if done is not None:
            done(self.tally.removed - before)
        elif self.on_removed is not None and self.tally.removed > before:
            self.on_removed(self.tally.removed - before)

    def _count_entries(self, batch: list[_Entry], response: dict[str, Any]) -> None:
        self.tally.batches += 1
        errors: dict[tuple[str, str | None], str] = {}
        for entry in response.get("Errors", ()):
            code = str(entry.get("Code", "Unknown"))
            errors[(entry.get("Key"), entry.get("VersionId"))] = code
        for key, version_id, etag in batch:
            code = errors.get((key, version_id))
            if code is None and version_id is not None:
                code = errors.get((key, None))  # a server that leaves the version id out
            state = self.states[key]
            if code is None:
                if version_id is not None:
                    self.tally.versions_removed += 1
            elif etag is not None and code in GONE_CODES:
                state.gone = True
            else:
                state.failed = True
                self.tally.note_error(code)
            state.outstanding -= 1
            if state.outstanding <= 0:
                del self.states[key]
                if state.failed:
                    self.tally.failed += 1
                elif state.gone:
                    self.tally.gone_meanwhile += 1
                elif state.live:
                    self.tally.removed += 1

    def _call(self, batch: list[_Entry]) -> dict[str, Any]:
        """One DeleteObjects call (in a pool thread)."""
        objects = []
        for key, version_id, etag in batch:
            entry = {"Key": key}
            if version_id is not None:
                entry["VersionId"] = version_id
            if etag is not None:
                entry["ETag"] = etag
            objects.append(entry)
        return self.access.client().delete_objects(
            Bucket=self.access.store.bucket, Delete={"Objects": objects, "Quiet": True}
        )

    def _refused(self, error: BaseException) -> PurgeError:
        """The PurgeError of a refused call, with what was achieved and what was not."""
        with self.lock:
            failed = self.tally.failed + len(self.states)
            removed = self.tally.removed
        store = self.access.store
        return PurgeError(
            f"DeleteObjects failed on s3 store {store.conn_id}:{store.location} "
            f"({error_code(error)}); {removed} objects were removed before",
            removed=removed,
            failed=failed,
        )

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
