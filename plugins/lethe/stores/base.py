"""What every store adapter shares: cutoffs, protections, and the adapter contract.

An adapter (one per store kind: PostgreSQL, SFTP, S3) wraps an official provider hook and
one store of a policy category. For retention it can *survey* the store (how much there
is, how much has expired, how much of that is protected) and *purge* what may go; the
operator decides between the two (dry run, purge guard). For a subject's access or
portability request it can *collect* everything of that subject into an export sink. The
adapter only does the I/O.
"""

from __future__ import annotations

import abc
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from lethe.policy.models import Category
    from lethe.policy.primitives import Duration
    from lethe.policy.vocabulary import Identity

#: The provider's time zone: retention periods are counted in its calendar.
PROVIDER_TZ = ZoneInfo("Europe/Amsterdam")


def cutoff_before(moment: datetime, period: Duration, tz: ZoneInfo = PROVIDER_TZ) -> datetime:
    """The moment ``period`` before ``moment``, counted on the provider's calendar; in UTC.

    Months and years are calendar months and years of the wall clock in ``tz`` (P6M from
    31 August 00:00 is 28/29 February 00:00, clamped to the shorter month). Where that
    wall-clock time is skipped or repeated by a DST change, the earlier instant is taken,
    so nothing is ever treated as older than it is.

    :param moment: an aware datetime, usually the run's logical date.
    """
    if moment.tzinfo is None:
        raise ValueError("cutoff_before needs an aware datetime")
    wall = period.before(moment.astimezone(tz).replace(tzinfo=None))
    candidates = (wall.replace(tzinfo=tz, fold=0), wall.replace(tzinfo=tz, fold=1))
    return min(c.astimezone(UTC) for c in candidates)


def store_label(store: Any) -> str:
    """How a store is named in logs, the ledger, request progress and task labels: kind,
    connection, place (``postgres:lethe_telecom_db:telecom.usage_records``)."""
    return f"{store.kind}:{store.conn_id}:{store.location}"


@dataclass(frozen=True)
class Cutoff:
    """When the items of one store have expired: aged strictly before the cutoff.

    :param default: the cutoff for every item (aware, UTC).
    :param per_subject: for a customer-defined retention: the cutoff of each subject
        (identity value -> cutoff) that chose its own period; others get ``default``.
    :param subject_identity: the identity type ``per_subject`` is keyed by.
    """

    default: datetime
    per_subject: Mapping[str, datetime] = field(default_factory=dict)
    subject_identity: Identity | None = None

    def for_subject(self, value: str | None) -> datetime:
        """The cutoff for an item of the subject ``value`` (of ``subject_identity``)."""
        if value is None:
            return self.default
        return self.per_subject.get(value, self.default)

    @property
    def earliest(self) -> datetime:
        """The earliest cutoff of any subject: items aged before it are expired for all."""
        return min([self.default, *self.per_subject.values()])

    @property
    def latest(self) -> datetime:
        """The latest cutoff of any subject: items aged at or after it are kept for all."""
        return max([self.default, *self.per_subject.values()])


