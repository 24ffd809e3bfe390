"""What the store adapter tests share: fixtures, and helpers their modules import from here.

Fixtures defined here serve every module of this folder: ``catalog``; for S3 ``client``
and ``calls`` (over the module's own ``hook``); for SFTP ``connects``. Each module keeps
what names its own corner of a store (a schema, a bucket prefix, a directory prefix) in its
own small fixture, built with the helpers below.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

# Imported when the tests are collected, not in the first test that makes a hook: its
# first import configures Airflow's logging, which replaces the root logger's handlers and
# so drops pytest's caplog handler in the middle of that test.
from airflow.providers.postgres.hooks.postgres import PostgresHook
from psycopg import sql

from lethe import connections
from lethe.domain.protection import Protection
from lethe.policy import load_catalog
from lethe.policy.models import PostgresStore
from lethe.stores.postgres import PostgresRetentionAdapter
from lethe.stores.s3 import S3RetentionAdapter
from lethe.stores.sftp import SFTPRetentionAdapter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from datetime import date
    from pathlib import Path

    from lethe.domain.counts import CollectResult, EraseResult
    from lethe.policy.vocabulary import Identity

# ================================================================================ every store

#: A subject's phone number, one a digit off it, and two other people's.
JAN = "+31612345678"
JAN_NEIGHBOUR = "+31612345679"  # one digit off
PIET = "+31687654321"
MARIE = "+31201111111"
#: A web visitor, and visitor ids that come near it.
VISITOR = "visitor-0001"
VISITOR_TWINS = ["visitor-0002", "visitor-00010", "VISITOR-0001", "isitor-0001", "visitor-000"]

AMS = ZoneInfo("Europe/Amsterdam")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def ams(*parts: int, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=AMS, fold=fold)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def frozen(subject: Mapping[Identity, set[str]]) -> dict[Identity, frozenset[str]]:
    return {identity: frozenset(values) for identity, values in subject.items()}


def erase(adapter, subject: Mapping[Identity, set[str]], protection=None) -> EraseResult:
    return adapter.erase(frozen(subject), protection or Protection())


def collect_into(sink, adapter, subject, protection=None, **kwargs) -> tuple[CollectResult, Any]:
    """Collect ``subject`` (identity -> plain set of values) into ``sink``: (result, sink)."""
    return adapter.collect(frozen(subject), protection or Protection(), sink, **kwargs), sink


class SinkFull(Exception):
    """The test sink refuses more rows (to prove the adapter streams)."""


class MemoryRowSink:
    """An export sink keeping rows per (category id, store location), checking the contract.

    A store's rows are opened once per collect, with distinct columns, and every row holds
    only those columns. Subclasses say in :attr:`no_files` why their store has no files.

    :param keep: store the rows (else only count them, for memory measurements).
    :param fail_after: raise :class:`SinkFull` when this many rows have been written.
    :param on_first_row: called when the first row arrives.
    """

    #: The assertion message when a collect asks for a file.
    no_files = "a collect of rows opens no file"

    def __init__(
        self,
        *,
        keep: bool = True,
        fail_after: int | None = None,
        on_first_row: Callable[[], None] | None = None,
    ) -> None:
        self.keep = keep
        self.fail_after = fail_after
        self.on_first_row = on_first_row
        self.tables: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.columns: dict[tuple[str, str], tuple[str, ...]] = {}
        self.written = 0

    @contextlib.contextmanager
    def rows(self, category: Any, store: Any, columns: Sequence[str]) -> Iterator[Any]:
        key = (category.id, store.location)
        assert key not in self.columns, "a store's rows are opened once per collect"
        assert len(set(columns)) == len(columns)
        self.columns[key] = tuple(columns)
        self.tables[key] = []
        sink = self

        class Writer:
            def write(self, row: Mapping[str, Any]) -> None:
                assert set(row) <= set(columns)
                if sink.fail_after is not None and sink.written >= sink.fail_after:
                    raise SinkFull
                if sink.written == 0 and sink.on_first_row is not None:
                    sink.on_first_row()
                sink.written += 1
                if sink.keep:
                    sink.tables[key].append(dict(row))

        yield Writer()

    @contextlib.contextmanager
    def file(self, category: Any, store: Any, name: str) -> Iterator[Any]:
        raise AssertionError(self.no_files)

    def only(self) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
        """The columns and rows of the one store collected."""
        assert len(self.tables) == 1
        key = next(iter(self.tables))
        return self.columns[key], self.tables[key]


# ================================================================================ PostgreSQL

#: The adapters here work on tables of each test's own schema, which the superuser creates:
#: they connect as the owner. What the store login (lethe_telecom_db) may do on the telecom
#: schema is tests/dags/test_store_login.py's.
CONN_ID = "lethe_telecom_admin_db"


class Db:
    """An autocommit connection to the test database, for building and reading the tables
    of one schema; in the SQL it runs, ``{s}`` stands for that schema (quoted)."""

    def __init__(self, dsn: str, schema: str) -> None:
        self.schema = schema
        self.conn = psycopg.connect(dsn, autocommit=True)

    def q(self, text: str) -> sql.Composed:
        """SQL of the tests, with ``{s}`` standing for the test schema (quoted)."""
        return sql.SQL(text).format(s=sql.Identifier(self.schema))

    def run(self, query: str | sql.Composable, params: Any = None) -> None:
        with self.conn.cursor() as cur:
            cur.execute(self.q(query) if isinstance(query, str) else query, params)

    def many(self, query: str, rows: list[tuple]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(self.q(query), rows)

    def one(self, query: str, params: Any = None) -> Any:
        with self.conn.cursor() as cur:
            cur.execute(self.q(query), params)
            return cur.fetchone()

    def rows(self, query: str) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(self.q(query))
            return cur.fetchall()

    def by_key(self, query: str) -> dict[Any, tuple]:
        """``SELECT key, ...`` as key -> the other columns."""
        return {row[0]: row[1:] for row in self.rows(query)}

    def ids(self, table: str, key: str) -> set[int]:
        with self.conn.cursor() as cur:
            cur.execute(
                sql.SQL("SELECT {} FROM {}").format(
                    sql.Identifier(key), sql.Identifier(self.schema, table)
                )
            )
            return {row[0] for row in cur.fetchall()}

    def exists(self, name: str) -> bool:
        with self.conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{self.schema}.{name}",))
            return cur.fetchone()[0]

    def plan(self, query: Any, params: Mapping[str, Any]) -> str:
        """EXPLAIN of ``query`` with sequential scans discouraged."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("SET LOCAL enable_seqscan = off")
            cur.execute(sql.SQL("EXPLAIN ") + query, params)
            return "\n".join(row[0] for row in cur.fetchall())


