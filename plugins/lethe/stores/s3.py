"""Retention on an S3 store: objects laid out by date under a prefix of one bucket.

*Survey* lists every object under the store's prefix (paginated ``ListObjectsV2``) and
counts those whose key fits the layout. *Purge* lists only what can hold expired objects:
it walks the key layout one ``/``-segment at a time, taking a non-date placeholder's values
from ``part_values`` or from ``Delimiter='/'`` listings, and discovering the date levels
(year, month, day, hour) the same way. A date prefix is skipped when its period starts at
or after the cutoff, listed whole (without a delimiter) when its period ended by the
cutoff, and otherwise walked one level deeper. Expired objects go in ``DeleteObjects``
calls of at most 1000 keys; per-key errors are collected, the rest is still tried, and the
purge ends with a :class:`~lethe.exceptions.PurgeError`.

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

Collect (a subject's access or portability export) applies to stores that name subject
fields, of categories that grant the right: the lawful-intercept logs name theirs for
protection checks only and are never listed or read for a subject. It lists every
current object under the prefix that fits the layout and reads each, streaming, line by
line; only rows whose subject field holds one of the subject's values are kept, so rows of
other subjects in the same object never reach the export. It makes two passes, both
streaming: the first counts the subject's rows per object and gathers their columns (a
CSV header, JSON-lines keys, in order of first appearance), so the export's columns are
known before its first row; the second reads only the objects holding such rows again
(``If-Match`` on the ETag of the first read, so a changed object fails the collect rather
than making it inexact) and writes the rows.

Erase (a subject's erasure or objection) reads every object fitting the layout (every
version, in a versioned bucket): an object of the subject alone is deleted; a shared one
(a daily export of many visitors) is rewritten under its key without the subject's rows,
every other byte unchanged, and in a versioned bucket its older versions are deleted after
it. An object holding a held value stays whole.

Messages and logs carry counts, the connection id, the bucket and error codes; never keys.
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from lethe.domain.counts import CollectResult, EraseResult, PurgeResult, SurveyTally
from lethe.domain.protection import Protection, comparable, shares_identity
from lethe.exceptions import PurgeError, StoreError
from lethe.policy.layout import DATE_PARTS, layout_placeholders
from lethe.policy.primitives import Duration
from lethe.policy.vocabulary import KeyTimeSource, ObjectFormat
from lethe.stores.base import NoRectifiableColumns, StoreAdapter

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from lethe.domain.counts import Survey
    from lethe.domain.cutoffs import Cutoff
    from lethe.policy.models import Category, KeyMatch, S3Store
    from lethe.policy.vocabulary import Identity
    from lethe.stores.base import ExportSink, RowSink

log = logging.getLogger(__name__)

#: The most keys one DeleteObjects call takes.
DELETE_BATCH = 1000
#: The column a collect puts first in every row: the date of the object the row came from
#: (prefixed with ``_`` while the objects' own columns hold that name).
SOURCE_DATE_COLUMN = "source_date"
#: What reading an object's rows can raise when its content is not what the policy says.
_READ_ERRORS = (UnicodeDecodeError, ValueError, csv.Error, BotoCoreError)
#: Bytes an erase reads from an object body at a time.
RAW_CHUNK = 64 * 1024
#: Bytes of a rewritten object an erase keeps in memory before spilling to a temporary file.
REWRITE_SPOOL = 8 * 1024 * 1024
_EOL = re.compile(rb"\r\n|\n|\r")
#: What a rewritten object keeps of the original's headers (GetObject and PutObject names).
_CARRIED_OVER = (
    "ContentType",
    "ContentEncoding",
    "ContentLanguage",
    "ContentDisposition",
    "CacheControl",
    "Metadata",
    "ServerSideEncryption",
    "SSEKMSKeyId",
)

_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
_DATE_BODY = {
    "yyyy": r"\d{4}",
    "mm": r"0[1-9]|1[0-2]",
    "dd": r"0[1-9]|[12]\d|3[01]",
    "hh": r"[01]\d|2[0-3]",
}
_HELD, _RESTRICTED, _REMOVABLE, _UNREADABLE = (
    "held",
    "restricted",
    "removable",
    "unreadable",
)


class _Unreadable(Exception):
    """An object's rows could not be read to check them for protected values."""


class _KeyFailure(Exception):
    """One key could not be erased; ``code`` says why (an S3 error code, never a key)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _Census:
    """What an erase found in one object (version): rows of the subject and of others."""

    etag: str | None
    subject_rows: int = 0
    other_rows: int = 0
    #: Some row holds a held value (or the category is held): the object stays as it is.
    held: bool = False


@dataclass
class _Erasure:
    """Counts of one erase besides the deleter's; every field is a number."""

    read: int = 0
    rows: int = 0
    rewritten: int = 0
    withheld: int = 0
    failed: int = 0


@dataclass(frozen=True)
class _Listing:
    """One prefix to list for a purge: ``delimited`` lists only the keys directly under it."""

    prefix: str
    delimited: bool

    def params(self) -> dict[str, Any]:
        """The listing call's parameters: the prefix, and ``Delimiter='/'`` if delimited."""
        params: dict[str, Any] = {"Prefix": self.prefix}
        if self.delimited:
            params["Delimiter"] = "/"
        return params


