"""The store adapter contract, and the export sinks a collect writes into.

An adapter (one per store kind: PostgreSQL, SFTP, S3) wraps an official provider hook and
one store of a policy category. For retention it can *survey* the store (how much there
is, how much has expired, how much of that is protected) and *purge* what may go; the
operator decides between the two (dry run, purge guard). For a subject's rights it can
*collect* everything of that subject into an export sink, *resolve* linked identities,
*erase* and *rectify*. The adapter only does the I/O; what it reasons about (cutoffs,
protections, counts) is :mod:`lethe.domain`.
"""

from __future__ import annotations

import abc
import contextlib
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from lethe.exceptions import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from lethe.domain.counts import (
        CollectResult,
        EraseResult,
        PurgeResult,
        RectifyResult,
        Survey,
    )
    from lethe.domain.cutoffs import Cutoff
    from lethe.domain.protection import Protection
    from lethe.policy.models import Category
    from lethe.policy.vocabulary import Identity


#: What a survey leaves for its purge (each store kind's own memo).
M = TypeVar("M")


@dataclass(frozen=True)
class Refs:
    """What names the items of one unit of removal, so that a later run can tell which of
    them are gone if the task dies before the unit is on record (a purge intent).

    :param xid: the PostgreSQL transaction that removes them (taken before its commit).
    :param items: the S3 entries (``[key, version id or None]``) or the SFTP paths the unit
        removes: personal data, which the caller keeps only encrypted.
    """

    xid: int | None = None
    items: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Settlement:
    """What became of an open intent's items, as the store tells it now.

    :param removed: how many of them are gone; None: the store cannot tell (in doubt).
    :param final: False when the unit may still be running (a transaction in progress):
        the intent stays open for a later run.
    """

    removed: int | None
    final: bool = True


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


