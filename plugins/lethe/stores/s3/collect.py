"""Collect on an S3 store: one subject's rows, for an access or portability export.

Collect applies to stores that name subject fields, of categories that grant the right:
the lawful-intercept logs name theirs for protection checks only and are never listed or
read for a subject. It lists every current object under the prefix that fits the layout
and reads each, streaming, line by line; only rows whose subject field holds one of the
subject's values are kept, so rows of other subjects in the same object never reach the
export. It makes two passes, both streaming: the first counts the subject's rows per
object and gathers their columns (a CSV header, JSON-lines keys, in order of first
appearance), so the export's columns are known before its first row; the second reads
only the objects holding such rows again (``If-Match`` on the ETag of the first read, so a
changed object fails the collect rather than making it inexact) and writes the rows.

Messages and logs carry counts, the connection id, the bucket and error codes; never keys.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from lethe.domain.counts import CollectResult
from lethe.domain.protection import Protection, shares_identity
from lethe.exceptions import StoreError
from lethe.stores.s3.access import READ_ERRORS, S3Access, S3Tally, error_code

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from lethe.policy.models import KeyMatch
    from lethe.policy.vocabulary import Identity
    from lethe.stores.base import ExportSink, RowSink

log = logging.getLogger(__name__)

#: The column a collect puts first in every row: the date of the object the row came from
#: (prefixed with ``_`` while the objects' own columns hold that name).
SOURCE_DATE_COLUMN = "source_date"


@dataclass(frozen=True)
class _Source:
    """An object holding rows of the subject, found by a collect's first pass."""

    key: str
    etag: str | None
    date: date | datetime
    rows: int


class S3Collect(S3Access):
    """Collect one subject's rows from the objects of one store."""

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
        wanted = self.request_fields(subject)
        if not wanted:
            log.info("s3 store %s has no subject field for these identities", self.store.location)
            return CollectResult()
        tally = S3Tally()
        sources: list[_Source] = []
        columns: dict[str, None] = {}
        withheld = 0
        for page in self.pages("list_objects_v2", tally, Prefix=self.store.prefix):
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
                subjects = self.row_subjects(row)
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
                subjects = self.row_subjects(row)
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
            response = self.client().get_object(**params)
        except ClientError as e:
            code = error_code(e)
            if code in ("NoSuchKey", "404"):
                if etag is None:
                    return None
                raise self._changed() from e
            if code in ("PreconditionFailed", "412"):
                raise self._changed() from e
            raise self.store_error(e, "GetObject") from e
        except BotoCoreError as e:
            raise self.store_error(e, "GetObject") from e
        return response["Body"], response.get("ETag")

    def _read_rows(self, body: Any) -> Iterator[Mapping[str, Any]]:
        """The rows of an object body, with parse and read errors as a StoreError."""
        rows = self.rows(body)
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except READ_ERRORS as e:
                raise self._unreadable(type(e).__name__) from e
            yield row

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