@dataclass
class _Version:
    """A version (or delete marker) of a key in a versioned bucket."""

    version_id: str
    delete_marker: bool
    is_latest: bool


@dataclass
class _Tally(SurveyTally):
    """Counts of one survey or purge; every field is a number or an error code."""

    unreadable: int = 0
    unmatched: int = 0
    removed: int = 0
    versions_removed: int = 0
    failed: int = 0
    batches: int = 0
    list_calls: int = 0
    first_error: str | None = None

    def survey(self) -> Survey:
        """The survey; unreadable expired objects count as held (a purge keeps them)."""
        return replace(super().survey(), held=self.held + self.unreadable)

    def note_error(self, code: str) -> None:
        if self.first_error is None:
            self.first_error = code


@dataclass(frozen=True)
class _Source:
    """An object holding rows of the subject, found by a collect's first pass."""

    key: str
    etag: str | None
    date: date | datetime
    rows: int


@dataclass
class _KeyState:
    """What the deletions of one key's entries came to, across DeleteObjects calls."""

    live: bool
    outstanding: int
    failed: bool = False


@dataclass
class _Deleter:
    """Queues (key, version) entries and sends them in DeleteObjects calls of 1000."""

    adapter: S3RetentionAdapter
    tally: _Tally
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
        response = self.adapter._delete_call(objects, self.tally, in_flight=self.states)
        self.tally.batches += 1
        deleted = Counter(entry.get("Key") for entry in response.get("Deleted", ()))
        errors = response.get("Errors", ())
        failed_keys = {entry.get("Key") for entry in errors}
        for entry in errors:
            self.tally.note_error(str(entry.get("Code", "Unknown")))
        sent = Counter(key for key, _ in batch)
        if self.adapter.store.versioned:
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


