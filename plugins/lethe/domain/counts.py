"""What a store reports: counts of items surveyed, purged, collected, erased or rectified.

Every figure is a number (or a SHA-256 hash for a rectified value): never personal data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime


@dataclass(frozen=True)
class Survey:
    """How much of a store has expired, counted before (or instead of) a purge.

    Every count is of items (rows, files, objects): numbers only, no personal data.

    :param total: items in the store.
    :param expired: items aged before their cutoff.
    :param held: expired items kept for a legal hold.
    :param restricted: expired items kept for a processing restriction (and not held).
    :param newest: the newest age of any item; None when no item has an age.
    :param unaged: items without an age (service not ended, ticket still open): they
        never expire and count as young for the clock check.
    :param oldest_removable: the oldest age among expired items that are not protected.
    :param oldest: the oldest age of any item that counts against the retention limit:
        every item except the expired ones kept for a hold or a restriction.
    """

    total: int
    expired: int
    held: int = 0
    restricted: int = 0
    newest: datetime | None = None
    unaged: int = 0
    oldest_removable: datetime | None = None
    oldest: datetime | None = None

    @property
    def removable(self) -> int:
        """Expired items that may go: neither held nor restricted."""
        return self.expired - self.held - self.restricted


@dataclass
class SurveyTally:
    """The counts of a :class:`Survey`, kept item by item by an adapter that walks its store
    (SFTP files, S3 objects); adapters extend it with counts of their own.

    Items without an age are not counted here (:attr:`Survey.unaged` stays 0).
    """

    total: int = 0
    expired: int = 0
    held: int = 0
    restricted: int = 0
    newest: datetime | None = None
    oldest_removable: datetime | None = None
    #: The oldest age of a young or removable item (what counts against the limit).
    oldest: datetime | None = None

    def note_age(self, age: datetime) -> None:
        """An item of this age was counted in ``total``."""
        if self.newest is None or age > self.newest:
            self.newest = age

    def note_removable(self, age: datetime) -> None:
        """An expired item of this age may go (neither held nor restricted)."""
        if self.oldest_removable is None or age < self.oldest_removable:
            self.oldest_removable = age
        self.note_counted(age)

    def note_counted(self, age: datetime) -> None:
        """An item of this age counts against the retention limit (young or removable)."""
        if self.oldest is None or age < self.oldest:
            self.oldest = age

    def survey(self) -> Survey:
        """The survey these counts make."""
        return Survey(
            total=self.total,
            expired=self.expired,
            held=self.held,
            restricted=self.restricted,
            newest=self.newest,
            oldest_removable=self.oldest_removable,
            oldest=self.oldest,
        )


@dataclass(frozen=True)
class CollectResult:
    """What a collect found for one subject in one store (counts only).

    :param rows: rows (or file listings, or object rows) written to the sink.
    :param files: files copied into the sink.
    :param bytes: bytes of the files copied.
    :param withheld: items of the subject left out because of a legal hold (never shown
        to the subject; recorded in the ledger only).
    """

    rows: int = 0
    files: int = 0
    bytes: int = 0
    withheld: int = 0


@dataclass(frozen=True)
class EraseResult:
    """What erasing one subject's items in one store did (counts only).

    :param removed: items deleted (rows, files, objects).
    :param anonymised: rows whose personal columns were overwritten instead.
    :param rewritten: shared objects rewritten without the subject's rows (S3 exports that
        hold many visitors); the subject's rows in them count in ``removed``.
    :param withheld: items of the subject kept because of a legal hold.
    :param redacted: rows of any subject whose free text (``free_text`` columns) mentioned
        the subject's e-mail address or phone number; the mentions were replaced by
        ``[removed]``, the rows stay.
    """

    removed: int = 0
    anonymised: int = 0
    rewritten: int = 0
    withheld: int = 0
    redacted: int = 0

    @property
    def touched(self) -> int:
        return self.removed + self.anonymised


@dataclass(frozen=True)
class RectifyResult:
    """What a rectification changed in one store: rows updated, and per column the SHA-256
    of each distinct old value and of the new value (never the values themselves)."""

    rows: int = 0
    old_hashes: dict[str, list[str]] = field(default_factory=dict)
    new_hashes: dict[str, str] = field(default_factory=dict)
    withheld: int = 0


@dataclass(frozen=True)
class PurgeResult:
    """What a purge removed. ``removed`` counts items (rows, files, object keys)."""

    removed: int
    batches: int = 0
    partitions_dropped: int = 0
    versions_removed: int = 0
    directories_removed: int = 0
    details: dict[str, int] = field(default_factory=dict)
