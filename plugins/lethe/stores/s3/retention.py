"""Retention on an S3 store: survey and purge.

*Survey* lists every object under the store's prefix (paginated ``ListObjectsV2``; in a
versioned bucket ``ListObjectVersions``, which also gives every version a purge removes
and a protection check reads) and counts the current objects whose key fits the layout.
*Purge* lists only the prefixes that can hold expired objects
(:meth:`~lethe.stores.s3.listing.S3Listing.expired_listings`: discovery listings first,
then the expired prefixes, :data:`LISTING_THREADS` at a time); expired objects go in
``DeleteObjects`` calls of at most 1000 keys, several in flight
(:class:`~lethe.stores.s3.deletion.Deleter`); per-key errors are collected, the rest is
still tried, and the purge ends with a :class:`~lethe.exceptions.PurgeError`.

A purge that follows a survey with the same cutoff and protection in one
:meth:`~lethe.stores.s3.adapter.S3RetentionAdapter.session` (as the retention task runs
them) does not list again: it deletes what the survey found removable (in a plain
bucket each key on the condition that it still has the ETag the survey listed:
:mod:`~lethe.stores.s3.deletion` says what is counted when another run removed it
meanwhile) and reports the survey's counts. At most :data:`MEMO_LIMIT` keys are
remembered; a survey that found more leaves the purge to list for itself.

Age and expiry: with ``time_from: key`` an object covers the period its date parts name
and has expired when the whole period ended by the cutoff (``end <= cutoff``); its age, for
``newest`` and ``oldest_removable``, is the period's start. With ``time_from:
last_modified`` its age is ``LastModified`` and it has expired when that is before the
cutoff. Objects cannot be matched to a subject without reading them, so a per-subject
cutoff (customer-defined retention) is applied by its earliest value: nothing is removed
before every subject's retention has passed.

In a versioned bucket (``versioned: true``) every version and every delete marker of an
expired key is removed, so nothing of it remains (a key whose current version is a delete
marker still has its older versions removed: a rerun completes an interrupted purge).

Protection: a category-wide hold keeps every expired object. Holds and restrictions on
subject identities matter only when the store names subject fields (a CSV column or a
JSON-lines key); then each expired object (every version, in a versioned bucket) is read,
streaming, and kept when it holds a protected value. Without such protections no object
body is read.
"""

from __future__ import annotations

import csv
import json
import logging
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import UTC
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from lethe.domain.counts import PurgeResult
from lethe.domain.protection import Protection, comparable
from lethe.exceptions import PurgeError, StoreError
from lethe.policy.vocabulary import KeyTimeSource
from lethe.stores.base import Settlement
from lethe.stores.s3.access import S3Tally, error_code
from lethe.stores.s3.deletion import Deleter
from lethe.stores.s3.listing import S3Listing

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from lethe.domain.counts import Survey
    from lethe.domain.cutoffs import Cutoff
    from lethe.policy.vocabulary import Identity
    from lethe.stores.base import MemoBox, Refs
    from lethe.stores.s3.listing import Listing, Version

log = logging.getLogger(__name__)

_HELD, _RESTRICTED, _REMOVABLE, _UNREADABLE = (
    "held",
    "restricted",
    "removable",
    "unreadable",
)


#: Expired prefixes a purge lists at once.
LISTING_THREADS = 4
#: The most removable keys a survey remembers for the purge that follows it.
MEMO_LIMIT = 200_000
#: HEAD requests a settling of an open intent sends at once.
SETTLE_THREADS = 8


class _Unreadable(Exception):
    """An object's rows could not be read to check them for protected values."""


#: A key a purge may remove: key, version ids (None: the current object), whether it is
#: an object now (counts as removed), the ETag it was listed with (plain buckets).
_Removable = tuple[str, "list[str | None] | None", bool, "str | None"]


