"""Write a :class:`~lethe_dev.synthetic.generator.SyntheticProvider` into the three stores.

Each loader is a reset: it first removes what the store holds (telecom rows and usage
partitions; the recordings tree; every object version in the buckets), then writes the
provider's data, so loading twice gives the same state. Stores are reached only through
the Airflow provider hooks handed in. Logs carry counts, never personal values.
"""

from __future__ import annotations

import logging
import posixpath
import stat
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from lethe.exceptions import StoreError
from lethe_dev.synthetic.model import (
    ANALYTICS_BUCKET,
    BUCKETS,
    CUSTOMER_RECORDINGS,
    EXPORTS_BUCKET,
    LI_BUCKET,
    LI_KINDS,
    RECORDINGS_ROOT,
    SUPPORT_RECORDINGS,
)
from lethe_dev.synthetic.schema import (
    SCHEMA,
    TABLE_COLUMNS,
    USAGE_TABLE,
    apply_reference_schema_on,
    reset_telecom_on,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import psycopg
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.providers.sftp.hooks.sftp import SFTPHook
    from paramiko import SFTPClient

    from lethe_dev.synthetic.generator import SyntheticProvider

log = logging.getLogger(__name__)

_ROWS_PER_CHUNK = 2000
_NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


# ---------------------------------------------------------------------- PostgreSQL


def _array_literal(items: list[str]) -> str:
    quoted = ('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items)
    return "{" + ",".join(quoted) + "}"


def copy_field(value: Any) -> str:
    """One value in PostgreSQL's COPY text format (escaped; ``\\N`` for NULL).

    :param value: None, str, int, bool, float, datetime (aware), date or list of str
    """
    kind = type(value)
    if value is None:
        return _NULL
    if kind is str:
        return value.translate(_ESCAPES)
    if kind is int or kind is float:
        return str(value)
    if kind is datetime or kind is date:
        return value.isoformat()
    if kind is bool:
        return "t" if value else "f"
    if kind is list or kind is tuple:
        return _array_literal(list(value)).translate(_ESCAPES)
    raise TypeError(f"cannot COPY a value of type {kind.__name__}")


def copy_chunks(rows: Iterable[tuple[Any, ...]]) -> Iterator[bytes]:
    """COPY text lines for ``rows``, joined and encoded in chunks of a few thousand rows."""
    buffer: list[str] = []
    for row in rows:
        buffer.append("\t".join([copy_field(v) for v in row]))
        if len(buffer) >= _ROWS_PER_CHUNK:
            buffer.append("")
            yield "\n".join(buffer).encode()
            buffer = []
    if buffer:
        buffer.append("")
        yield "\n".join(buffer).encode()


def copy_rows(
    conn: psycopg.Connection[Any], table: str, columns: tuple[str, ...], rows: Iterable[tuple]
) -> int:
    """Stream ``rows`` into ``telecom.<table>`` with COPY FROM STDIN (psycopg 3).

    Does not commit.

    :param conn: an open psycopg 3 connection (what ``PostgresHook.get_conn()`` returns)
    :param table: table name in schema ``telecom``
    :param columns: the columns the row tuples hold, in order
    :param rows: the rows; consumed once, never materialised
    :return: the number of rows copied
    """
    counted = _Counter(rows)
    sql = f"COPY {SCHEMA}.{table} ({', '.join(columns)}) FROM STDIN"
    with conn.cursor() as cur, cur.copy(sql) as copy:
        for chunk in copy_chunks(counted):
            copy.write(chunk)
    return counted.count


class _Counter:
    """Counts the items of an iterable as they pass."""

    def __init__(self, items: Iterable[tuple]) -> None:
        self._items = items
        self.count = 0

    def __iter__(self) -> Iterator[tuple]:
        for item in self._items:
            self.count += 1
            yield item


def usage_partition_months(provider: SyntheticProvider) -> list[date]:
    """Months that get a usage partition: every month with records, as_of's month and the next.

    The two current months exist so that new usage records can be written at once.
    """
    months = {month for month, _ in provider.usage_plan}
    current = provider.as_of.replace(day=1)
    months.add(current)
    months.add((current + timedelta(days=32)).replace(day=1))
    return sorted(months)


def load_postgres(provider: SyntheticProvider, hook: PostgresHook) -> dict[str, int]:
    """Reset schema ``telecom`` and COPY the provider's rows into it, in one transaction.

    :param provider: the data to load
    :param hook: hook on the telecom database
    :return: ``{"telecom.<table>": rows, ..., "telecom.usage_records (partitions)": n}``
    """
    conn = hook.get_conn()
    try:
        apply_reference_schema_on(conn)
        counts: dict[str, int] = {}
        with conn.cursor() as cur:
            cur.execute("SET LOCAL client_min_messages TO warning")
        dropped = reset_telecom_on(conn)
        months = usage_partition_months(provider)
        with conn.cursor() as cur:
            for month in months:
                cur.execute(f"SELECT {SCHEMA}.ensure_usage_partition(%s)", (month,))
        for table, columns in TABLE_COLUMNS.items():
            counts[table] = copy_rows(conn, table, columns, provider.table_rows(table))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()
    _analyze(hook)
    log.info(
        "Seeded schema %s: %d tables, %d rows (%d usage records in %d partitions; "
        "%d old partitions dropped)",
        SCHEMA,
        len(TABLE_COLUMNS),
        sum(counts.values()),
        counts[USAGE_TABLE],
        len(months),
        dropped,
    )
    summary = {f"{SCHEMA}.{table}": count for table, count in counts.items()}
    summary[f"{SCHEMA}.{USAGE_TABLE} (partitions)"] = len(months)
    return summary


def _analyze(hook: PostgresHook) -> None:
    """Refresh planner statistics of the freshly loaded tables (outside a transaction)."""
    conn = hook.get_conn()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"ANALYZE {', '.join(f'{SCHEMA}.{t}' for t in TABLE_COLUMNS)}")
    finally:
        conn.close()


# ---------------------------------------------------------------------- SFTP


def _remove_tree(sftp: SFTPClient, path: str) -> int:
    """Remove everything below ``path`` (not ``path`` itself); return the files removed."""
    removed = 0
    for entry in sftp.listdir_attr(path):
        child = posixpath.join(path, entry.filename)
        if stat.S_ISDIR(entry.st_mode or 0):
            removed += _remove_tree(sftp, child)
            sftp.rmdir(child)
        else:
            sftp.remove(child)
            removed += 1
    return removed


def _makedirs(sftp: SFTPClient, path: str, known: set[str]) -> None:
    """Create ``path`` and its missing parents; ``known`` caches directories that exist."""
    if path in known or path == "/":
        return
    parent = posixpath.dirname(path)
    _makedirs(sftp, parent, known)
    try:
        sftp.mkdir(path)
    except OSError:
        try:
            if not stat.S_ISDIR(sftp.stat(path).st_mode or 0):
                raise StoreError(f"{path} exists on the recording server and is not a directory")
        except FileNotFoundError as missing:
            raise StoreError(f"cannot create directory {path} on the recording server") from missing
    known.add(path)


def load_sftp(provider: SyntheticProvider, hook: SFTPHook) -> dict[str, int]:
    """Empty ``/recordings`` and upload the provider's recordings, mtime = call time.

    Uses one managed SFTP session for everything.

    :param provider: the data to load
    :param hook: hook on the recording server
    :return: ``{"sftp:/recordings/support/": files, "sftp:/recordings/customers/": files}``
    """
    counts = {SUPPORT_RECORDINGS: 0, CUSTOMER_RECORDINGS: 0}
    with hook.get_managed_conn() as sftp:
        known: set[str] = set()
        _makedirs(sftp, RECORDINGS_ROOT, known)
        removed = _remove_tree(sftp, RECORDINGS_ROOT)
        for top in counts:
            _makedirs(sftp, top, known)
        for rec in provider.recordings():
            _makedirs(sftp, posixpath.dirname(rec.path), known)
            with sftp.open(rec.path, "wb") as handle:
                handle.write(rec.data)
            sftp.utime(rec.path, (rec.mtime, rec.mtime))
            top = (
                SUPPORT_RECORDINGS
                if rec.path.startswith(SUPPORT_RECORDINGS + "/")
                else CUSTOMER_RECORDINGS
            )
            counts[top] += 1
    log.info(
        "Seeded %s: %d support-line and %d customer recordings (%d old files removed)",
        RECORDINGS_ROOT,
        counts[SUPPORT_RECORDINGS],
        counts[CUSTOMER_RECORDINGS],
        removed,
    )
    return {f"sftp:{top}/": count for top, count in counts.items()}


# ---------------------------------------------------------------------- S3


def empty_bucket(client: Any, bucket: str) -> int:
    """Delete every object version and delete marker in ``bucket``; return how many.

    :raises StoreError: when the store refuses to delete some of them
    """
    removed = 0
    paginator = client.get_paginator("list_object_versions")
    batch: list[dict[str, str]] = []

    def flush() -> None:
        nonlocal removed, batch
        if not batch:
            return
        answer = client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        errors = answer.get("Errors") or []
        if errors:
            raise StoreError(f"could not empty bucket {bucket}: {len(errors)} versions refused")
        removed += len(batch)
        batch = []

    for page in paginator.paginate(Bucket=bucket):
        for entry in (*page.get("Versions", ()), *page.get("DeleteMarkers", ())):
            batch.append({"Key": entry["Key"], "VersionId": entry["VersionId"]})
            if len(batch) == 1000:
                flush()
    flush()
    return removed


def _ensure_bucket(hook: S3Hook, bucket: str) -> None:
    if not hook.check_for_bucket(bucket):
        hook.create_bucket(bucket_name=bucket)


def _make_private(client: Any, bucket: str) -> None:
    """Block every form of public access to ``bucket`` where the store supports it."""
    try:
        client.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
    except client.exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code not in ("NotImplemented", "XNotImplemented"):
            raise
        log.info("Store does not support public access blocks; %s stays private by ACL", bucket)


def load_s3(provider: SyntheticProvider, hook: S3Hook) -> dict[str, int]:
    """Empty the three buckets (all versions) and upload the provider's objects.

    Creates missing buckets, enables versioning on the lawful-intercept bucket and blocks
    public access to the exports bucket.

    :param provider: the data to load
    :param hook: hook on the object store
    :return: ``{"s3://<bucket>/<prefix>/": objects, ...}`` plus
        ``"s3://lethe-lawful-intercept (noncurrent versions)"``
    """
    client = hook.get_conn()
    removed = 0
    for bucket in BUCKETS:
        _ensure_bucket(hook, bucket)
        removed += empty_bucket(client, bucket)
    client.put_bucket_versioning(Bucket=LI_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    _make_private(client, EXPORTS_BUCKET)
    noncurrent = f"s3://{LI_BUCKET} (noncurrent versions)"
    counts: dict[str, int] = {f"s3://{LI_BUCKET}/traffic/{kind}/": 0 for kind in LI_KINDS}
    counts[noncurrent] = 0
    counts[f"s3://{ANALYTICS_BUCKET}/exports/"] = 0
    counts[f"s3://{EXPORTS_BUCKET}/"] = 0
    for obj in provider.s3_objects():
        content_type = "application/x-ndjson" if obj.key.endswith(".jsonl") else "text/csv"
        for body in (*obj.earlier_versions, obj.body):
            client.put_object(Bucket=obj.bucket, Key=obj.key, Body=body, ContentType=content_type)
        counts[noncurrent] += len(obj.earlier_versions)
        prefix = obj.key.split("/")
        name = (
            f"s3://{obj.bucket}/{prefix[0]}/{prefix[1]}/"
            if obj.bucket == LI_BUCKET
            else f"s3://{obj.bucket}/{prefix[0]}/"
        )
        counts[name] += 1
    log.info(
        "Seeded buckets %s: %d objects, %d noncurrent versions (%d old versions removed)",
        ", ".join(BUCKETS),
        sum(v for k, v in counts.items() if k != noncurrent),
        counts[noncurrent],
        removed,
    )
    return counts
