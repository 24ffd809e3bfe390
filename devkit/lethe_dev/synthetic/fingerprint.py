"""Content fingerprints of the governed stores: did two seedings (or a purge) leave the same state?

Each function reads a store through its Airflow hook and returns, per table / file / object,
a count and a hash of the content, without returning the content itself. Tests compare
them; benchmarks use them to check that a run changed what it should.
"""

from __future__ import annotations

import hashlib
import posixpath
import stat
from typing import TYPE_CHECKING, Any

from lethe_dev.synthetic.schema import SCHEMA, TABLE_COLUMNS, USAGE_PARTITION_PREFIX, USAGE_TABLE

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.providers.sftp.hooks.sftp import SFTPHook


_TABLE_DIGEST_SQL = (
    "SELECT count(*), md5(coalesce(string_agg(h, '' ORDER BY h), '')) "
    "FROM (SELECT md5(t::text) AS h FROM {table} t) rows"
)


def postgres_fingerprint(hook: PostgresHook) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent MD5 of every telecom table's rows.

    Rows are rendered as text in UTC, so the session's time zone does not matter. The
    entry ``usage_partitions`` lists the partition names (count, comma-joined names).

    :param hook: hook on the telecom database
    :return: table name to ``(rows, md5 hex)``
    """
    result: dict[str, tuple[int, str]] = {}
    conn = hook.get_conn()
    try:
        with conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            for table in TABLE_COLUMNS:
                # table names come from TABLE_COLUMNS, never from input
                sql = _TABLE_DIGEST_SQL.format(table=f"{SCHEMA}.{table}")
                cur.execute(sql)
                count, digest = cur.fetchone()
                result[table] = (int(count), str(digest))
            result["usage_partitions"] = _partitions(cur)
        conn.rollback()
    finally:
        conn.close()
    return result


def _partitions(cur: Any) -> tuple[int, str]:
    cur.execute(
        """
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        JOIN pg_namespace n ON n.oid = p.relnamespace
        WHERE n.nspname = %s AND p.relname = %s
        ORDER BY c.relname
        """,
        (SCHEMA, USAGE_TABLE),
    )
    names = [row[0] for row in cur.fetchall()]
    if any(not name.startswith(USAGE_PARTITION_PREFIX) for name in names):
        raise AssertionError("a usage partition does not follow the naming scheme")
    return len(names), ",".join(names)


def sftp_fingerprint(hook: SFTPHook, root: str = "/recordings") -> dict[str, tuple[int, int, str]]:
    """Every file below ``root``: its size, mtime and SHA-256, read over one SFTP session.

    :param hook: hook on the recording server
    :param root: the directory to walk
    :return: path to ``(size, mtime, sha256 hex)``
    """
    files: dict[str, tuple[int, int, str]] = {}
    with hook.get_managed_conn() as sftp:
        pending = [root]
        while pending:
            directory = pending.pop()
            for entry in sftp.listdir_attr(directory):
                path = posixpath.join(directory, entry.filename)
                if stat.S_ISDIR(entry.st_mode or 0):
                    pending.append(path)
                    continue
                with sftp.open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
                files[path] = (int(entry.st_size or 0), int(entry.st_mtime or 0), digest)
    return dict(sorted(files.items()))


def s3_fingerprint(hook: S3Hook, bucket: str) -> dict[str, Any]:
    """The current objects of ``bucket`` with their SHA-256, and how many versions exist.

    :param hook: hook on the object store
    :param bucket: bucket name
    :return: ``{"objects": {key: sha256 hex}, "versions": n, "delete_markers": n}``
    """
    client = hook.get_conn()
    objects: dict[str, str] = {}
    versions = markers = 0
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        versions += len(page.get("Versions", ()))
        markers += len(page.get("DeleteMarkers", ()))
        for entry in page.get("Versions", ()):
            if entry.get("IsLatest"):
                body = client.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
                objects[entry["Key"]] = hashlib.sha256(body).hexdigest()
    return {
        "objects": dict(sorted(objects.items())),
        "versions": versions,
        "delete_markers": markers,
    }
