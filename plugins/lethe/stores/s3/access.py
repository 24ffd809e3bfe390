"""What every S3 operation of one store shares: the client, listings, rows, counts.

:class:`S3Access` is the store's bucket as one adapter call reaches it: the boto3 client
of the hook (created on first use), paginated listings with S3 errors turned into a
:class:`~lethe.exceptions.StoreError`, and the rows of an object body (CSV or JSON lines,
streaming). :class:`S3Tally` holds the counts of one survey, purge, collect or erase.

Messages and logs carry counts, the connection id, the bucket and error codes; never keys.
"""

from __future__ import annotations

import codecs
import csv
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore import parsers
from botocore.exceptions import BotoCoreError, ClientError

from lethe.domain.counts import SurveyTally
from lethe.exceptions import StoreError
from lethe.policy.vocabulary import ObjectFormat

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from lethe.domain.counts import Survey
    from lethe.policy.models import Category, S3Store
    from lethe.policy.vocabulary import Identity

#: What reading an object's rows can raise when its content is not what the policy says.
READ_ERRORS = (UnicodeDecodeError, ValueError, csv.Error, BotoCoreError)


def s3_timestamp(value: Any) -> datetime:
    """A timestamp of an S3 answer, as botocore's own parser reads it.

    Listings give every object's ``LastModified`` as ISO 8601 in UTC
    (``2024-01-05T10:00:00.000Z``), which botocore reads with dateutil's general parser:
    about 0.1 ms a key, three quarters of the client's time for a listing page
    (docs/benchmarks.md). The standard library reads that form in microseconds; any other
    form (an HTTP date in a header, more digits than microseconds) goes to botocore's parser.
    """
    if isinstance(value, str) and value.endswith("Z") and value[10:11] == "T":
        try:
            return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)
        except ValueError:
            pass
    return parsers.DEFAULT_TIMESTAMP_PARSER(value)


def _read_timestamps_fast(client: Any) -> None:
    """Let ``client`` read timestamps with :func:`s3_timestamp`: the setting botocore's
    ``ResponseParserFactory.set_parser_defaults`` offers, on the factory its endpoint makes
    each answer's parser with (the hook's own botocore session's). A botocore that keeps it
    elsewhere is left as it is, only slower."""
    endpoint = getattr(client, "_endpoint", None)
    factory = getattr(endpoint, "_response_parser_factory", None)
    if isinstance(factory, parsers.ResponseParserFactory):
        factory.set_parser_defaults(timestamp_parser=s3_timestamp)


@dataclass
class S3Tally(SurveyTally):
    """Counts of one survey, purge, collect or erase; every field is a number or an error code."""

    unreadable: int = 0
    unmatched: int = 0
    removed: int = 0
    #: Listed keys another run (or anyone) removed or rewrote before this one's delete.
    gone_meanwhile: int = 0
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


class S3Access:
    """The bucket of one :class:`~lethe.policy.models.S3Store`, as one operation reaches it.

    :param hook: the S3 hook of the store's connection; its client is created on first use.
    :param store: the store, from the validated policy.
    :param category: the category the store belongs to.
    :param page_size: entries per listing page; None leaves it to the server (1000 on S3).
    """

    def __init__(
        self, *, hook: S3Hook, store: S3Store, category: Category, page_size: int | None = None
    ) -> None:
        self.hook = hook
        self.store = store
        self.category = category
        self.page_size = page_size

    def client(self) -> Any:
        """The hook's boto3 client, reading timestamps fast (:func:`s3_timestamp`); failing
        to create it is a StoreError naming the store."""
        try:
            client = self.hook.get_conn()
        except Exception as e:
            raise StoreError(
                f"cannot create an S3 client for connection {self.store.conn_id!r} "
                f"(bucket {self.store.bucket!r}): {type(e).__name__}"
            ) from e
        _read_timestamps_fast(client)
        return client

    def store_error(self, error: Exception, operation: str) -> StoreError:
        """The StoreError of a failed S3 call: operation, connection, bucket, error code."""
        return StoreError(
            f"S3 {operation} failed on connection {self.store.conn_id!r}, bucket "
            f"{self.store.bucket!r}: {error_code(error)}"
        )

    def pages(self, operation: str, tally: S3Tally, **params: Any) -> Iterator[dict[str, Any]]:
        """Every page of a listing, with S3 errors turned into a StoreError."""
        client = self.client()
        try:
            paginator = client.get_paginator(operation)
            if self.page_size is not None:
                params["PaginationConfig"] = {"PageSize": self.page_size}
            for page in paginator.paginate(Bucket=self.store.bucket, **params):
                tally.list_calls += 1
                yield page
        except (ClientError, BotoCoreError) as e:
            raise self.store_error(e, operation) from e

    def rows(self, body: Any) -> Iterator[Mapping[str, Any]]:
        """The rows of an object body in the store's format, streaming.

        :raises ValueError: (or a decoding or CSV error) when the body is not that format,
            or a CSV header lacks a subject column.
        """
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

    def row_subjects(self, row: Mapping[str, Any]) -> dict[Identity, list[str]]:
        """The identities in a row's subject fields, by type, as text."""
        found: dict[Identity, list[str]] = {}
        for selector in self.store.subject:
            value = row.get(selector.field)
            if value is not None:
                text = value if isinstance(value, str) else json.dumps(value)
                found.setdefault(selector.identity, []).append(text)
        return found

    def request_fields(
        self, subject: Mapping[Identity, frozenset[str]]
    ) -> dict[Identity, frozenset[str]]:
        """The subject's values of the identity types the store's fields hold, for a
        collect or an erase; none when the category grants the subject no right at all:
        then its fields are declared for legal holds and restrictions only (the
        lawful-intercept logs), and a subject's request never lists or reads the store."""
        if not self.category.rights:
            return {}
        return {i: subject[i] for i in self.store.identities if subject.get(i)}


def error_code(error: Exception) -> str:
    """The S3 error code of a ClientError (``AccessDenied``), else the exception's class."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "ClientError")
    return type(error).__name__