class S3RetentionAdapter(NoRectifiableColumns, StoreAdapter):
    """Survey and purge the objects of one :class:`~lethe.policy.models.S3Store`.

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

    # ------------------------------------------------------------------------------ contract

    def survey(self, cutoff: Cutoff, protection: Protection) -> Survey:
        """Count the objects fitting the layout, the expired ones and the protected ones.

        Only current objects are counted. An expired one is read for protected values; in
        a versioned bucket every version of its key is read, as the purge does, so an
        object kept because an older version names a held identity counts as held here
        too (and the compliance check does not report it as overdue). Unreadable expired
        objects (checked for protected values but not parseable) are counted as held: a
        purge keeps them.
        """
        tally = _Tally()
        threshold = cutoff.earliest
        relevant = self._relevant(protection)
        for page in self._pages("list_objects_v2", tally, Prefix=self.store.prefix):
            for obj in page.get("Contents", ()):
                judged = self._judge(obj["Key"], obj.get("LastModified"), threshold, tally)
                if judged is None or not judged[1]:
                    continue
                versions: list[str | None] = [None]
                if self.store.versioned and relevant and not protection.category_held:
                    versions = self._readable_versions(obj["Key"], tally) or [None]
                verdict = self._protect(obj["Key"], versions, protection, relevant)
                self._count(verdict, judged[0], tally)
        self._log("Surveyed", tally)
        return tally.survey()

    def purge(self, cutoff: Cutoff, protection: Protection) -> PurgeResult:
        """Delete every expired, unprotected object (every version, if versioned).

        :raises StoreError: when the bucket cannot be listed (nothing was deleted yet).
        :raises PurgeError: when some deletions failed, after trying all the others.
        """
        tally = _Tally()
        threshold = cutoff.earliest
        relevant = self._relevant(protection)
        deleter = _Deleter(self, tally)
        try:
            for listing in self._expired_listings(threshold, tally):
                if self.store.versioned:
                    self._purge_versions(listing, threshold, protection, relevant, deleter)
                else:
                    self._purge_objects(listing, threshold, protection, relevant, deleter)
            deleter.close()
        except PurgeError:
            raise
        except StoreError as e:
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
            },
        )

    def collect(
        self,
        subject: Mapping[Identity, frozenset[str]],
        protection: Protection,
        sink: ExportSink,
        *,
        include_files: bool = True,
    ) -> CollectResult:
        """Write every row of the subject in this store's objects to ``sink``, streaming.

        A row is the subject's when one of the store's subject fields holds one of
        ``subject``'s values of that identity type (exact text; a JSON number or other
        non-string value as its JSON text). Rows under a legal hold (held values in any
        subject field, or the whole category) are counted as ``withheld``, never written;
        restricted rows are written.

        The row sink's columns are ``source_date`` (see :data:`SOURCE_DATE_COLUMN`) and
        then the objects' columns, in order of first appearance among the rows written:
        the CSV header, or the JSON-lines keys. ``source_date`` is the date in the object's
        key (a :class:`~datetime.date`, or the hour's start as an aware datetime when the
        layout has ``{hh}``), else its ``LastModified``; never the key itself. Each row
        holds ``source_date`` and the object row's own fields; CSV values are text, JSON
        values as parsed (objects, and lists holding objects or lists, as JSON text). Rows
        come in key order, then in their order within the object. Only current objects
        are read (not older versions in a versioned bucket); empty objects hold no rows.
        Nothing is opened in the sink when no row of the subject is found.

        :param include_files: ignored: objects are read as rows, not copied as files.
        :return: rows written and rows withheld; nothing at all, without a listing, when
            no subject field has an identity type of ``subject``, or the category grants
            no right (the lawful-intercept logs).
        :raises StoreError: when the bucket cannot be listed, an object cannot be read or
            parsed (the export would be incomplete), or an object changed between the two
            passes; messages name the connection and bucket, never a key or a value.
            Errors of the sink itself pass unchanged.
        """
        wanted = self._request_fields(subject)
        if not wanted:
            log.info("s3 store %s has no subject field for these identities", self.store.location)
            return CollectResult()
        tally = _Tally()
        sources: list[_Source] = []
        columns: dict[str, None] = {}
        withheld = 0
        for page in self._pages("list_objects_v2", tally, Prefix=self.store.prefix):
            for obj in page.get("Contents", ()):
                found = self.store.match(obj["Key"])
                if found is None or not obj.get("Size"):
                    continue
                tally.total += 1
                counted = self._count_subject_rows(obj["Key"], wanted, protection, columns)
                if counted is None:
                    continue  # deleted since it was listed: no longer held
                etag, rows, held = counted
                withheld += held
                if rows:
                    date_of = _source_date(found, obj.get("LastModified"))
                    sources.append(_Source(key=obj["Key"], etag=etag, date=date_of, rows=rows))
        written = 0
        if sources:
            name = SOURCE_DATE_COLUMN
            while name in columns:
                name = f"_{name}"
            with sink.rows(self.category, self.store, (name, *columns)) as out:
                for source in sources:
                    written += self._write_subject_rows(source, wanted, protection, name, out)
        log.info(
            "Collected s3 store %s:%s of category %s for one subject: %d objects read, "
            "%d holding the subject's rows, %d rows written, %d withheld",
            self.store.conn_id,
            self.store.location,
            self.category.id,
            tally.total,
            len(sources),
            written,
            withheld,
        )
        return CollectResult(rows=written, withheld=withheld)

    def erase(
        self, subject: Mapping[Identity, frozenset[str]], protection: Protection
    ) -> EraseResult:
        """Erase the subject's rows from every object of the store, keeping everyone else's.

        A row is the subject's as for :meth:`collect` (exact text of a subject field). Every
        object fitting the layout is read, streaming (in a versioned bucket every version
        of every key, so that older versions are found too), whatever its age:

        * an object holding only the subject's rows is deleted (in a versioned bucket with
          all its versions and delete markers): ``removed`` += 1;
        * an object holding other rows too (a daily export of many visitors) is rewritten
          under the same key without the subject's rows: the other bytes stay exactly as
          they were (the CSV header, the other rows, blank lines, a byte-order mark), the
          content type and metadata are carried over, and the write is conditional on the
          ETag that was read (``If-Match``), so a concurrent change fails it instead of
          being overwritten. In a versioned bucket every older version and delete marker
          of the key is deleted after it, so the subject's rows do not survive in the
          history. ``rewritten`` += 1 and ``removed`` += the subject's rows;
        * a key whose current object holds none of the subject's rows (or is deleted) but
          whose older versions do: those versions are deleted, ``removed`` += 1.

        A legal hold keeps the whole key as it is when any row of it (any version) holds
        a held value, or the whole category is held; the subject's rows there count as
        ``withheld``. Empty objects hold no rows. A second erase finds nothing.

        Failures on single keys (an object that cannot be read or parsed, a refused write
        or deletion, an object that changed meanwhile) do not stop the others; the erase
        then ends with a :class:`~lethe.exceptions.PurgeError` carrying the counts.

        :return: what was removed, rewritten and withheld; nothing at all, without any S3
            call, when the store has no subject field of ``subject``'s identity types or
            the category grants no right (the lawful-intercept logs).
        :raises StoreError: when the bucket cannot be listed before anything was erased.
        :raises PurgeError: when some keys could not be erased, or the listing failed
            part-way (with what was erased before).
        """
        wanted = self._request_fields(subject)
        if not wanted:
            log.info("s3 store %s has no subject field for these identities", self.store.location)
            return EraseResult()
        tally = _Tally()
        work = _Erasure()
        deleter = _Deleter(self, tally)
        try:
            if self.store.versioned:
                listing = self._keys_with_versions(tally, {"Prefix": self.store.prefix})
                for key, versions in listing:
                    if self.store.match(key) is not None:
                        self._erase_versions(key, versions, wanted, protection, deleter, work)
            else:
                for page in self._pages("list_objects_v2", tally, Prefix=self.store.prefix):
                    for obj in page.get("Contents", ()):
                        if self.store.match(obj["Key"]) is not None and obj.get("Size"):
                            self._erase_object(obj["Key"], wanted, protection, deleter, work)
            deleter.close()
        except StoreError as e:
            removed = tally.removed + work.rows
            if not (removed or work.rewritten or tally.batches) and not isinstance(e, PurgeError):
                raise  # nothing was changed: the plain store error says it all
            raise PurgeError(
                f"{e} (erasing one subject: {removed} items removed, {work.rewritten} objects "
                f"rewritten before)",
                removed=removed,
                failed=tally.failed + work.failed + len(deleter.states),
            ) from e
        removed = tally.removed + work.rows
        failed = tally.failed + work.failed
        log.info(
            "Erased one subject from s3 store %s:%s of category %s: %d objects read, "
            "%d objects removed, %d rewritten (%d rows removed), %d versions removed, "
            "%d rows withheld, %d failed",
            self.store.conn_id,
            self.store.location,
            self.category.id,
            work.read,
            tally.removed,
            work.rewritten,
            work.rows,
            tally.versions_removed,
            work.withheld,
            failed,
        )
        if failed:
            raise PurgeError(
                f"{failed} objects of s3 store {self.store.conn_id}:{self.store.location} "
                f"could not be erased for one subject (first error {tally.first_error}); "
                f"{removed} items were removed and {work.rewritten} objects rewritten",
                removed=removed,
                failed=failed,
            )
        return EraseResult(removed=removed, rewritten=work.rewritten, withheld=work.withheld)

    def _request_fields(
        self, subject: Mapping[Identity, frozenset[str]]
    ) -> dict[Identity, frozenset[str]]:
        """The subject's values of the identity types the store's fields hold, for a
        collect or an erase; none when the category grants the subject no right at all:
        then its fields are declared for legal holds and restrictions only (the
        lawful-intercept logs), and a subject's request never lists or reads the store."""
        if not self.category.rights:
            return {}
        return {i: subject[i] for i in self.store.identities if subject.get(i)}

    def _count_subject_rows(
        self,
        key: str,
        wanted: Mapping[Identity, frozenset[str]],
        protection: Protection,
        columns: dict[str, None],
    ) -> tuple[str | None, int, int] | None:
        """First pass over one object: (ETag, the subject's rows, of which held).

        Adds the columns of the subject's unheld rows to ``columns``; None when the object
        is gone.
        """
        opened = self._open_object(key)
        if opened is None:
            return None
        body, etag = opened
        rows = held = 0
        try:
            for row in self._read_rows(body):
                subjects = self._row_subjects(row)
                if not shares_identity(subjects, wanted):
                    continue
                if protection.is_held(subjects):
                    held += 1
                    continue
                if None in row:
                    raise self._unreadable("a row has more fields than the header")
                rows += 1
                columns.update(dict.fromkeys(row))
        finally:
            body.close()
        return etag, rows, held

    def _write_subject_rows(
        self,
        source: _Source,
        wanted: Mapping[Identity, frozenset[str]],
        protection: Protection,
        date_column: str,
        out: RowSink,
    ) -> int:
        """Second pass over one object: write the subject's unheld rows; :return: how many."""
        opened = self._open_object(source.key, etag=source.etag)
        if opened is None:
            raise self._changed()
        body, _ = opened
        written = 0
        try:
            for row in self._read_rows(body):
                subjects = self._row_subjects(row)
                if not shares_identity(subjects, wanted) or protection.is_held(subjects):
                    continue
                written += 1
                if written > source.rows:
                    break
                out.write({date_column: source.date, **{k: _plain(v) for k, v in row.items()}})
        finally:
            body.close()
        if written != source.rows:
            raise self._changed()
        return written

    def _open_object(self, key: str, *, etag: str | None = None) -> tuple[Any, str | None] | None:
        """The streaming body and ETag of an object; None when it is gone (first read only).

        With ``etag``, the object must still be that version of it.
        """
        params: dict[str, str] = {"Bucket": self.store.bucket, "Key": key}
        if etag is not None:
            params["IfMatch"] = etag
        try:
            response = self._client().get_object(**params)
        except ClientError as e:
            code = _error_code(e)
            if code in ("NoSuchKey", "404"):
                if etag is None:
                    return None
                raise self._changed() from e
            if code in ("PreconditionFailed", "412"):
                raise self._changed() from e
            raise self._store_error(e, "GetObject") from e
        except BotoCoreError as e:
            raise self._store_error(e, "GetObject") from e
        return response["Body"], response.get("ETag")

    def _read_rows(self, body: Any) -> Iterator[Mapping[str, Any]]:
        """The rows of an object body, with parse and read errors as a StoreError."""
        rows = self._rows(body)
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except _READ_ERRORS as e:
                raise self._unreadable(type(e).__name__) from e
            yield row

    def _row_subjects(self, row: Mapping[str, Any]) -> dict[Identity, list[str]]:
        """The identities in a row's subject fields, by type, as text."""
        found: dict[Identity, list[str]] = {}
        for selector in self.store.subject:
            value = row.get(selector.field)
            if value is not None:
                text = value if isinstance(value, str) else json.dumps(value)
                found.setdefault(selector.identity, []).append(text)
        return found

    def _unreadable(self, reason: str) -> StoreError:
        return StoreError(
            f"an object of s3 store {self.store.conn_id}:{self.store.location} could not be "
            f"read as {self.store.object_format} ({reason}); the collect would be incomplete"
        )

    def _changed(self) -> StoreError:
        return StoreError(
            f"an object of s3 store {self.store.conn_id}:{self.store.location} changed or "
            f"vanished while it was collected; collect again"
        )

    # ------------------------------------------------------------------------------ erasing

    def _erase_object(
        self,
        key: str,
        wanted: Mapping[Identity, frozenset[str]],
        protection: Protection,
        deleter: _Deleter,
        work: _Erasure,
    ) -> None:
        """Erase the subject from one object of an unversioned store."""
        try:
            census = self._census(key, None, wanted, protection)
            work.read += 1
            if census is None or not census.subject_rows:
                return  # gone since it was listed, or none of the subject's rows
            if census.held:
                work.withheld += census.subject_rows
                return
            if not census.other_rows:
                deleter.add(key, [None], live=True)
                return
            self._rewrite(key, census, wanted)
        except _KeyFailure as e:
            work.failed += 1
            deleter.tally.note_error(e.code)
            return
        work.rewritten += 1
        work.rows += census.subject_rows

    def _erase_versions(
        self,
        key: str,
        versions: list[tuple[_Version, datetime | None]],
        wanted: Mapping[Identity, frozenset[str]],
        protection: Protection,
        deleter: _Deleter,
        work: _Erasure,
    ) -> None:
        """Erase the subject from every version of one key of a versioned store."""
        ordered = [
            version
            for version, _ in sorted(
                versions,
                key=lambda v: (v[0].is_latest, v[1] or datetime.min.replace(tzinfo=UTC)),
                reverse=True,
            )
        ]
        censuses: list[tuple[_Version, _Census]] = []
        try:
            for version in ordered:
                if version.delete_marker:
                    continue
                census = self._census(key, version.version_id, wanted, protection)
                work.read += 1
                if census is not None:
                    censuses.append((version, census))
            with_rows = [(v, c) for v, c in censuses if c.subject_rows]
            if not with_rows:
                return
            current = next(((v, c) for v, c in censuses if v.is_latest and c.subject_rows), None)
            if any(c.held for _, c in censuses):
                work.withheld += (current or with_rows[0])[1].subject_rows
                return
            every = [v.version_id for v in ordered]
            if current is None:
                # The current object holds nothing of the subject; older versions do.
                deleter.add(key, [v.version_id for v, _ in with_rows], live=True)
                return
            version, census = current
            if not census.other_rows:
                deleter.add(key, every, live=True)
                return
            self._rewrite(key, census, wanted, version_id=version.version_id)
        except _KeyFailure as e:
            work.failed += 1
            deleter.tally.note_error(e.code)
            return
        work.rewritten += 1
        work.rows += census.subject_rows
        # Every version before the rewritten one goes: the subject's rows stay in none.
        deleter.add(key, every, live=False)

    def _census(
        self,
        key: str,
        version_id: str | None,
        wanted: Mapping[Identity, frozenset[str]],
        protection: Protection,
    ) -> _Census | None:
        """Count one object's (version's) rows: the subject's, the others', and whether
        any holds a held value; None when it is gone.

        :raises _KeyFailure: when it cannot be read or parsed.
        """
        response = self._get_for_erase(key, version_id=version_id)
        if response is None:
            return None
        census = _Census(etag=response.get("ETag"))
        body = response["Body"]
        try:
            for _, row in self._raw_records(body):
                if row is None:
                    continue
                subjects = self._row_subjects(row)
                if protection.is_held(subjects):
                    census.held = True
                if shares_identity(subjects, wanted):
                    census.subject_rows += 1
                else:
                    census.other_rows += 1
        finally:
            body.close()
        return census

    def _rewrite(
        self,
        key: str,
        census: _Census,
        wanted: Mapping[Identity, frozenset[str]],
        *,
        version_id: str | None = None,
    ) -> None:
        """Put the object again under its key without the subject's rows.

        The object is read again (the version counted, or the object with the ETag
        counted) and copied record by record into a spooled file, leaving out exactly the
        subject's rows; the write is conditional on the ETag counted.

        :raises _KeyFailure: when the object changed, cannot be read or the write fails.
        """
        response = self._get_for_erase(key, version_id=version_id, etag=census.etag)
        if response is None:
            raise _KeyFailure("Changed")
        body = response["Body"]
        dropped = 0
        with tempfile.SpooledTemporaryFile(max_size=REWRITE_SPOOL) as out:
            try:
                for raw, row in self._raw_records(body):
                    if row is not None and shares_identity(self._row_subjects(row), wanted):
                        dropped += 1
                        continue
                    out.write(raw)
            finally:
                body.close()
            if dropped != census.subject_rows:
                raise _KeyFailure("Changed")
            out.seek(0)
            params: dict[str, Any] = {"Bucket": self.store.bucket, "Key": key, "Body": out}
            if census.etag:
                params["IfMatch"] = census.etag
            for field_name in _CARRIED_OVER:
                if response.get(field_name):
                    params[field_name] = response[field_name]
            try:
                self._client().put_object(**params)
            except ClientError as e:
                code = _error_code(e)
                changed = code in ("PreconditionFailed", "412")
                raise _KeyFailure("Changed" if changed else code) from e
            except BotoCoreError as e:
                raise _KeyFailure(type(e).__name__) from e

    def _get_for_erase(
        self, key: str, *, version_id: str | None = None, etag: str | None = None
    ) -> dict[str, Any] | None:
        """GetObject for an erase; None when the object (version) is gone.

        :raises _KeyFailure: when it is refused, or no longer has ``etag``.
        """
        params: dict[str, str] = {"Bucket": self.store.bucket, "Key": key}
        if version_id is not None:
            params["VersionId"] = version_id
        if etag is not None:
            params["IfMatch"] = etag
        try:
            return self._client().get_object(**params)
        except ClientError as e:
            code = _error_code(e)
            if code in ("NoSuchKey", "NoSuchVersion", "404") and etag is None:
                return None
            if code in ("NoSuchKey", "NoSuchVersion", "404", "PreconditionFailed", "412"):
                raise _KeyFailure("Changed") from e
            raise _KeyFailure(code) from e
        except BotoCoreError as e:
            raise _KeyFailure(type(e).__name__) from e

    def _raw_records(self, body: Any) -> Iterator[tuple[bytes, Mapping[str, Any] | None]]:
        """Each record of an object body as (its exact bytes, its row or None).

        None marks what is no one's row: the CSV header and blank lines. Concatenating the
        bytes gives the body back exactly (a byte-order mark stays on the first record); a
        CSV record may span several lines (a quoted newline).

        :raises _KeyFailure: when the body is not the policy's format (or a CSV header
            lacks a subject column).
        """
        lines = _raw_lines(body.iter_chunks(RAW_CHUNK))
        try:
            if self.store.object_format == ObjectFormat.CSV:
                yield from self._csv_records(lines)
                return
            first = True
            for raw in lines:
                text = raw.decode("utf-8-sig" if first else "utf-8")
                first = False
                if not text.strip():
                    yield raw, None
                    continue
                row = json.loads(text)
                if not isinstance(row, dict):
                    raise ValueError("a JSON line is not an object")
                yield raw, row
        except _READ_ERRORS as e:
            raise _KeyFailure(f"Unreadable[{type(e).__name__}]") from e

    def _csv_records(
        self, lines: Iterator[bytes]
    ) -> Iterator[tuple[bytes, Mapping[str, Any] | None]]:
        taken: list[bytes] = []

        def decoded() -> Iterator[str]:
            first = True
            for raw in lines:
                taken.append(raw)
                yield raw.decode("utf-8-sig" if first else "utf-8")
                first = False

        header: list[str] | None = None
        for values in csv.reader(decoded()):
            raw = b"".join(taken)
            taken.clear()
            if header is None:
                header = values
                if any(s.field not in header for s in self.store.subject):
                    raise ValueError("a subject column is missing from the header")
                yield raw, None
            elif not values:
                yield raw, None
            else:
                row: dict[str | None, Any] = dict(zip(header, values, strict=False))
                if len(values) > len(header):
                    row[None] = values[len(header) :]
                yield raw, row

    # ------------------------------------------------------------------------------ listing

    def _expired_listings(self, threshold: datetime, tally: _Tally) -> Iterator[_Listing]:
        """The prefixes a purge lists: those that can hold objects expired at ``threshold``.

        Discovery listings (``Delimiter='/'``) are made while walking; with ``time_from:
        last_modified`` the key says nothing of the age and the whole prefix is listed.
        """
        if self.store.time_from == KeyTimeSource.LAST_MODIFIED:
            yield _Listing(self.store.prefix, delimited=False)
            return
        segments = self.store.key_layout.split("/")
        dates = [name for name in DATE_PARTS if name in layout_placeholders(self.store.key_layout)]
        yield from self._descend(segments, dates, 0, "", {}, threshold, tally)

    def _descend(
        self,
        segments: list[str],
        dates: list[str],
        index: int,
        prefix: str,
        values: dict[str, str],
        threshold: datetime,
        tally: _Tally,
    ) -> Iterator[_Listing]:
        period = _period(values)
        if period is not None:
            start, end = period
            if start >= threshold:
                return  # nothing under it has started before the cutoff
            if end <= threshold:
                yield _Listing(prefix, delimited=False)  # everything under it has expired
                return
            if all(name in values for name in dates):
                return  # the objects' own period straddles the cutoff: none has expired
        segment = segments[index]
        if index == len(segments) - 1:
            head, _ = _segment_regex(segment, values, self.store.part_values)
            yield _Listing(prefix + head, delimited=True)
            return
        names = [name for name in _PLACEHOLDER_RE.findall(segment) if name not in values]
        if not names:
            literal = _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], segment)
            yield from self._descend(
                segments, dates, index + 1, f"{prefix}{literal}/", values, threshold, tally
            )
            return
        if segment == f"{{{names[0]}}}" and names[0] in self.store.part_values:
            choices = [(value, {names[0]: value}) for value in self.store.part_values[names[0]]]
        else:
            choices = self._discover(prefix, segment, values, tally)
        for value, found in choices:
            yield from self._descend(
                segments,
                dates,
                index + 1,
                f"{prefix}{value}/",
                {**values, **found},
                threshold,
                tally,
            )

    def _discover(
        self, prefix: str, segment: str, values: dict[str, str], tally: _Tally
    ) -> list[tuple[str, dict[str, str]]]:
        """The existing values of one segment under ``prefix``, by a delimited listing."""
        head, regex = _segment_regex(segment, values, self.store.part_values)
        operation = "list_object_versions" if self.store.versioned else "list_objects_v2"
        found: list[tuple[str, dict[str, str]]] = []
        for page in self._pages(operation, tally, Prefix=prefix + head, Delimiter="/"):
            for common in page.get("CommonPrefixes", ()):
                text = common["Prefix"][len(prefix) : -1]
                matched = regex.fullmatch(text)
                if matched is None:
                    continue  # outside the layout: never touched
                parts = dict(matched.groupdict())
                try:
                    _period({**values, **parts})
                except ValueError:
                    continue  # an impossible date (30 February): not governed
                found.append((text, parts))
        return sorted(found)

    def _readable_versions(self, key: str, tally: _Tally) -> list[str | None]:
        """The version ids of ``key`` that hold data (delete markers left out)."""
        found: list[str | None] = []
        for page in self._pages("list_object_versions", tally, Prefix=key):
            found.extend(v["VersionId"] for v in page.get("Versions", ()) if v["Key"] == key)
        return found

    def _pages(self, operation: str, tally: _Tally, **params: Any) -> Iterator[dict[str, Any]]:
        """Every page of a listing, with S3 errors turned into a StoreError."""
        client = self._client()
        try:
            paginator = client.get_paginator(operation)
            if self.page_size is not None:
                params["PaginationConfig"] = {"PageSize": self.page_size}
            for page in paginator.paginate(Bucket=self.store.bucket, **params):
                tally.list_calls += 1
                yield page
        except (ClientError, BotoCoreError) as e:
            raise self._store_error(e, operation) from e

    # ------------------------------------------------------------------------------ purging

    def _purge_objects(
        self,
        listing: _Listing,
        threshold: datetime,
        protection: Protection,
        relevant: Mapping[Identity, frozenset[str]],
        deleter: _Deleter,
    ) -> None:
        for page in self._pages("list_objects_v2", deleter.tally, **listing.params()):
            for obj in page.get("Contents", ()):
                key = obj["Key"]
                judged = self._judge(key, obj.get("LastModified"), threshold, deleter.tally)
                if judged is None or not judged[1]:
                    continue
                verdict = self._protect(key, [None], protection, relevant)
                self._count(verdict, judged[0], deleter.tally)
                if verdict == _REMOVABLE:
                    deleter.add(key, [None], live=True)

    def _purge_versions(
        self,
        listing: _Listing,
        threshold: datetime,
        protection: Protection,
        relevant: Mapping[Identity, frozenset[str]],
        deleter: _Deleter,
    ) -> None:
        for key, versions in self._keys_with_versions(deleter.tally, listing.params()):
            self._purge_key_versions(key, versions, threshold, protection, relevant, deleter)

    def _keys_with_versions(
        self, tally: _Tally, params: dict[str, Any]
    ) -> Iterator[tuple[str, list[tuple[_Version, datetime | None]]]]:
        """Each key under a prefix with all its versions and delete markers, in key order.

        A page holds entries up to its last key; a key may continue on the next page, so
        only keys before a page's last key are complete when the page has been read.
        """
        pending: dict[str, list[tuple[_Version, datetime | None]]] = {}
        for page in self._pages("list_object_versions", tally, **params):
            last = None
            for entry, marker in [(v, False) for v in page.get("Versions", ())] + [
                (m, True) for m in page.get("DeleteMarkers", ())
            ]:
                version = _Version(
                    version_id=entry["VersionId"],
                    delete_marker=marker,
                    is_latest=bool(entry.get("IsLatest")),
                )
                pending.setdefault(entry["Key"], []).append((version, entry.get("LastModified")))
                last = entry["Key"] if last is None or entry["Key"] > last else last
            if last is None:
                continue
            for key in sorted(k for k in pending if k < last):
                yield key, pending.pop(key)
        for key in sorted(pending):
            yield key, pending.pop(key)

    def _purge_key_versions(
        self,
        key: str,
        versions: list[tuple[_Version, datetime | None]],
        threshold: datetime,
        protection: Protection,
        relevant: Mapping[Identity, frozenset[str]],
        deleter: _Deleter,
    ) -> None:
        live = any(v.is_latest and not v.delete_marker for v, _ in versions)
        if self.store.time_from == KeyTimeSource.LAST_MODIFIED:
            # Every version must be older than the cutoff, the newest one included.
            modified = max((at for _, at in versions if at is not None), default=None)
        else:
            modified = None
        tally = deleter.tally
        if live:
            judged = self._judge(key, modified, threshold, tally)
        else:
            judged = self._judge(key, modified, threshold, _Tally())  # not an object now
        if judged is None or not judged[1]:
            return
        readable = [v.version_id for v, _ in versions if not v.delete_marker]
        verdict = self._protect(key, readable, protection, relevant)
        if live:
            self._count(verdict, judged[0], tally)
        elif verdict == _UNREADABLE:
            tally.unreadable += 1
        if verdict == _REMOVABLE:
            deleter.add(key, [v.version_id for v, _ in versions], live=live)

    def _delete_call(
        self, objects: list[dict[str, str]], tally: _Tally, in_flight: Mapping[str, Any]
    ) -> dict[str, Any]:
        """One DeleteObjects call; a refused call ends the purge with what it achieved."""
        try:
            return self._client().delete_objects(
                Bucket=self.store.bucket, Delete={"Objects": objects, "Quiet": False}
            )
        except (ClientError, BotoCoreError) as e:
            code = _error_code(e)
            tally.note_error(code)
            failed = tally.failed + len(in_flight)
            raise PurgeError(
                f"DeleteObjects failed on s3 store {self.store.conn_id}:{self.store.location} "
                f"({code}); {tally.removed} objects were removed before",
                removed=tally.removed,
                failed=failed,
            ) from e

    # ------------------------------------------------------------------------------ judging

    def _judge(
        self, key: str, last_modified: datetime | None, threshold: datetime, tally: _Tally
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
    def _count(verdict: str, age: datetime, tally: _Tally) -> None:
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
            body = self._client().get_object(**params)["Body"]
        except ClientError as e:
            if _error_code(e) in ("NoSuchKey", "NoSuchVersion", "404"):
                return
            raise _Unreadable(_error_code(e)) from e
        except BotoCoreError as e:
            raise _Unreadable(type(e).__name__) from e
        selectors = [s for s in self.store.subject if s.identity in relevant]
        try:
            for row in self._rows(body):
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

    def _rows(self, body: Any) -> Iterator[Mapping[str, Any]]:
        lines: Iterable[bytes] = body.iter_lines(chunk_size=64 * 1024, keepends=True)
        if self.store.object_format == ObjectFormat.CSV:
            reader = csv.DictReader(codecs.iterdecode(lines, "utf-8-sig"))
            if reader.fieldnames is None:
                return  # an empty object: no header, and no rows
            header = reader.fieldnames
            if any(s.field not in header for s in self.store.subject):
                raise ValueError("a subject column is missing from the header")
            yield from reader
            return
        for line in codecs.iterdecode(lines, "utf-8-sig"):
            if not line.strip():
                continue
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("a JSON line is not an object")
            yield row

    # ------------------------------------------------------------------------------ plumbing

    def _client(self) -> Any:
        try:
            return self.hook.get_conn()
        except Exception as e:
            raise StoreError(
                f"cannot create an S3 client for connection {self.store.conn_id!r} "
                f"(bucket {self.store.bucket!r}): {type(e).__name__}"
            ) from e

    def _store_error(self, error: Exception, operation: str) -> StoreError:
        return StoreError(
            f"S3 {operation} failed on connection {self.store.conn_id!r}, bucket "
            f"{self.store.bucket!r}: {_error_code(error)}"
        )

    def _log(self, what: str, tally: _Tally) -> None:
        log.info(
            "%s s3 store %s:%s of category %s: %d objects, %d expired (%d held, %d "
            "restricted, %d unreadable), %d removed, %d versions removed, %d failed, "
            "%d DeleteObjects calls, %d listing calls, %d unmatched",
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
        )


def _error_code(error: Exception) -> str:
    """The S3 error code of a ClientError (``AccessDenied``), else the exception's class."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "ClientError")
    return type(error).__name__


def _raw_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of a byte stream with their own line ends (``\\r\\n``, ``\\n`` or ``\\r``);
    joined, they are the stream exactly. A ``\\r`` ending a chunk waits for the next one
    (it may be the first half of a ``\\r\\n``)."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        start = 0
        for found in _EOL.finditer(pending):
            if found.group() == b"\r" and found.end() == len(pending):
                break
            yield pending[start : found.end()]
            start = found.end()
        pending = pending[start:]
    if pending:
        yield pending


def _source_date(found: KeyMatch, last_modified: datetime | None) -> date | datetime | None:
    """The date a collect names an object by: its key's date, else its LastModified (UTC)."""
    if found.start is not None:
        return found.start if "hh" in found.parts else found.start.date()
    return None if last_modified is None else last_modified.astimezone(UTC)


def _plain(value: Any) -> Any:
    """A JSON value as a row sink takes it: objects and nested lists as JSON text."""
    if isinstance(value, dict) or (
        isinstance(value, list) and any(isinstance(item, dict | list) for item in value)
    ):
        return json.dumps(value, ensure_ascii=False)
    return value


def _segment_regex(
    segment: str, values: Mapping[str, str], part_values: Mapping[str, tuple[str, ...]]
) -> tuple[str, re.Pattern[str]]:
    """The literal head of a layout segment and a regex that fully matches its values.

    Known placeholders are filled in; unknown ones become named groups (a repeat matches
    the same value).
    """
    regex, head, position, seen = "", None, 0, set()
    for found in _PLACEHOLDER_RE.finditer(segment):
        literal = segment[position : found.start()]
        regex += re.escape(literal)
        name = found.group(1)
        if name in values:
            regex += re.escape(values[name])
        else:
            if head is None:
                head = _fill(segment[: found.start()], values)
            if name in seen:
                regex += f"(?P={name})"
            else:
                seen.add(name)
                if name in part_values:
                    body = "|".join(re.escape(value) for value in part_values[name])
                else:
                    body = _DATE_BODY.get(name, r"[^/]+")
                regex += f"(?P<{name}>{body})"
        position = found.end()
    regex += re.escape(segment[position:])
    if head is None:
        head = _fill(segment, values)
    return head, re.compile(regex)


def _fill(text: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], text)


def _period(values: Mapping[str, str]) -> tuple[datetime, datetime] | None:
    """The UTC period the known date parts name: (start, end); None without a year.

    :raises ValueError: for an impossible date (30 February).
    """
    if "yyyy" not in values:
        return None
    start = datetime(
        int(values["yyyy"]),
        int(values.get("mm", 1)),
        int(values.get("dd", 1)),
        int(values.get("hh", 0)),
        tzinfo=UTC,
    )
    if "hh" in values:
        return start, start + timedelta(hours=1)
    if "dd" in values:
        return start, start + timedelta(days=1)
    if "mm" in values:
        return start, Duration(months=1).after(start)
    return start, Duration(years=1).after(start)
