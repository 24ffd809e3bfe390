"""Erase on an S3 store: one subject's rows, for an erasure or objection.

Erase reads every object fitting the layout (every version, in a versioned bucket): an
object of the subject alone is deleted; a shared one (a daily export of many visitors) is
rewritten under its key without the subject's rows, every other byte unchanged, and in a
versioned bucket its older versions are deleted after it. An object holding a held value
stays whole.

Messages and logs carry counts, the connection id, the bucket and error codes; never keys.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from lethe.domain.counts import EraseResult
from lethe.domain.protection import Protection, shares_identity
from lethe.exceptions import PurgeError, StoreError
from lethe.policy.vocabulary import ObjectFormat
from lethe.stores.s3.access import READ_ERRORS, S3Tally, error_code
from lethe.stores.s3.deletion import Deleter
from lethe.stores.s3.listing import S3Listing

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from lethe.policy.vocabulary import Identity
    from lethe.stores.s3.listing import Version

log = logging.getLogger(__name__)

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


class S3Erasure(S3Listing):
    """Erase one subject's rows from the objects of one store."""

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
        wanted = self.request_fields(subject)
        if not wanted:
            log.info("s3 store %s has no subject field for these identities", self.store.location)
            return EraseResult()
        tally = S3Tally()
        work = _Erasure()
        deleter = Deleter(self, tally)
        try:
            if self.store.versioned:
                listing = self.keys_with_versions(tally, {"Prefix": self.store.prefix})
                for key, versions in listing:
                    if self.store.match(key) is not None:
                        self._erase_versions(key, versions, wanted, protection, deleter, work)
            else:
                for page in self.pages("list_objects_v2", tally, Prefix=self.store.prefix):
                    for obj in page.get("Contents", ()):
                        if self.store.match(obj["Key"]) is not None and obj.get("Size"):
                            self._erase_object(obj["Key"], wanted, protection, deleter, work)
            deleter.close()
        except StoreError as e:
            deleter.abandon()  # the DeleteObjects calls in flight are answered and counted
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

    def _erase_object(
        self,
        key: str,
        wanted: Mapping[Identity, frozenset[str]],
        protection: Protection,
        deleter: Deleter,
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
        versions: list[tuple[Version, datetime | None]],
        wanted: Mapping[Identity, frozenset[str]],
        protection: Protection,
        deleter: Deleter,
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
        censuses: list[tuple[Version, _Census]] = []
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
                subjects = self.row_subjects(row)
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
                    if row is not None and shares_identity(self.row_subjects(row), wanted):
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
                self.client().put_object(**params)
            except ClientError as e:
                code = error_code(e)
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
            return self.client().get_object(**params)
        except ClientError as e:
            code = error_code(e)
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
        except READ_ERRORS as e:
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
