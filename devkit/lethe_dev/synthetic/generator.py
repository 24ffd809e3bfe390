"""A deterministic synthetic ICT provider: its telecom database, recordings and buckets.

:class:`SyntheticProvider` invents a small Dutch business ICT provider (customers,
contracts, contact persons, devices, usage records, tickets, web statistics, recordings,
lawful-intercept traffic logs, analytics exports) and seeds the three governed stores with
it through the Airflow provider hooks.

Determinism: everything is a pure function of ``(seed, scale, as_of)``. Each stream of data
draws from its own :class:`random.Random` seeded with ``"<seed>/<stream>"``; nothing reads
the clock or the global random state. All timestamps lie in the four years before
``as_of`` 00:00 UTC, so every retention rule of the privacy statement finds both expired and
unexpired data.

This module orchestrates; the parts live beside it: ``model`` (entities, store layout),
``clock``, ``world`` with ``customers``, ``services``, ``tickets`` and ``web`` (the master
data and its rows), ``usage`` (usage records), ``recordings`` (SFTP files), ``intercept``
(lawful-intercept objects) and ``loaders`` (writing it all into the stores).

Personal values are synthetic but look real; they are never logged (counts only).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from lethe_dev.synthetic import intercept, usage, web
from lethe_dev.synthetic import recordings as recording_files
from lethe_dev.synthetic.model import (
    ADDRESS_SERVICES,
    ANALYTICS_BUCKET,
    BUCKETS,
    CUSTOMER_RECORDINGS,
    DEFAULT_RECORDING_RETENTION_DAYS,
    EXPORTS_BUCKET,
    LI_BUCKET,
    LI_KINDS,
    RECORDING_RETENTION_CHOICES,
    RECORDINGS_ROOT,
    SERVICES,
    SUPPORT_RECORDINGS,
    Contract,
    Customer,
    Frame,
    Line,
    Notable,
    Person,
    Recording,
    S3Object,
)
from lethe_dev.synthetic.schema import TABLE_COLUMNS
from lethe_dev.synthetic.world import WorldBuilder

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    from lethe_dev.synthetic.model import World

# The names callers have always imported from here, wherever they are defined now.
__all__ = [
    "ADDRESS_SERVICES",
    "ANALYTICS_BUCKET",
    "BASE_VOLUMES",
    "BUCKETS",
    "CUSTOMER_RECORDINGS",
    "DEFAULT_RECORDING_RETENTION_DAYS",
    "DEFAULT_SEED",
    "EXPORTS_BUCKET",
    "FIXED_VOLUMES",
    "LI_BUCKET",
    "LI_KINDS",
    "RECORDINGS_ROOT",
    "RECORDING_RETENTION_CHOICES",
    "SERVICES",
    "SUPPORT_RECORDINGS",
    "Contract",
    "Customer",
    "Line",
    "Notable",
    "Person",
    "Recording",
    "S3Object",
    "SyntheticProvider",
]

log = logging.getLogger(__name__)

DEFAULT_SEED = 20180417
"""The default seed (the date of the privacy statement)."""

#: Volumes at scale 1; ``scale`` multiplies each of them except those in FIXED_VOLUMES.
BASE_VOLUMES: dict[str, int] = {
    "customers": 40,
    "usage_records": 5000,
    "support_tickets": 150,
    "web_visitors": 150,
    "web_visits": 600,
    "web_visit_days": 40,
    "contact_form_entries": 80,
    "support_recordings": 80,
    "customer_recordings_per_customer": 10,
    "li_objects_per_kind": 20,
}
#: Per-customer volumes: they grow with the number of customers, not with the scale.
FIXED_VOLUMES = frozenset({"customer_recordings_per_customer"})


class SyntheticProvider:
    """A deterministic synthetic ICT provider that can seed the three governed stores.

    :param seed: seed of every random stream; same seed, scale and as_of give the same data
    :param scale: volume multiplier (1 = small and fast; 200 gives about a million usage
        records)
    :param as_of: the day the data is "as of"; all data lies before its 00:00 UTC
    """

    def __init__(self, *, seed: int = DEFAULT_SEED, scale: int = 1, as_of: date) -> None:
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError("scale must be a positive integer")
        if isinstance(as_of, datetime) or not isinstance(as_of, date):
            raise TypeError("as_of must be a datetime.date")
        self.seed = seed
        self.scale = scale
        self.as_of = as_of
        self.volumes = {
            name: base if name in FIXED_VOLUMES else base * scale
            for name, base in BASE_VOLUMES.items()
        }
        self._frame = Frame(seed=seed, as_of=as_of, volumes=self.volumes)

    def __repr__(self) -> str:
        return f"SyntheticProvider(seed={self.seed}, scale={self.scale}, as_of={self.as_of})"

    # ------------------------------------------------------------------ master data

    @cached_property
    def _world(self) -> World:
        return WorldBuilder(self._frame).build()

    @property
    def notable(self) -> Notable:
        """Shared contacts, near-twin identities, customers per category, recording settings."""
        return self._world.notable

    # ------------------------------------------------------------------ PostgreSQL rows

    def table_rows(self, table: str) -> Iterator[tuple[Any, ...]]:
        """The rows of one telecom table, in insertion order, columns as in ``TABLE_COLUMNS``.

        ``usage_records`` is streamed (never held in memory as a whole).

        :param table: a table name of telecom.sql
        """
        if table not in TABLE_COLUMNS:
            raise KeyError(f"unknown telecom table {table!r}")
        if table == "usage_records":
            return self.iter_usage_records()
        return iter(self._world.rows[table])

    @cached_property
    def usage_plan(self) -> list[tuple[date, int]]:
        """Per UTC month with usage records: (first day of the month, number of records)."""
        return [(month, count) for month, count, _ in self._usage_months]

    @cached_property
    def _usage_months(self) -> list[tuple[date, int, list[Line]]]:
        return usage.usage_months(self._frame, self._world.lines)

    def iter_usage_records(self) -> Iterator[tuple[Any, ...]]:
        """Stream the usage records (row 12), month by month, ordered by ``started_at``.

        Memory holds one month of records at a time; each month draws from its own random
        stream, so a month's records do not depend on the months before it.
        """
        yield from usage.usage_records(self._frame, self._world.persons, self._usage_months)

    # ------------------------------------------------------------------ SFTP files

    def recordings(self) -> Iterator[Recording]:
        """All call recordings (rows 6 and 13), sorted by path."""
        return iter(self._recordings)

    @cached_property
    def _recordings(self) -> list[Recording]:
        return recording_files.recordings(self._frame, self._world)

    # ------------------------------------------------------------------ S3 objects

    def s3_objects(self) -> Iterator[S3Object]:
        """All objects of the lawful-intercept and web-analytics buckets, sorted by key."""
        return iter(self._s3_objects)

    @cached_property
    def _s3_objects(self) -> list[S3Object]:
        world = self._world
        out = intercept.intercept_objects(self._frame, world) + web.analytics_exports(world)
        out.sort(key=lambda o: (o.bucket, o.key))
        return out

    # ------------------------------------------------------------------ digests

    def digest(self) -> str:
        """SHA-256 over every row, file and object this provider generates.

        Two providers with the same arguments have the same digest.
        """
        h = hashlib.sha256()
        for table in TABLE_COLUMNS:
            h.update(f"table {table}\n".encode())
            for row in self.table_rows(table):
                h.update(repr(row).encode())
                h.update(b"\n")
        for rec in self.recordings():
            h.update(f"file {rec.path} {rec.mtime}\n".encode())
            h.update(hashlib.sha256(rec.data).digest())
        for obj in self.s3_objects():
            h.update(f"object {obj.bucket}/{obj.key}\n".encode())
            for body in (*obj.earlier_versions, obj.body):
                h.update(hashlib.sha256(body).digest())
        return h.hexdigest()

    # ------------------------------------------------------------------ seeding

    def seed_postgres(self, hook: PostgresHook | None = None) -> dict[str, int]:
        """Reset schema ``telecom`` and load this provider's rows (one transaction).

        Applies telecom.sql first (idempotent), empties every table, drops every usage
        partition, creates the month partitions needed and loads the rows with COPY.

        :param hook: hook on the telecom database as the tables' owner; default
            ``PostgresHook(TELECOM_ADMIN_DB)`` where that connection is defined, else
            ``PostgresHook(TELECOM_DB)``
        :return: ``{"telecom.<table>": rows, "telecom.usage_records (partitions)": n}``
        """
        from lethe_dev.synthetic import loaders

        if hook is None:
            hook = telecom_admin_hook()
        return loaders.load_postgres(self, hook)

    def seed_sftp(self, hook: SFTPHook | None = None) -> dict[str, int]:
        """Empty the recordings tree and upload this provider's recordings with their mtimes.

        :param hook: hook on the recording server; default ``SFTPHook(RECORDINGS_SFTP)``
        :return: ``{"sftp:/recordings/support/": files, "sftp:/recordings/customers/": files}``
        """
        from lethe_dev.synthetic import loaders

        if hook is None:
            from airflow.providers.sftp.hooks.sftp import SFTPHook

            from lethe.connections import RECORDINGS_SFTP

            hook = SFTPHook(ssh_conn_id=RECORDINGS_SFTP)
        return loaders.load_sftp(self, hook)

    def seed_s3(self, hook: S3Hook | None = None) -> dict[str, int]:
        """Empty the three buckets (every version) and upload this provider's objects.

        Creates missing buckets; turns versioning on for the lawful-intercept bucket.

        :param hook: hook on the object store; default ``S3Hook(OBJECT_STORE)``
        :return: ``{"s3://<bucket>/<prefix>/": objects, ...}``, plus the number of
            noncurrent versions in the lawful-intercept bucket
        """
        from lethe_dev.synthetic import loaders

        if hook is None:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            from lethe.connections import OBJECT_STORE

            hook = S3Hook(aws_conn_id=OBJECT_STORE)
        return loaders.load_s3(self, hook)

    def seed_all(self, stores: Iterable[str] = ("postgres", "sftp", "s3")) -> dict[str, int]:
        """Seed the chosen stores through the default connections; return a count summary.

        :param stores: any of ``postgres``, ``sftp``, ``s3``
        :return: location to count, flat: ``telecom.<table>``, ``sftp:/recordings/...``,
            ``s3://<bucket>/<prefix>/`` (the union of the ``seed_*`` results)
        """
        wanted = list(dict.fromkeys(stores))
        unknown = set(wanted) - {"postgres", "sftp", "s3"}
        if unknown:
            raise ValueError(f"unknown stores: {', '.join(sorted(unknown))}")
        summary: dict[str, int] = {}
        seeders = {"postgres": self.seed_postgres, "sftp": self.seed_sftp, "s3": self.seed_s3}
        for store in ("postgres", "sftp", "s3"):
            if store in wanted:
                summary.update(seeders[store]())
        return summary


def telecom_admin_hook() -> PostgresHook:
    """A hook on the telecom database as the owner of its tables: the connection
    ``lethe_telecom_admin_db`` where it is defined (the embedded stack, compose's seeding),
    else ``lethe_telecom_db`` (a store login may not create or load tables)."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk import BaseHook

    from lethe.connections import TELECOM_ADMIN_DB, TELECOM_DB

    try:
        BaseHook.get_connection(TELECOM_ADMIN_DB)
    except AirflowNotFoundException:
        return PostgresHook(postgres_conn_id=TELECOM_DB)
    return PostgresHook(postgres_conn_id=TELECOM_ADMIN_DB)
