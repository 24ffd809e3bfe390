"""The S3 store adapter: the store contract, each operation delegated to its own module.

Survey and purge are :mod:`lethe.stores.s3.retention`'s, collect is
:mod:`lethe.stores.s3.collect`'s and erase :mod:`lethe.stores.s3.erasure`'s; each builds
on :class:`~lethe.stores.s3.access.S3Access` (client, listings, rows) and is created per
call, so nothing is connected before an operation runs. Inside :meth:`session` a survey
leaves what it found for the purge that follows it (see
:mod:`lethe.stores.s3.retention`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from lethe.stores.base import MemoBox, NoRectifiableColumns, RemembersSurvey, StoreAdapter
from lethe.stores.s3.collect import S3Collect
from lethe.stores.s3.erasure import S3Erasure
from lethe.stores.s3.retention import S3Retention

if TYPE_CHECKING:
    from collections.abc import Mapping
    from contextlib import AbstractContextManager

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from lethe.domain.counts import CollectResult, EraseResult, PurgeResult, Survey
    from lethe.domain.cutoffs import Cutoff
    from lethe.domain.protection import Protection
    from lethe.policy.models import Category, S3Store
    from lethe.policy.vocabulary import Identity
    from lethe.stores.base import ExportSink, Refs, Settlement
    from lethe.stores.s3.access import S3Access
    from lethe.stores.s3.retention import SurveyMemo

_Part = TypeVar("_Part", bound="S3Access")


class S3RetentionAdapter(NoRectifiableColumns, RemembersSurvey, StoreAdapter):
    """Survey, purge, collect and erase the objects of one :class:`~lethe.policy.models.S3Store`.

    :param hook: the S3 hook of the store's connection (``store.conn_id``); its boto3
        client is created on first use, not here.
    :param store: the store, from the validated policy.
    :param category: the category the store belongs to.
    """

    #: Entries per listing page; None leaves it to the server (1000 on S3).
    page_size: int | None = None

    def __init__(self, *, hook: S3Hook, store: S3Store, category: Category) -> None:
        super().__init__(category=category)
        self.hook = hook
        self.store = store
        self._memo_box: MemoBox[SurveyMemo] | None = None

    def session(self) -> AbstractContextManager[bool]:
        """One survey-then-purge: the purge may delete what the survey found instead of
        listing again (same cutoff and protection only). Re-entrant."""
        return self.remembering()

    def survey(self, cutoff: Cutoff, protection: Protection) -> Survey:
        """Count the objects fitting the layout, the expired and the protected ones.

        See :meth:`~lethe.stores.s3.retention.S3Retention.survey`.
        """
        return self._retention().survey(cutoff, protection)

    def purge(self, cutoff: Cutoff, protection: Protection) -> PurgeResult:
        """Delete every expired, unprotected object (every version, if versioned).

        See :meth:`~lethe.stores.s3.retention.S3Retention.purge`.
        """
        return self._retention().purge(cutoff, protection)

    def settle(self, count: int, refs: Refs) -> Settlement:
        """How many keys of an open intent are gone.

        See :meth:`~lethe.stores.s3.retention.S3Retention.settle`.
        """
        return self._part(S3Retention).settle(count, refs)

    def collect(
        self,
        subject: Mapping[Identity, frozenset[str]],
        protection: Protection,
        sink: ExportSink,
        *,
        include_files: bool = True,
    ) -> CollectResult:
        """Write every row of the subject in this store's objects to ``sink``, streaming.

        See :meth:`~lethe.stores.s3.collect.S3Collect.collect`.
        """
        return self._part(S3Collect).collect(subject, protection, sink, include_files=include_files)

    def erase(
        self, subject: Mapping[Identity, frozenset[str]], protection: Protection
    ) -> EraseResult:
        """Erase the subject's rows from every object, keeping everyone else's.

        See :meth:`~lethe.stores.s3.erasure.S3Erasure.erase`.
        """
        return self._part(S3Erasure).erase(subject, protection)

    def _retention(self) -> S3Retention:
        retention = self._part(S3Retention)
        retention.memo_box = self._memo_box
        retention.on_removed = self.report_removed
        retention.removing = self.announcer
        return retention

    def _part(self, kind: type[_Part]) -> _Part:
        """The operation's implementation over this adapter's hook, store and page size."""
        return kind(
            hook=self.hook, store=self.store, category=self.category, page_size=self.page_size
        )