class StoreAdapter(abc.ABC):
    """Retention on one store of one category, over an official provider hook.

    Implementations keep the rules the engine never breaks: nothing aged at or after its
    cutoff is removed; protected items are never removed; a second purge with the same
    cutoff removes nothing; identifiers come from the validated policy and are quoted as
    identifiers, values are bound as parameters.
    """

    #: Called with the count of each unit of a purge's removals once it is final (a
    #: committed transaction, a dropped partition, a DeleteObjects call, a batch of removed
    #: files), so the caller can account for it before the next one starts: what a killed
    #: task removed is then on record. None: nobody listens.
    on_removed: Callable[[int], None] | None = None
    #: For stores whose removals are database transactions (PostgreSQL): called inside each
    #: transaction, before its commit, with the transaction's connection and its count, so
    #: the record commits (or not) with the removal itself. It returns whether it recorded;
    #: when it did not (it cannot write there), :attr:`on_removed` is told after the commit.
    record_in_transaction: Callable[[Any, int], bool] | None = None
    #: Two-phase accounting (purge intents): called BEFORE each unit of removal that is not
    #: recorded inside its own transaction, with the count it is about to remove and the
    #: :class:`Refs` naming its items; it puts them on record as intended and returns what
    #: to tell the unit's final count to once the unit is final (0 included), instead of
    #: :attr:`on_removed`. None: only :attr:`on_removed` is told.
    on_removing: Callable[[int, Refs], Callable[[int], None]] | None = None

    def __init__(self, *, category: Category) -> None:
        self.category = category

    def report_removed(self, count: int) -> None:
        """Tell :attr:`on_removed` that ``count`` more items are gone for good."""
        if count and self.on_removed is not None:
            self.on_removed(count)

    def removing(self, count: int, refs: Refs) -> Callable[[int], None]:
        """Announce a unit of ``count`` removals named by ``refs`` (:attr:`on_removing`)
        before it starts; call what it returns with the unit's final count."""
        if not count or self.on_removing is None:
            return self.report_removed
        return self.on_removing(count, refs)

    @property
    def announcer(self) -> Callable[[int, Refs], Callable[[int], None]] | None:
        """:meth:`removing` when someone listens (:attr:`on_removing`); else None, and a
        unit's refs need not be gathered at all."""
        return self.removing if self.on_removing is not None else None

    def settle(self, count: int, refs: Refs) -> Settlement:
        """How many of the ``count`` items named by ``refs`` (an open intent a killed purge
        left) are gone now. The default cannot tell (in doubt)."""
        return Settlement(removed=None)

    def session(self) -> AbstractContextManager[Any]:
        """A context keeping one connection to the store open across survey and purge.

        Adapters whose hooks open a connection per call override this (SFTP: one SSH
        session per run); the default does nothing.
        """
        return nullcontext()

    @abc.abstractmethod
    def survey(self, cutoff: Cutoff, protection: Protection) -> Survey:
        """Count the store's items, the expired ones and the protected ones among them."""

    @abc.abstractmethod
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
        :mod:`lethe.domain.identities`). Items under a legal hold are left out and only counted;
        restricted items are included (a restriction pauses processing, not access).

        :param include_files: copy files (recordings) too; without it their listing only.
        """

    def resolve(self, known: Mapping[Identity, frozenset[str]]) -> dict[Identity, set[str]]:
        """Identities the store's declared links reveal for the ``known`` ones.

        Only links the policy declares (``links``) are followed, one step; the caller
        repeats until nothing new is found. Stores without links reveal nothing.
        """
        return {}

    @abc.abstractmethod
    def erase(
        self, subject: Mapping[Identity, frozenset[str]], protection: Protection
    ) -> EraseResult:
        """Erase the subject's items as the store's ``on_expiry`` says (delete or
        anonymise); items under a legal hold stay and are counted as withheld. Idempotent:
        a second call finds nothing more."""

    @abc.abstractmethod
    def rectify(
        self,
        subject: Mapping[Identity, frozenset[str]],
        changes: Mapping[str, Any],
        protection: Protection,
    ) -> RectifyResult:
        """Set ``changes`` (column -> corrected value, columns the policy marks
        rectifiable) on the subject's rows; held rows stay and are counted.

        Only tables have rectifiable columns (the policy refuses ``rectifiable`` elsewhere);
        file and object stores refuse with :class:`lethe.exceptions.StoreError`."""

    @abc.abstractmethod
    def purge(self, cutoff: Cutoff, protection: Protection) -> PurgeResult:
        """Remove (or anonymise) every expired item that is not protected.

        :raises lethe.exceptions.StoreError: when the store refuses or fails part of the
            removal (:class:`lethe.exceptions.PurgeError` carries what was removed before
            the failure: that stays removed and must be reported).
        """


class NoRectifiableColumns:
    """For adapters of file and object stores, which have no columns to rectify (the policy
    refuses ``rectifiable`` on them, so a request never gets here through the engine)."""

    category: Category

    def rectify(
        self,
        subject: Mapping[Identity, frozenset[str]],
        changes: Mapping[str, Any],
        protection: Protection,
    ) -> RectifyResult:
        raise StoreError(
            f"{type(self).__name__} of category {self.category.id!r} has no rectifiable "
            "columns: only table stores (postgres) can be rectified"
        )


class RemembersSurvey:
    """For adapters whose purge may act on what the survey just before it found (same
    session, cutoff and protection): one :class:`MemoBox` per outermost session."""

    _memo_box: MemoBox[Any] | None = None

    @contextlib.contextmanager
    def remembering(self) -> Iterator[bool]:
        """The session's memo box, open while the outermost call lasts; nested calls reuse
        it. Yields whether this call is the outermost."""
        if self._memo_box is not None:
            yield False
            return
        self._memo_box = MemoBox()
        try:
            yield True
        finally:
            self._memo_box = None


class MemoBox(Generic[M]):
    """Where a survey leaves what it found (its memo) for the purge that follows it in the
    same session of an adapter; one box per session, empty outside one."""

    def __init__(self) -> None:
        self.memo: M | None = None

    def take(self, cutoff: Cutoff, protection: Protection) -> M | None:
        """The memo, once (the box is emptied), if a survey with this ``cutoff`` and
        ``protection`` left it; else None (the purge lists the store itself)."""
        memo, self.memo = self.memo, None
        if memo is None or memo.cutoff != cutoff or memo.protection != protection:
            return None
        return memo
