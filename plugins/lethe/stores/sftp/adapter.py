"""The SFTP store adapter: the store contract, each operation delegated to its own module.

Survey and purge are :mod:`lethe.stores.sftp.retention`'s; collect and erase are
:mod:`lethe.stores.sftp.subjects`'. Both build on
:class:`~lethe.stores.sftp.access.SftpAccess` (session, walk, removal) and are created
per call, over the adapter's hook, so nested calls share the caller's SSH session. Inside
:meth:`SFTPRetentionAdapter.session` a survey leaves the listings it read for the purge
that follows it (see :mod:`lethe.stores.sftp.retention`).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, TypeVar

from lethe.stores.base import MemoBox, NoRectifiableColumns, RemembersSurvey, StoreAdapter
from lethe.stores.sftp.access import SftpAccess
from lethe.stores.sftp.retention import SftpRetention
from lethe.stores.sftp.subjects import SftpSubjects

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from airflow.providers.sftp.hooks.sftp import SFTPHook
    from paramiko import SFTPClient

    from lethe.domain.counts import CollectResult, EraseResult, PurgeResult, Survey
    from lethe.domain.cutoffs import Cutoff
    from lethe.domain.protection import Protection
    from lethe.policy.models import Category, SftpStore
    from lethe.policy.vocabulary import Identity
    from lethe.stores.base import ExportSink, Refs, Settlement
    from lethe.stores.sftp.retention import SurveyMemo

_Part = TypeVar("_Part", bound=SftpAccess)


class SFTPRetentionAdapter(NoRectifiableColumns, RemembersSurvey, StoreAdapter):
    """Survey, purge, collect and erase the files of one :class:`~lethe.policy.models.SftpStore`.

    :param hook: the SFTP hook of the store's connection (``store.conn_id``); not used
        until :meth:`survey`, :meth:`purge` or :meth:`session` is called.
    :param store: the store, from the validated policy.
    :param category: the category the store belongs to.
    """

    def __init__(self, *, hook: SFTPHook, store: SftpStore, category: Category) -> None:
        super().__init__(category=category)
        self.hook = hook
        self.store = store
        self._memo_box: MemoBox[SurveyMemo] | None = None

    @contextlib.contextmanager
    def session(self) -> Iterator[SFTPClient]:
        """One SFTP session of the hook, opened on first entry and reused when nested.

        Wrap :meth:`survey` and :meth:`purge` in it to run both over one SSH session; the
        purge then judges the listings the survey read (same cutoff and protection only).

        :raises StoreError: when no session can be opened (names the connection id).
        """
        with self.remembering(), self._part(SftpAccess).session() as client:
            yield client

    def survey(self, cutoff: Cutoff, protection: Protection) -> Survey:
        """Count the matching files, the expired ones and the protected ones among them.

        See :meth:`~lethe.stores.sftp.retention.SftpRetention.survey`.
        """
        return self._retention().survey(cutoff, protection)

    def purge(self, cutoff: Cutoff, protection: Protection) -> PurgeResult:
        """Remove every expired, unprotected file, then the directories it left empty.

        See :meth:`~lethe.stores.sftp.retention.SftpRetention.purge`.
        """
        return self._retention().purge(cutoff, protection)

    def collect(
        self,
        subject: Mapping[Identity, frozenset[str]],
        protection: Protection,
        sink: ExportSink,
        *,
        include_files: bool = True,
    ) -> CollectResult:
        """Copy every file of the subject into ``sink`` and list them, over one SSH session.

        See :meth:`~lethe.stores.sftp.subjects.SftpSubjects.collect`.
        """
        return self._part(SftpSubjects).collect(
            subject, protection, sink, include_files=include_files
        )

    def settle(self, count: int, refs: Refs) -> Settlement:
        """How many files of an open intent are gone.

        See :meth:`~lethe.stores.sftp.retention.SftpRetention.settle`.
        """
        return self._retention().settle(count, refs)

    def erase(
        self, subject: Mapping[Identity, frozenset[str]], protection: Protection
    ) -> EraseResult:
        """Delete every file of the subject, then the directories that left empty.

        See :meth:`~lethe.stores.sftp.subjects.SftpSubjects.erase`.
        """
        return self._part(SftpSubjects).erase(subject, protection)

    def _retention(self) -> SftpRetention:
        retention = self._part(SftpRetention)
        retention.memo_box = self._memo_box
        retention.on_removed = self.report_removed
        retention.removing = self.announcer
        return retention

    def _part(self, kind: type[_Part]) -> _Part:
        """The operation's implementation over this adapter's hook and store."""
        return kind(hook=self.hook, store=self.store, category=self.category)