@dataclass(frozen=True)
class Protection:
    """What retention must leave alone in one category, read from the control schema.

    :param category_held: a legal hold covers the whole category.
    :param held: subject identities under a legal hold, by identity type.
    :param restricted: subject identities whose processing is restricted, by type.
    """

    category_held: bool = False
    held: Mapping[Identity, frozenset[str]] = field(default_factory=dict)
    restricted: Mapping[Identity, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Holds are typed in by people: compare them in canonical form (an e-mail address
        # in lower case, a phone number in E.164), as subjects' values are.
        object.__setattr__(self, "held", _canonical_all(self.held))
        object.__setattr__(self, "restricted", _canonical_all(self.restricted))

    def is_held(self, subjects: Mapping[Identity, tuple[str, ...] | list[str]]) -> bool:
        """Whether an item with these identities is under a legal hold."""
        return self.category_held or shares_identity(subjects, self.held)

    def is_restricted(self, subjects: Mapping[Identity, tuple[str, ...] | list[str]]) -> bool:
        """Whether an item with these identities belongs to a restricted subject."""
        return shares_identity(subjects, self.restricted)

    @property
    def empty(self) -> bool:
        return not (self.category_held or any(self.held.values()) or any(self.restricted.values()))


def shares_identity(
    found: Mapping[Identity, Iterable[str]], wanted: Mapping[Identity, Iterable[str]]
) -> bool:
    """Whether any identity an item holds (``found``: its values as stored) equals one of
    ``wanted``'s values of the same type (normalised: a subject's, or held ones), compared
    as :func:`comparable` says."""
    return any(
        comparable(identity, value) in wanted.get(identity, ())
        for identity, values in found.items()
        for value in values
    )


def comparable(identity: Identity, value: str) -> str:
    """A stored identity value as it is compared with a subject's (normalised) values:
    e-mail addresses in lower case (the governed stores keep them as people typed them),
    every other type as it is stored."""
    return value.lower() if identity == "email" else value


def _canonical_all(
    protected: Mapping[Identity, frozenset[str]],
) -> dict[Identity, frozenset[str]]:
    from lethe.identities import InvalidIdentity, normalise

    def canonical(identity: Identity, value: str) -> str:
        try:
            return normalise(identity, value, strict=False)
        except InvalidIdentity:  # kept as it is (compared like a stored value)
            return comparable(identity, value)

    return {
        identity: frozenset(canonical(identity, value) for value in values)
        for identity, values in protected.items()
    }


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


class RowSink(Protocol):
    """Receives one store's rows for an export, one at a time (never all at once)."""

    def write(self, row: Mapping[str, Any]) -> None:
        """One row: column name -> value (str, int, float, bool, None, date/datetime,
        Decimal, list, or anything with a faithful ``str()``)."""


class ExportSink(Protocol):
    """Where a collect puts a subject's data: rows per store, and files (recordings)."""

    def rows(
        self, category: Category, store: Any, columns: Sequence[str]
    ) -> AbstractContextManager[RowSink]:
        """A row sink for ``store`` of ``category``; ``columns`` in their natural order
        (rows may hold only these keys)."""

    def file(self, category: Category, store: Any, name: str) -> AbstractContextManager[IO[bytes]]:
        """A binary stream to copy one file into, in chunks; ``name`` is its path
        relative to the store's root (``/``-separated, already checked safe)."""


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


class StoreAdapter(abc.ABC):
    """Retention on one store of one category, over an official provider hook.

    Implementations keep the rules the engine never breaks: nothing aged at or after its
    cutoff is removed; protected items are never removed; a second purge with the same
    cutoff removes nothing; identifiers come from the validated policy and are quoted as
    identifiers, values are bound as parameters.
    """

    def __init__(self, *, category: Category) -> None:
        self.category = category

    def session(self) -> AbstractContextManager[Any]:
        """A context keeping one connection to the store open across survey and purge.

        Adapters whose hooks open a connection per call override this (SFTP: one SSH
        session per run); the default does nothing.
        """
        return nullcontext()

    @abc.abstractmethod
    def survey(self, cutoff: Cutoff, protection: Protection) -> Survey:
        """Count the store's items, the expired ones and the protected ones among them."""

    def collect(
        self,
        subject: Mapping[Identity, frozenset[str]],
        protection: Protection,
        sink: ExportSink,
        *,
        include_files: bool = True,
    ) -> CollectResult:
        """Write every item of the subject in this store to ``sink``, streaming.

        An item belongs to the subject when any of the store's subject selectors holds one
        of ``subject``'s values of that identity type (values are normalised, see
        :mod:`lethe.identities`). Items under a legal hold are left out and only counted;
        restricted items are included (a restriction pauses processing, not access).

        :param include_files: copy files (recordings) too; without it their listing only.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot collect yet")

    def resolve(self, known: Mapping[Identity, frozenset[str]]) -> dict[Identity, set[str]]:
        """Identities the store's declared links reveal for the ``known`` ones.

        Only links the policy declares (``links``) are followed, one step; the caller
        repeats until nothing new is found. Stores without links reveal nothing.
        """
        return {}

    def erase(
        self, subject: Mapping[Identity, frozenset[str]], protection: Protection
    ) -> EraseResult:
        """Erase the subject's items as the store's ``on_expiry`` says (delete or
        anonymise); items under a legal hold stay and are counted as withheld. Idempotent:
        a second call finds nothing more."""
        raise NotImplementedError(f"{type(self).__name__} cannot erase yet")

    def rectify(
        self,
        subject: Mapping[Identity, frozenset[str]],
        changes: Mapping[str, Any],
        protection: Protection,
    ) -> RectifyResult:
        """Set ``changes`` (column -> corrected value, columns the policy marks
        rectifiable) on the subject's rows; held rows stay and are counted."""
        raise NotImplementedError(f"{type(self).__name__} cannot rectify")

    @abc.abstractmethod
    def purge(self, cutoff: Cutoff, protection: Protection) -> PurgeResult:
        """Remove (or anonymise) every expired item that is not protected.

        :raises lethe.exceptions.StoreError: when the store refuses or fails part of the
            removal (:class:`lethe.exceptions.PurgeError` carries what was removed before
            the failure: that stays removed and must be reported).
        """
