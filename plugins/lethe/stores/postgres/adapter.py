"""The PostgreSQL store adapter: the retention and subject contract of
:mod:`lethe.stores.base` over one table, delegating the SQL to the package's modules."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import psycopg

from lethe.domain.counts import CollectResult, EraseResult, RectifyResult
from lethe.exceptions import PurgeError, StoreError
from lethe.policy.models import PostgresStore
from lethe.stores.base import MemoBox, RemembersSurvey, Settlement, StoreAdapter
from lethe.stores.postgres import catalog, erasure, subjects
from lethe.stores.postgres import purge as retention
from lethe.stores.postgres.connection import Progress, connect, reading, removing

if TYPE_CHECKING:
    from collections.abc import Mapping
    from contextlib import AbstractContextManager

    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from lethe.domain.counts import PurgeResult, Survey
    from lethe.domain.cutoffs import Cutoff
    from lethe.domain.protection import Protection
    from lethe.policy.models import Category
    from lethe.policy.vocabulary import Identity
    from lethe.stores.base import ExportSink, Refs
    from lethe.stores.postgres.catalog import Table
    from lethe.stores.postgres.connection import Session

log = logging.getLogger(__name__)

#: The largest batch one transaction may delete or anonymise.
MAX_BATCH_SIZE = 100_000
#: The most sessions one purge may walk a table with at once.
MAX_PURGE_SESSIONS = 8


class PostgresRetentionAdapter(RemembersSurvey, StoreAdapter):
    """Retention on one PostgreSQL table of a category.

    :param hook: a hook on the store's database (``PostgresHook(postgres_conn_id=...)``);
        no connection is opened until a contract method runs. It must hand out psycopg 3
        connections (the postgres provider does when psycopg 3 and SQLAlchemy 2 are
        installed); any other driver's connection is refused with a StoreError.
    :param store: the policy's store: table, key columns, age, subject columns, on expiry.
    :param category: the category the store belongs to.
    :param batch_size: rows deleted or anonymised per transaction (1-100 000).
    :param purge_sessions: sessions (connections) one purge may walk a table's removable
        blocks with at once, each its own part of them (1-8; parts of at least 8 MB). The
        default, 2, is as many as PostgreSQL's own parallel scans add by default
        (``max_parallel_workers_per_gather``); 1 walks with the purge's one session.
    """

    #: Rows a collect fetches per round trip from its server-side cursor.
    collect_batch_size: int = subjects.COLLECT_BATCH_SIZE
    #: Rows an erase deletes or anonymises per transaction.
    erase_batch_size: int = erasure.ERASE_BATCH_SIZE
    #: Seconds :meth:`settle` waits for a transaction still in progress.
    settle_wait: float = 5.0

    def __init__(
        self,
        *,
        hook: PostgresHook,
        store: PostgresStore,
        category: Category,
        batch_size: int = 100_000,
        purge_sessions: int = 2,
    ) -> None:
        super().__init__(category=category)
        if not isinstance(store, PostgresStore):
            raise TypeError(f"expected a PostgresStore, got {type(store).__name__}")
        _check_count("batch_size", batch_size, MAX_BATCH_SIZE)
        _check_count("purge_sessions", purge_sessions, MAX_PURGE_SESSIONS)
        self.hook = hook
        self.store = store
        self.batch_size = batch_size
        self.purge_sessions = purge_sessions
        self._table: Table | None = None
        self._memo_box: MemoBox[retention.SurveyMemo] | None = None

    # ---------------------------------------------------------------------------- retention

    def session(self) -> AbstractContextManager[bool]:
        """One survey-then-purge: the purge walks only the blocks where the survey found
        removable rows (same cutoff and protection only). Re-entrant."""
        return self.remembering()

    def survey(self, cutoff: Cutoff, protection: Protection) -> Survey:
        """Count the table's rows, the expired ones and the protected ones among them.

        One query over the table. Rows already anonymised do not count as expired.

        :raises lethe.exceptions.StoreError: when the database cannot be reached, the table
            or a policy column is missing, or the query fails.
        """
        session = connect(self.hook, self.store, StoreError)
        with reading(session, self.store, "survey"):
            found, memo = retention.survey(
                session, self.store, self._describe(session), cutoff, protection
            )
        if self._memo_box is not None:
            self._memo_box.memo = memo
        return found

    def purge(self, cutoff: Cutoff, protection: Protection) -> PurgeResult:
        """Remove (or anonymise) every expired row that is neither held nor restricted.

        Month partitions wholly before the earliest cutoff go first (detached and dropped
        when they hold no protected row), then the rest in batches of :attr:`batch_size`,
        each committed on its own. A second purge with the same cutoff removes nothing.

        :raises lethe.exceptions.PurgeError: when the database cannot be reached or a step
            fails; ``removed`` counts what was committed before (and stays removed).
        """
        progress = Progress(
            on_removed=self.report_removed,
            record_in_transaction=self.record_in_transaction,
            removing=self.announcer,
        )
        memo = None if self._memo_box is None else self._memo_box.take(cutoff, protection)
        session = connect(self.hook, self.store, PurgeError)
        with removing(session, self.store, progress):
            return retention.purge(
                session,
                self.store,
                self._describe(session),
                cutoff,
                protection,
                batch_size=self.batch_size,
                progress=progress,
                memo=memo,
                sessions=self.purge_sessions,
                open_session=lambda: connect(self.hook, self.store, PurgeError),
            )

    def settle(self, count: int, refs: Refs) -> Settlement:
        """What became of the transaction an open intent names (its ``xid``), as the store's
        server tells it (``pg_xact_status``): committed, all ``count`` rows are gone;
        aborted, none; still in progress (the killed task's session not yet ended), after
        waiting up to :attr:`settle_wait` seconds, the intent stays open; too old to tell
        (the status was truncated away), or no ``xid``, in doubt.

        :raises lethe.exceptions.StoreError: when the database cannot be reached.
        """
        if refs.xid is None:
            return Settlement(removed=None)
        session = connect(self.hook, self.store, StoreError)
        deadline = time.monotonic() + self.settle_wait
        with reading(session, self.store, "settling a purge intent"):
            while True:
                with session.cursor() as cur:
                    try:
                        cur.execute(
                            "SELECT pg_catalog.pg_xact_status(%s::text::xid8)", (str(refs.xid),)
                        )
                        (status,) = cur.fetchone()
                    except psycopg.errors.InvalidParameterValue:
                        # An id "in the future": not this server's transaction.
                        session.rollback()
                        return Settlement(removed=None)
                session.rollback()
                if status == "committed":
                    return Settlement(removed=count)
                if status == "aborted":
                    return Settlement(removed=0)
                if status is None:
                    return Settlement(removed=None)
                if time.monotonic() >= deadline:
                    return Settlement(removed=None, final=False)
                time.sleep(0.5)

    # ----------------------------------------------------------------------------- subjects

    def collect(
        self,
        subject: Mapping[Identity, frozenset[str]],
        protection: Protection,
        sink: ExportSink,
        *,
        include_files: bool = True,
    ) -> CollectResult:
        """Write every row of the subject in this table to ``sink``, streaming.

        One query: every column of the table in ordinal order, for the rows where any
        subject column whose identity type ``subject`` names equals one of its values,
        compared in the column's own type (so its index is used), ordered by the key
        columns. Rows come from a server-side cursor in batches of
        :attr:`collect_batch_size`, so memory does not grow with the subject's row count;
        each is written as a mapping of column name to value (the driver's Python
        objects). The row sink is opened on the first row written, so a table without
        rows of the subject leaves no trace in the sink. Rows under a legal hold (held
        values on any subject column, or the whole category) are counted as
        ``withheld`` and never written; restricted rows are written.

        :param include_files: ignored: a table has no files.
        :return: rows written and rows withheld; nothing at all when no subject column of
            the table has an identity type of ``subject`` (no connection is made).
        :raises lethe.exceptions.StoreError: when the database cannot be reached, the table
            or a policy column is missing, or the query fails (naming the table, connection
            and SQLSTATE, never a value). Errors of the sink itself pass unchanged.
        """
        if not any(subject.get(s.identity) for s in self.store.subject):
            log.info("%s has no subject column for these identities; skipped", self.store.table)
            return CollectResult()
        session = connect(self.hook, self.store, StoreError)
        with reading(session, self.store, "collect"):
            return subjects.collect(
                session,
                self.store,
                self.category,
                self._describe(session),
                subject,
                protection,
                sink,
                batch_size=self.collect_batch_size,
            )

    def resolve(self, known: Mapping[Identity, frozenset[str]]) -> dict[Identity, set[str]]:
        """Identities the store's declared links reveal for the ``known`` ones, one step.

        For each link (``links`` of the policy) whose ``known`` identity type has values in
        ``known``, one query: ``SELECT DISTINCT <reveals columns> FROM <table> WHERE
        <known columns> = ANY(<typed array>)``, the known columns compared in their own
        type as :meth:`collect` does (so their indexes serve the lookup). Every non-null
        revealed value comes back in the form :func:`lethe.domain.identities.normalise` gives it
        (e-mail in lower case, phone in E.164, ids as digits, an ``inet`` by its host
        address, a ``macaddr`` as lower-case pairs with colons), so it can search other
        stores; a stored value that is not a valid identity of its type is left out (and
        counted in the log); a stored phone number need only be a possible one
        (``normalise(..., strict=False)``). Held rows reveal too: a hold keeps data, it
        does not hide whose it is.

        :return: identity type -> values; empty when no link starts from ``known`` (then no
            connection is made).
        :raises lethe.exceptions.StoreError: when the database cannot be reached, the table
            or a policy column is missing, or a query fails (table, connection, SQLSTATE).
        """
        if not any(known.get(link.known) for link in self.store.links):
            return {}
        session = connect(self.hook, self.store, StoreError)
        with reading(session, self.store, "resolve"):
            return subjects.resolve(session, self.store, self._describe(session), known)

    def erase(
        self, subject: Mapping[Identity, frozenset[str]], protection: Protection
    ) -> EraseResult:
        """Delete (or anonymise, as ``on_expiry`` says) every row of the subject.

        A row is the subject's when any subject column holds one of ``subject``'s values
        of its identity type, compared as :meth:`collect` compares (in the column's type,
        index-friendly); a subject without a customer id never reaches the rows of its
        colleagues. Rows under a legal hold (``protection.held`` on any subject column of
        the row) stay and are counted as ``withheld``; a hold on the whole category keeps
        every row. Restrictions are not consulted: the caller passes holds only (a
        subject's own restriction waits for exactly this request).

        The rows go in batches of :attr:`erase_batch_size`, one short transaction each,
        like the purge's: the next keys are read (``FOR UPDATE``), then exactly those rows
        are deleted, or their ``anonymise`` columns overwritten with the replacement
        values (bound parameters, cast to the column's type). A partitioned table is
        deleted from row by row too: a partition is never dropped for one subject.
        Anonymised rows are not matched again, so a second erase finds nothing.

        Then, when the policy names ``free_text`` columns, every mention of the subject's
        e-mail addresses (any case) and phone numbers (as people write them: ``+31612345678``,
        ``06-12345678``, ``+31 (0)6 12345678``, ``0031 6 1234 5678`` ...) in those columns is
        replaced by ``[removed]``, in one committed UPDATE over every row of the table that
        is not held, whoever it is about and however old
        (:func:`~lethe.stores.postgres.erasure.mention_pattern`). A hold on the whole
        category redacts nothing. A second erase finds no mention left.

        :return: rows deleted (``removed``) or anonymised, rows withheld, and rows whose
            free text was redacted; nothing at all, without a connection, when no subject
            column has an identity type of ``subject`` and there is no free text to search.
        :raises lethe.exceptions.PurgeError: when the database cannot be reached or a batch
            fails (naming table, connection and SQLSTATE, never a value); ``removed`` counts
            the rows of the batches committed before, which stay erased.
        """
        mention = erasure.mention_pattern(subject) if self.store.free_text else None
        if mention is None and not any(subject.get(s.identity) for s in self.store.subject):
            log.info("%s has no subject column for these identities; skipped", self.store.table)
            return EraseResult()
        progress = Progress()
        session = connect(self.hook, self.store, PurgeError)
        with removing(session, self.store, progress):
            progress.action = "erase"
            return erasure.erase(
                session,
                self.store,
                self._describe(session),
                subject,
                mention,
                protection,
                batch_size=self.erase_batch_size,
                progress=progress,
            )

    def rectify(
        self,
        subject: Mapping[Identity, frozenset[str]],
        changes: Mapping[str, Any],
        protection: Protection,
    ) -> RectifyResult:
        """Set the corrected values of ``changes`` on every row of the subject, at once.

        Rows are the subject's as for :meth:`erase`; held rows stay as they are and are
        counted as ``withheld`` (a hold on the category keeps all). In one transaction:
        each new value is cast to its column's type (a value the column cannot hold fails
        here, naming the column and the SQLSTATE, never the value); the subject's unheld
        rows are locked and updated in one statement that also returns their old values.
        Values are bound as parameters, cast to the column's type (without its modifier,
        so a too-long ``varchar`` fails instead of being cut).

        Hashes (:func:`lethe.domain.identities.value_hash`) are of the values as the column
        holds them, read back through the driver, on both sides; so the new hash of one
        correction equals the old hash of the next, and a text value hashes as the text
        itself. Per column: the sorted hashes of the distinct old values of the updated
        rows, and the hash of the new value. Nothing is hashed when no row was updated.

        :param changes: column -> corrected value; every column must be ``rectifiable``.
        :raises lethe.exceptions.StoreError: for a column the policy does not mark
            rectifiable (before any connection), a column the table lacks, a value its
            column cannot hold, or a database failure (nothing is changed then).
        """
        refused = sorted(set(changes) - set(self.store.rectifiable))
        if refused:
            raise StoreError(
                f"{', '.join(refused)} of {self.store.table} cannot be rectified: the policy "
                f"of category {self.category.id} marks only "
                f"{', '.join(self.store.rectifiable) or 'no column'} rectifiable"
            )
        if not changes or not any(subject.get(s.identity) for s in self.store.subject):
            return RectifyResult()
        session = connect(self.hook, self.store, StoreError)
        progress = Progress(action="rectify")
        with erasure.rectifying(session, self.store, progress, list(changes)):
            return erasure.rectify(
                session,
                self.store,
                self.category,
                self._describe(session),
                subject,
                changes,
                protection,
                progress,
            )

    # -------------------------------------------------------------------------------- table

    def _describe(self, session: Session) -> Table:
        """The table as :func:`~lethe.stores.postgres.catalog.describe` reads it; read once
        per adapter."""
        if self._table is None:
            self._table = catalog.describe(session, self.store, self.category)
        return self._table


def _check_count(name: str, value: object, most: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 1 <= value <= most:
        raise ValueError(f"{name} must be between 1 and {most}, got {value}")
