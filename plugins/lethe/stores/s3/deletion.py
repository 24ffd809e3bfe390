"""Deleting S3 objects in ``DeleteObjects`` calls of at most 1000 entries.

A purge and an erase queue (key, version) entries in a :class:`Deleter`; a key counts as
removed once every entry queued for it is deleted, as failed when any was refused.
Per-key errors are counted (their codes, never keys) and the rest is still tried; a
refused call ends the operation with a :class:`~lethe.exceptions.PurgeError` carrying
what it achieved.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from lethe.exceptions import PurgeError
from lethe.stores.s3.access import error_code

if TYPE_CHECKING:
    from lethe.stores.s3.access import S3Access, S3Tally

#: The most keys one DeleteObjects call takes.
DELETE_BATCH = 1000


@dataclass
class _KeyState:
    """What the deletions of one key's entries came to, across DeleteObjects calls."""

    live: bool
    outstanding: int
    failed: bool = False


@dataclass
class Deleter:
    """Queues (key, version) entries and sends them in DeleteObjects calls of 1000."""

    access: S3Access
    tally: S3Tally
    pending: list[tuple[str, str | None]] = field(default_factory=list)
    states: dict[str, _KeyState] = field(default_factory=dict)

    def add(self, key: str, version_ids: list[str | None], *, live: bool) -> None:
        """Queue every entry of ``key``; ``live``: it has a current object (counts as removed)."""
        if not version_ids:
            return
        self.states[key] = _KeyState(live=live, outstanding=len(version_ids))
        for version_id in version_ids:
            self.pending.append((key, version_id))
            if len(self.pending) >= DELETE_BATCH:
                self.flush()

    def flush(self) -> None:
        """Send the queued entries (at most 1000) in one DeleteObjects call."""
        if not self.pending:
            return
        batch, self.pending = self.pending[:DELETE_BATCH], self.pending[DELETE_BATCH:]
        objects = [
            {"Key": key} if version_id is None else {"Key": key, "VersionId": version_id}
            for key, version_id in batch
        ]
        response = self._call(objects)
        self.tally.batches += 1
        deleted = Counter(entry.get("Key") for entry in response.get("Deleted", ()))
        errors = response.get("Errors", ())
        failed_keys = {entry.get("Key") for entry in errors}
        for entry in errors:
            self.tally.note_error(str(entry.get("Code", "Unknown")))
        sent = Counter(key for key, _ in batch)
        if self.access.store.versioned:
            self.tally.versions_removed += sum(deleted.values())
        for key, count in sent.items():
            state = self.states[key]
            if key in failed_keys or deleted[key] < count:
                state.failed = True
            state.outstanding -= count
            if state.outstanding <= 0:
                del self.states[key]
                if state.failed:
                    self.tally.failed += 1
                elif state.live:
                    self.tally.removed += 1
        if self.pending and len(self.pending) >= DELETE_BATCH:
            self.flush()

    def close(self) -> None:
        """Send whatever is still queued."""
        while self.pending:
            self.flush()

    def _call(self, objects: list[dict[str, str]]) -> dict[str, Any]:
        """One DeleteObjects call; a refused call ends the purge with what it achieved."""
        try:
            return self.access.client().delete_objects(
                Bucket=self.access.store.bucket, Delete={"Objects": objects, "Quiet": False}
            )
        except (ClientError, BotoCoreError) as e:
            code = error_code(e)
            self.tally.note_error(code)
            failed = self.tally.failed + len(self.states)
            store = self.access.store
            raise PurgeError(
                f"DeleteObjects failed on s3 store {store.conn_id}:{store.location} "
                f"({code}); {self.tally.removed} objects were removed before",
                removed=self.tally.removed,
                failed=failed,
            ) from e