def fresh_schema(dsn: str, schema: str) -> Iterator[Db]:
    """For a module's ``db`` fixture: ``schema`` created anew, and dropped afterwards."""
    database = Db(dsn, schema)
    database.run(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    database.run(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    yield database
    database.run(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    database.conn.close()


def make_hook(conn_id: str = CONN_ID) -> PostgresHook:
    return PostgresHook(postgres_conn_id=conn_id)


def postgres_adapter(
    schema: str, catalog, category_id: str, table: str, index: int = 0, *, hook=None, **changes
) -> PostgresRetentionAdapter:
    """An adapter on a copy of the catalog's store, moved to the test schema."""
    category = catalog.category(category_id)
    store = category.stores[index].model_copy(update={"table": f"{schema}.{table}", **changes})
    return PostgresRetentionAdapter(hook=hook or make_hook(), store=store, category=category)


def postgres_store(
    schema: str, table: str, key_columns: list[str], age: dict, subject: list[dict], **extra
) -> PostgresStore:
    """A store of the test schema's ``table``, deleting on expiry unless ``extra`` says."""
    return PostgresStore.model_validate(
        {
            "kind": "postgres",
            "conn_id": CONN_ID,
            "table": f"{schema}.{table}",
            "key_columns": key_columns,
            "age": age,
            "subject": subject,
            "on_expiry": "delete",
            **extra,
        }
    )


def create_contact_persons(db: Db) -> None:
    """The contact persons table (row 1 of the reference schema), indexed on e-mail and phone."""
    db.run(
        """CREATE TABLE {s}.contact_persons (
            contact_id bigint PRIMARY KEY, customer_id bigint NOT NULL,
            full_name text NOT NULL, phone text, email text, created_at timestamptz NOT NULL)"""
    )
    db.run("CREATE INDEX ON {s}.contact_persons (email)")
    db.run("CREATE INDEX ON {s}.contact_persons (phone)")


def create_usage_records(db: Db) -> None:
    """Usage records as in telecom.sql, with month partitions for January and February 2024."""
    db.run(
        """CREATE TABLE {s}.usage_records (
            record_id bigint NOT NULL, customer_id bigint NOT NULL, contract_id bigint NOT NULL,
            service text NOT NULL, caller_number text NOT NULL, callee_number text NOT NULL,
            started_at timestamptz NOT NULL, duration_seconds integer NOT NULL,
            cell_id text, charge_cents integer NOT NULL DEFAULT 0,
            PRIMARY KEY (record_id, started_at)) PARTITION BY RANGE (started_at)"""
    )
    for month, upper in (("202401", "2024-02-01"), ("202402", "2024-03-01")):
        db.run(
            sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(db.schema, f"usage_records_p{month}"),
                sql.Identifier(db.schema, "usage_records"),
                sql.Literal(f"{month[:4]}-{month[4:]}-01 00:00+00"),
                sql.Literal(f"{upper} 00:00+00"),
            )
        )


class CursorProxy:
    """A cursor passed through to the real one; subclasses watch or bend what they override."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor

    def __enter__(self) -> CursorProxy:
        self.cursor.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self.cursor.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cursor, name)


# ================================================================================ S3


def s3_hook():
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=connections.OBJECT_STORE)


@pytest.fixture
def client(hook):
    """The boto3 client of the module's S3 ``hook``."""
    return hook.get_conn()


@pytest.fixture
def calls(client):
    """The S3 API calls the client makes from now on: (operation, parameters)."""
    made: list[tuple[str, dict]] = []

    def record(event_name, params, **_):
        made.append((event_name.rsplit(".", 1)[-1], dict(params)))

    client.meta.events.register("provide-client-params.s3.*", record)
    yield made
    client.meta.events.unregister("provide-client-params.s3.*", record)


def new_bucket(client, prefix: str) -> str:
    """A new bucket named ``<prefix>-<random>``."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return name


def put_object(client, bucket: str, key: str, body: bytes | str = b"x", **extra) -> str | None:
    """Put an object (text as UTF-8); :return: its version id, if versioned."""
    data = body.encode() if isinstance(body, str) else body
    return client.put_object(Bucket=bucket, Key=key, Body=data, **extra).get("VersionId")


def object_keys(client, bucket: str) -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {obj["Key"] for page in pages for obj in page.get("Contents", ())}


def s3_adapter(hook, catalog, category_id: str, bucket: str, **changes) -> S3RetentionAdapter:
    """An adapter on a copy of the category's S3 store, moved to ``bucket``."""
    category = catalog.category(category_id)
    store = next(s for s in category.stores if s.kind == "s3")
    store = store.model_copy(update={"bucket": bucket, **changes})
    return S3RetentionAdapter(hook=hook, store=store, category=category)


def web_adapter(hook, catalog, bucket: str, **changes) -> S3RetentionAdapter:
    """An adapter on the web analytics exports, moved to ``bucket``."""
    return s3_adapter(hook, catalog, "web_statistics", bucket, **changes)


def export_key(day: date) -> str:
    """The key of a day's web analytics export."""
    return f"exports/{day:%Y/%m/%d}/visits-{day:%Y%m%d}.csv"


# ================================================================================ SFTP


def sftp_hook():
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    return SFTPHook(ssh_conn_id=connections.RECORDINGS_SFTP, conn_retry_attempts=1)


@pytest.fixture
def connects(monkeypatch):
    """Counts new SSH connections the SFTP hook opens."""
    from airflow.providers.ssh.hooks.ssh import SSHHook

    opened: list[int] = []
    original = SSHHook.get_conn

    def counting(self):
        opened.append(1)
        return original(self)

    monkeypatch.setattr(SSHHook, "get_conn", counting)
    return opened


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2024, 3, day, hour, 15, 30, tzinfo=UTC)


def support_name(moment: datetime, caller: str, call_id: str) -> str:
    """Where a support call's recording lies: by day, its time and caller in its name."""
    return f"{moment:%Y/%m/%d}/{stamp(moment)}_{caller}_{call_id}.wav"


class Tree:
    """A fresh directory under the served root, written on local disk.

    :param prefix: the directory is named ``<prefix>-<random>``.
    :param body: what a file holds unless told otherwise; by default ``RIFF <path> WAVE``.
    """

    def __init__(self, served: Path, prefix: str, *, body: bytes | None = None) -> None:
        self.name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.local = served / self.name
        self.local.mkdir()
        self.remote = f"/{self.name}"
        self.body = body
        self.content: dict[str, bytes] = {}

    def file(
        self, relative: str, body: bytes | None = None, *, mtime: datetime | None = None
    ) -> str:
        path = self.local / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if body is None:
            body = self.body if self.body is not None else f"RIFF {relative} WAVE".encode()
        path.write_bytes(body)
        if mtime is not None:
            os.utime(path, (mtime.timestamp(), mtime.timestamp()))
        self.content[relative] = body
        return relative

    def recording(self, customer: str, moment: datetime, caller: str, callee: str) -> str:
        return self.file(f"{customer}/{moment:%Y/%m/%d}/{stamp(moment)}_{caller}_{callee}.wav")

    def support(self, moment: datetime, caller: str, call_id: str) -> str:
        return self.file(support_name(moment, caller, call_id))

    def dir(self, relative: str) -> None:
        (self.local / relative).mkdir(parents=True, exist_ok=True)

    def files(self) -> set[str]:
        return {p.relative_to(self.local).as_posix() for p in self.local.rglob("*") if p.is_file()}

    def dirs(self) -> set[str]:
        return {p.relative_to(self.local).as_posix() for p in self.local.rglob("*") if p.is_dir()}


def customer_recordings(tree: Tree) -> dict[str, str]:
    """Recordings of four customers (1001, 2002, 10010, 100); JAN calls and is called across
    two of them, and once calls JAN (both groups). By name, relative to the tree."""
    return {
        "jan_calls": tree.recording("1001", at(1), JAN, PIET),
        "jan_called": tree.recording("2002", at(2), MARIE, JAN),
        "jan_to_jan": tree.recording("1001", at(3), JAN, JAN),
        "neighbour": tree.recording("1001", at(4), JAN_NEIGHBOUR, PIET),
        "marie": tree.recording("1001", at(5), MARIE, PIET),
        "prefix_customer": tree.recording("10010", at(6), PIET, MARIE),
        "other": tree.recording("100", at(7), PIET, "+31600000000"),
        # Not the pattern: never listed or touched, whatever its name holds.
        "notes": tree.file(f"1001/2024/03/01/{JAN}.txt"),
    }


def sftp_adapter(hook, catalog, category_id: str, root: str, **changes) -> SFTPRetentionAdapter:
    """An adapter on a copy of the category's first store, moved to ``root``."""
    category = catalog.category(category_id)
    store = category.stores[0].model_copy(update={"root": root, **changes})
    return SFTPRetentionAdapter(hook=hook, store=store, category=category)