@dataclass
class SurveyMemo:
    """What a survey found, for the purge that follows it in a session.

    :param cutoff: the survey's cutoff; a purge with another one lists for itself.
    :param protection: the survey's protection; likewise.
    :param tally: the survey's counts.
    :param removable: each expired key that may go (with its versions, if versioned).
    :param unreadable_gone: expired keys without a current object whose old versions
        could not be checked for protected values (the purge keeps and reports them).
    """

    cutoff: Cutoff
    protection: Protection
    tally: S3Tally
    removable: list[_Removable]
    unreadable_gone: int = 0


class S3Retention(S3Listing):
    """Survey and purge the objects of one store.

    :attr memo_box: set by the adapter inside a session: where the survey leaves what it
        found for the purge.
    """

    memo_box: MemoBox[SurveyMemo] | None = None
    #: Set by the adapter: told what each DeleteObjects call removed (its ``on_removed``).
    on_removed: Callable[[int], None] | None = None
    #: Set by the adapter: told each call before it is sent (its ``removing``).
    removing: Callable[[int, Refs], Callable[[int], None]] | None = None

    def survey(self, cutoff: Cutoff, protection: Protection) -> Survey:
        """Count the objects fitting the layout, the expired ones and the protected ones.

        Only current objects are counted. An expired one is read for protected values; in
        a versioned bucket every version of its key is read (one version listing gives
        them all), as the purge does, so an
        object kept because an older version names a held identity counts as held here
        too (and the compliance check does not report it as overdue). Unreadable expired
        objects (checked for protected values but not parseable) are counted as held: a
        purge keeps them.
        """
        tally = S3Tally()
        threshold = cutoff.earliest
        relevant = self._relevant(protection)
        if self.memo_box is not None:
            self.memo_box.memo = None
        memo = SurveyMemo(cutoff, protection, tally, []) if self.memo_box is not None else None

        def keep(entry: _Removable) -> None:
            nonlocal memo
            if memo is not None:
                memo.removable.append(entry)
                if len(memo.removable) > MEMO_LIMIT:
                    memo = None  # too many to keep: the purge lists for itself

        if self.store.versioned:
            lock = threading.Lock()
            gone = S3Tally()  # what the purge would count of keys that are not objects now
            for key, versions in self.keys_with_versions(tally, {"Prefix": self.store.prefix}):
                self._key_versions(
                    key, versions, threshold, protection, relevant, tally, lock, keep, gone=gone
                )
            if memo is not None:
                memo.unreadable_gone = gone.unreadable
        else:
            for page in self.pages("list_objects_v2", tally, Prefix=self.store.prefix):
                for obj in page.get("Contents", ()):
                    judged = self._judge(obj["Key"], obj.get("LastModified"), threshold, tally)
                    if judged is None or not judged[1]:
                        continue
                    verdict = self._protect(obj["Key"], [None], protection, relevant)
                    self._count(verdict, judged[0], tally)
                    if verdict == _REMOVABLE:
                        keep((obj["Key"], None, True, obj.get("ETag")))
        self._log("Surveyed", tally)
        if memo is not None and self.memo_box is not None:
            memo.tally = replace(tally)
            self.memo_box.memo = memo
        return tally.survey()

    def purge(self, cutoff: Cutoff, protection: Protection) -> PurgeResult:
        """Delete every expired, unprotected object (every version, if versioned).

        :raises StoreError: when the bucket cannot be listed (nothing was deleted yet).
        :raises PurgeError: when some deletions failed, after trying all the others.
        """
        memo = self.memo_box.take(cutoff, protection) if self.memo_box else None
        tally = S3Tally()
        if memo is not None:
            tally = replace(memo.tally, list_calls=0)
            tally.unreadable += memo.unreadable_gone
        threshold = cutoff.earliest
        relevant = self._relevant(protection)
        deleter = Deleter(self, tally, on_removed=self.on_removed, removing=self.removing)
        try:
            if memo is not None:
                for key, version_ids, live, etag in memo.removable:
                    deleter.add(key, version_ids or [None], live=live, etag=etag)
            else:
                listings = list(self.expired_listings(threshold, tally))
                purge_one = self._purge_versions if self.store.versioned else self._purge_objects
                self._each_listing(
                    listings,
                    lambda listing: purge_one(listing, threshold, protection, relevant, deleter),
                )
            deleter.close()
        except PurgeError:
            deleter.abandon()
            raise
        except StoreError as e:
            deleter.abandon()
            if tally.batches == 0:
                raise  # nothing was deleted: the plain store error says it all
            raise PurgeError(
                f"{e} (after removing {tally.removed} objects)",
                removed=tally.removed,
                failed=tally.failed,
            ) from e
        self._log("Purged", tally)
        if tally.failed or tally.unreadable:
            failed = tally.failed + tally.unreadable
            raise PurgeError(
                f"{failed} expired objects of s3 store {self.store.conn_id}:"
                f"{self.store.location} were not removed ({tally.failed} refused, first "
                f"error {tally.first_error}; {tally.unreadable} unreadable for the protection "
                f"check); {tally.removed} were removed",
                removed=tally.removed,
                failed=failed,
            )
        return PurgeResult(
            removed=tally.removed,
            batches=tally.batches,
            versions_removed=tally.versions_removed,
            details={
                "expired": tally.expired,
                "held": tally.held,
                "restricted": tally.restricted,
                "unmatched": tally.unmatched,
                "list_calls": tally.list_calls,
                "gone_meanwhile": tally.gone_meanwhile,
            },
        )

    def _each_listing(self, listings: list[Listing], work: Callable[[Listing], None]) -> None:
        """Run ``work`` on every listing, :data:`LISTING_THREADS` at a time; the first
        error stops the listings not yet started and is raised once the others are done."""
        if len(listings) <= 1:
            for listing in listings:
                work(listing)
            return
        with ThreadPoolExecutor(LISTING_THREADS, thread_name_prefix="lethe-s3-list") as pool:
            futures = [pool.submit(work, listing) for listing in listings]
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                future.cancel()
            for future in futures:
                if not future.cancelled() and future.exception() is not None:
                    raise future.exception()  # type: ignore[misc]

    def _purge_objects(
        self,
        listing: Listing,
        threshold: datetime,
        protection: Protection,
        relevant: Mapping[Identity, frozenset[str]],
        deleter: Deleter,
    ) -> None:
        calls = S3Tally()  # this thread's listing calls, added to the purge's at the end
        try:
            for page in self.pages("list_objects_v2", calls, **listing.params()):
                for obj in page.get("Contents", ()):
                    key = obj["Key"]
                    with deleter.lock:
                        judged = self._judge(key, obj.get("LastModified"), threshold, deleter.tally)
                    if judged is None or not judged[1]:
                        continue
                    verdict = self._protect(key, [None], protection, relevant)
                    with deleter.lock:
                        self._count(verdict, judged[0], deleter.tally)
                    if verdict == _REMOVABLE:
                        deleter.add(key, [None], live=True, etag=obj.get("ETag"))
        finally:
            with deleter.lock:
                deleter.tally.list_calls += calls.list_calls

    def _purge_versions(
        self,
        listing: Listing,
        threshold: datetime,
        protection: Protection,
        relevant: Mapping[Identity, frozenset[str]],
        deleter: Deleter,
    ) -> None:
        calls = S3Tally()  # this thread's listing calls, added to the purge's at the end
        try:
            for key, versions in self.keys_with_versions(calls, listing.params()):
                self._purge_key_versions(key, versions, threshold, protection, relevant, deleter)
        finally:
            with deleter.lock:
                deleter.tally.list_calls += calls.list_calls

    def _purge_key_versions(
        self,
        key: str,
        versions: list[tuple[Version, datetime | None]],
        threshold: datetime,
        protection: Protection,
        relevant: Mapping[Identity, frozenset[str]],
        deleter: Deleter,
    ) -> None:
        def delete(entry: _Removable) -> None:
            deleter.add(entry[0], entry[1] or [None], live=entry[2])

        tally = deleter.tally
        self._key_versions(
            key, versions, threshold, protection, relevant, tally, deleter.lock, delete, gone=tally
        )

    def _key_versions(
        self,
        key: str,
        versions: list[tuple[Version, datetime | None]],
        threshold: datetime,
        protection: Protection,
        relevant: Mapping[Identity, frozenset[str]],
        tally: S3Tally,
        lock: threading.Lock | threading.RLock,
        removable: Callable[[_Removable], None],
        *,
        gone: S3Tally,
    ) -> None:
        """Judge one key of a versioned bucket with all its versions and delete markers.

        A key with a current object is counted in ``tally``; one without (only old
        versions and delete markers left) is not an object now and is not counted, but
        what is left of it goes when it has expired (an unreadable one is counted in
        ``gone``). A removable key is handed to ``removable`` with every version id.
        """
        live = any(v.is_latest and not v.delete_marker for v, _ in versions)
        if self.store.time_from == KeyTimeSource.LAST_MODIFIED:
            # Every version must be older than the cutoff, the newest one included.
            modified = max((at for _, at in versions if at is not None), default=None)
        else:
            modified = None
        with lock:
            if live:
                judged = self._judge(key, modified, threshold, tally)
            else:
                judged = self._judge(key, modified, threshold, S3Tally())  # not an object now
        if judged is None or not judged[1]:
            return
        readable = [v.version_id for v, _ in versions if not v.delete_marker]
        verdict = self._protect(key, readable, protection, relevant)
        with lock:
            if live:
                self._count(verdict, judged[0], tally)
            elif verdict == _UNREADABLE:
                gone.unreadable += 1
        if verdict == _REMOVABLE:
            removable((key, [v.version_id for v, _ in versions], live, None))

    def _judge(
        self, key: str, last_modified: datetime | None, threshold: datetime, tally: S3Tally
    ) -> tuple[datetime, bool] | None:
        """(age, expired) of a key fitting the layout; None (and counted) when it does not."""
        found = self.store.match(key)
        if found is None:
            tally.unmatched += 1
            return None
        if self.store.time_from == KeyTimeSource.LAST_MODIFIED:
            if last_modified is None:
                tally.unmatched += 1
                return None
            age = last_modified.astimezone(UTC)
            expired = age < threshold
        else:
            age = found.start
            expired = found.end <= threshold
        tally.total += 1
        tally.note_age(age)
        if not expired:
            tally.note_counted(age)
        return age, expired

    @staticmethod
    def _count(verdict: str, age: datetime, tally: S3Tally) -> None:
        """Count an expired object by its verdict."""
        tally.expired += 1
        if verdict == _HELD:
            tally.held += 1
        elif verdict == _RESTRICTED:
            tally.restricted += 1
        elif verdict == _UNREADABLE:
            tally.unreadable += 1
        else:
            tally.note_removable(age)

    def _protect(
        self,
        key: str,
        version_ids: list[str | None],
        protection: Protection,
        relevant: Mapping[Identity, frozenset[str]],
    ) -> str:
        """Whether an expired object is held, restricted, unreadable or removable."""
        if protection.category_held:
            return _HELD
        if not relevant:
            return _REMOVABLE
        found: dict[Identity, set[str]] = {}
        try:
            for version_id in version_ids:
                self._scan(key, version_id, relevant, protection, found)
                if protection.is_held(found):
                    return _HELD
        except _Unreadable:
            return _UNREADABLE
        if protection.is_held(found):
            return _HELD
        if protection.is_restricted(found):
            return _RESTRICTED
        return _REMOVABLE

    def _relevant(self, protection: Protection) -> dict[Identity, frozenset[str]]:
        """The protected values of the identity types the store's subject fields hold."""
        relevant: dict[Identity, frozenset[str]] = {}
        for identity in self.store.identities:
            values = protection.held.get(identity, frozenset()) | protection.restricted.get(
                identity, frozenset()
            )
            if values:
                relevant[identity] = frozenset(values)
        return relevant

    def _scan(
        self,
        key: str,
        version_id: str | None,
        relevant: Mapping[Identity, frozenset[str]],
        protection: Protection,
        found: dict[Identity, set[str]],
    ) -> None:
        """Add the protected values one object (version) holds to ``found``, streaming.

        Stops early once a held value is found. An object gone meanwhile holds nothing.
        """
        params: dict[str, str] = {"Bucket": self.store.bucket, "Key": key}
        if version_id is not None:
            params["VersionId"] = version_id
        try:
            body = self.client().get_object(**params)["Body"]
        except ClientError as e:
            if error_code(e) in ("NoSuchKey", "NoSuchVersion", "404"):
                return
            raise _Unreadable(error_code(e)) from e
        except BotoCoreError as e:
            raise _Unreadable(type(e).__name__) from e
        selectors = [s for s in self.store.subject if s.identity in relevant]
        try:
            for row in self.rows(body):
                for selector in selectors:
                    value = row.get(selector.field)
                    if value is None:
                        continue
                    value = value if isinstance(value, str) else json.dumps(value)
                    value = comparable(selector.identity, value)
                    if value in relevant[selector.identity]:
                        found.setdefault(selector.identity, set()).add(value)
                        if value in protection.held.get(selector.identity, ()):
                            return
        except (UnicodeDecodeError, ValueError, csv.Error, BotoCoreError) as e:
            raise _Unreadable(type(e).__name__) from e
        finally:
            body.close()

    def settle(self, count: int, refs: Refs) -> Settlement:
        """How many keys of an open intent (its DeleteObjects call's entries, ``[key,
        version id]``) are gone: a key is, when a HEAD of each of its entries (the
        version, in a versioned bucket) answers 404. A 405 (a delete marker) or an object
        means it is there; a 403 (S3 answers it for a missing key to a client that may
        not list the bucket) leaves the intent in doubt.

        :raises StoreError: when the server cannot be reached or answers an error (the
            intent stays open for a later run).
        """
        entries: dict[str, list[str | None]] = {}
        for key, version_id in refs.items:
            entries.setdefault(key, []).append(version_id)
        client = self.client()

        def gone(item: tuple[str, list[str | None]]) -> bool | None:
            key, versions = item
            for version_id in versions:
                params = {"Bucket": self.store.bucket, "Key": key}
                if version_id is not None:
                    params["VersionId"] = version_id
                try:
                    client.head_object(**params)
                except ClientError as e:
                    status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                    if status == 404:
                        continue
                    if status == 405:  # a delete marker that is still there
                        return False
                    if status == 403:
                        return None
                    raise self.store_error(e, "HeadObject") from e
                except BotoCoreError as e:
                    raise self.store_error(e, "HeadObject") from e
                return False
            return True

        with ThreadPoolExecutor(SETTLE_THREADS, thread_name_prefix="lethe-s3-settle") as pool:
            answers = list(pool.map(gone, entries.items()))
        if None in answers:
            return Settlement(removed=None)
        return Settlement(removed=min(count, sum(answers)))

    def _log(self, what: str, tally: S3Tally) -> None:
        log.info(
            "%s s3 store %s:%s of category %s: %d objects, %d expired (%d held, %d "
            "restricted, %d unreadable), %d removed, %d versions removed, %d failed, "
            "%d DeleteObjects calls, %d listing calls, %d unmatched, %d gone meanwhile",
            what,
            self.store.conn_id,
            self.store.location,
            self.category.id,
            tally.total,
            tally.expired,
            tally.held,
            tally.restricted,
            tally.unreadable,
            tally.removed,
            tally.versions_removed,
            tally.failed,
            tally.batches,
            tally.list_calls,
            tally.unmatched,
            tally.gone_meanwhile,
        )
