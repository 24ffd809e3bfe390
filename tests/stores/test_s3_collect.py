"""S3RetentionAdapter.collect against the embedded S3 server (moto): one subject's rows.

Each test creates its own bucket, writes CSV or JSON-lines objects holding rows of several
visitors, points a copy of the catalog's store (or a store of its own) at the bucket and
collects into an in-memory export sink, then checks row by row what reached the sink: the
subject's rows, each with the date of its object, and nothing of anyone else.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from lethe import connections
from lethe.domain.counts import CollectResult
from lethe.domain.protection import Protection
from lethe.exceptions import StoreError
from lethe.policy import Identity, S3Store
from lethe.stores.s3 import S3RetentionAdapter
from lethe.stores.s3.collect import S3Collect
from tests.stores.conftest import (
    VISITOR,
    VISITOR_TWINS,
    MemoryRowSink,
    SinkFull,
    collect_into,
    export_key,
    new_bucket,
    put_object,
    s3_hook,
    web_adapter,
)

WEB_COLUMNS = ("source_date", "visited_at", "page", "visitor_id")


# ================================================================================ the sink


class MemorySink(MemoryRowSink):
    """The test sink of an S3 store's rows."""

    no_files = "objects are collected as rows, never as files"


# ================================================================================ fixtures


@pytest.fixture
def hook(stack):
    return s3_hook()


@pytest.fixture
def bucket(client):
    return new_bucket(client, "lethe-collect")


def _visits(day: date, *rows: tuple[str, str], header: str = "visited_at,page,visitor_id") -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header.split(","))
    for i, (page, visitor) in enumerate(rows):
        writer.writerow([f"{day.isoformat()}T{10 + i:02d}:00:00Z", page, visitor])
    return out.getvalue()


def collect(adapter, subject, protection=None, sink=None) -> tuple[CollectResult, MemorySink]:
    return collect_into(sink or MemorySink(), adapter, subject, protection)


@pytest.fixture
def exports(client, bucket):
    """Three days of web analytics exports; the subject visits on two of them."""
    days = [date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)]
    put_object(
        client,
        bucket,
        export_key(days[0]),
        _visits(
            days[0], ("/", VISITOR_TWINS[0]), ("/tarieven", VISITOR), ("/contact", VISITOR_TWINS[1])
        ),
    )
    put_object(
        client, bucket, export_key(days[1]), _visits(days[1], *[("/", o) for o in VISITOR_TWINS])
    )
    put_object(
        client,
        bucket,
        export_key(days[2]),
        _visits(days[2], ("/a", VISITOR), ("/b", VISITOR_TWINS[2]), ("/c,d", VISITOR)),
    )
    # Outside the layout: never read, whatever it holds.
    put_object(client, bucket, "exports/2024/03/01/extra.csv", _visits(days[0], ("/x", VISITOR)))
    put_object(client, bucket, "exports/readme.txt", VISITOR)
    put_object(client, bucket, export_key(date(2024, 3, 4)), b"")  # an empty export
    return days


# ================================================================================ completeness


def test_a_visitor_gets_exactly_their_rows_with_the_objects_date(hook, catalog, bucket, exports):
    adapter = web_adapter(hook, catalog, bucket)
    result, sink = collect(adapter, {Identity.VISITOR_ID: {VISITOR}})

    columns, rows = sink.only()
    assert columns == WEB_COLUMNS
    assert rows == [
        {
            "source_date": date(2024, 3, 1),
            "visited_at": "2024-03-01T11:00:00Z",
            "page": "/tarieven",
            "visitor_id": VISITOR,
        },
        {
            "source_date": date(2024, 3, 3),
            "visited_at": "2024-03-03T10:00:00Z",
            "page": "/a",
            "visitor_id": VISITOR,
        },
        {
            "source_date": date(2024, 3, 3),
            "visited_at": "2024-03-03T12:00:00Z",
            "page": "/c,d",
            "visitor_id": VISITOR,
        },
    ]
    assert result == CollectResult(rows=3)
    assert sink.tables.keys() == {("web_statistics", f"{bucket}/exports/")}


@pytest.mark.parametrize("other", VISITOR_TWINS)
def test_near_miss_visitors_get_only_their_own_rows(hook, catalog, bucket, exports, other):
    adapter = web_adapter(hook, catalog, bucket)
    _, sink = collect(adapter, {Identity.VISITOR_ID: {other}})
    _, rows = sink.only()
    assert rows
    assert {row["visitor_id"] for row in rows} == {other}


@pytest.mark.parametrize(
    "value", ["%", "_", "*", ".*", "' OR 1=1 --", "../", f"{VISITOR}\x00", "visitor-", ""]
)
def test_metacharacters_match_nothing(hook, catalog, bucket, exports, value):
    adapter = web_adapter(hook, catalog, bucket)
    result, sink = collect(adapter, {Identity.VISITOR_ID: {value}})
    assert result == CollectResult()
    assert sink.tables == {}


def test_a_store_without_subject_fields_is_never_listed(catalog, calls, hook):
    category = catalog.category("lawful_intercept_traffic")
    adapter = S3RetentionAdapter(hook=hook, store=category.stores[0], category=category)
    subject = {i: frozenset({"x@y.nl"}) for i in (Identity.EMAIL, Identity.PHONE, Identity.IP)}
    assert adapter.collect(subject, Protection(), MemorySink()) == CollectResult()
    web = catalog.category("web_statistics")
    exports = S3RetentionAdapter(hook=hook, store=web.stores[2], category=web)
    assert exports.collect({Identity.EMAIL: frozenset({"x@y.nl"})}, Protection(), MemorySink()) == (
        CollectResult()
    )
    assert calls == []


def test_a_source_date_column_in_the_objects_gets_another_name(hook, catalog, client, bucket):
    day = date(2024, 5, 6)
    put_object(
        client,
        bucket,
        export_key(day),
        _visits(day, ("/", VISITOR), header="visited_at,source_date,visitor_id"),
    )
    _, sink = collect(web_adapter(hook, catalog, bucket), {Identity.VISITOR_ID: {VISITOR}})
    columns, rows = sink.only()
    assert columns == ("_source_date", "visited_at", "source_date", "visitor_id")
    assert rows[0]["_source_date"] == day
    assert rows[0]["source_date"] == "/"


# ================================================================================ JSON lines


def _events_adapter(hook, catalog, bucket: str) -> S3RetentionAdapter:
    store = S3Store(
        kind="s3",
        conn_id=connections.OBJECT_STORE,
        bucket=bucket,
        prefix="events/",
        key_layout="events/{yyyy}/{mm}/{dd}/{hh}.jsonl",
        time_from="key",
        object_format="jsonl",
        subject=[
            {"field": "visitor_id", "identity": "visitor_id"},
            {"field": "ip", "identity": "ip"},
            {"field": "customer", "identity": "customer_id"},
        ],
    )
    return S3RetentionAdapter(hook=hook, store=store, category=catalog.category("web_statistics"))


def _jsonl(*rows: dict[str, Any]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


@pytest.fixture
def events(client, bucket):
    put_object(
        client,
        bucket,
        "events/2024/03/01/09.jsonl",
        _jsonl(
            {"visitor_id": VISITOR, "page": "/", "ip": "192.0.2.1"},
            {"visitor_id": VISITOR_TWINS[0], "page": "/", "ip": "192.0.2.10", "secret": "x"},
            {"page": "/login", "ip": "192.0.2.1", "customer": 42, "tags": ["a", "b"]},
        )
        + "\n",  # a blank line is no row
    )
    put_object(
        client,
        bucket,
        "events/2024/03/01/10.jsonl",
        _jsonl(
            {"customer": 420, "page": "/x", "visitor_id": VISITOR_TWINS[1]},
            {"customer": 42, "page": "/y", "meta": {"k": [1, 2]}, "visitor_id": VISITOR_TWINS[2]},
            {"visitor_id": VISITOR, "ip": None, "page": "/z", "nested": [{"a": 1}]},
        ),
    )


def test_jsonl_columns_in_order_of_first_appearance(hook, catalog, bucket, events):
    adapter = _events_adapter(hook, catalog, bucket)
    result, sink = collect(
        adapter, {Identity.VISITOR_ID: {VISITOR}, Identity.CUSTOMER_ID: {"42"}, Identity.IP: {"x"}}
    )
    columns, rows = sink.only()
    # Only the keys of the rows written: "secret" belongs to another visitor's row.
    assert columns == (
        "source_date",
        "visitor_id",
        "page",
        "ip",
        "customer",
        "tags",
        "meta",
        "nested",
    )
    nine, ten = datetime(2024, 3, 1, 9, tzinfo=UTC), datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert rows == [
        {"source_date": nine, "visitor_id": VISITOR, "page": "/", "ip": "192.0.2.1"},
        {
            "source_date": nine,
            "page": "/login",
            "ip": "192.0.2.1",
            "customer": 42,
            "tags": ["a", "b"],
        },
        {
            "source_date": ten,
            "customer": 42,
            "page": "/y",
            "meta": '{"k": [1, 2]}',
            "visitor_id": VISITOR_TWINS[2],
        },
        {
            "source_date": ten,
            "visitor_id": VISITOR,
            "ip": None,
            "page": "/z",
            "nested": '[{"a": 1}]',
        },
    ]
    assert result == CollectResult(rows=4)


def test_held_rows_are_withheld_and_counted_restricted_included(hook, catalog, bucket, events):
    adapter = _events_adapter(hook, catalog, bucket)
    protection = Protection(
        # The IP hold reaches the visitor's first row through a field the subject did not
        # ask about.
        held={Identity.IP: frozenset({"192.0.2.1"}), Identity.EMAIL: frozenset({"a@b.nl"})},
        restricted={Identity.VISITOR_ID: frozenset({VISITOR})},
    )
    result, sink = collect(adapter, {Identity.VISITOR_ID: {VISITOR}}, protection)
    _, rows = sink.only()
    assert [row["page"] for row in rows] == ["/z"]
    assert result == CollectResult(rows=1, withheld=1)

    result, sink = collect(
        adapter, {Identity.VISITOR_ID: {VISITOR}}, Protection(category_held=True)
    )
    assert result == CollectResult(withheld=2)
    assert sink.tables == {}


def test_all_rows_held_leaves_the_sink_as_for_no_rows(hook, catalog, bucket, exports):
    adapter = web_adapter(hook, catalog, bucket)
    held = Protection(held={Identity.VISITOR_ID: frozenset({VISITOR})})
    result, sink = collect(adapter, {Identity.VISITOR_ID: {VISITOR}}, held)
    assert result == CollectResult(withheld=3)
    assert sink.tables == {}


# ================================================================================ streaming


@pytest.fixture
def consumed(monkeypatch) -> list[int]:
    """Bytes read so far from each object body the client opens, in the order opened."""
    from botocore.response import StreamingBody

    bodies: list[int] = []
    index: dict[int, int] = {}
    original = StreamingBody.read

    def read(self, amt=None):
        data = original(self, amt)
        if id(self) not in index:
            index[id(self)] = len(bodies)
            bodies.append(0)
        bodies[index[id(self)]] += len(data)
        return data

    monkeypatch.setattr(StreamingBody, "read", read)
    return bodies


def test_objects_are_streamed_line_by_line(hook, catalog, client, bucket, consumed):
    day = date(2024, 6, 1)
    lines = ["visited_at,page,visitor_id"]
    offsets = []  # where each of the subject's rows ends in the object
    size = len(lines[0]) + 1
    for i in range(60_000):
        visitor = VISITOR if i % 10_000 == 0 else f"visitor-{i:08d}"
        lines.append(f"2024-06-01T10:00:00Z,/{'x' * 80}/{i},{visitor}")
        size += len(lines[-1]) + 1
        if visitor == VISITOR:
            offsets.append(size)
    body = ("\n".join(lines) + "\n").encode()
    assert size == len(body) > 7_000_000
    put_object(client, bucket, export_key(day), body)
    read_at_write: list[int] = []

    class Watching(MemorySink):
        @contextlib.contextmanager
        def rows(self, category, store, columns):
            with super().rows(category, store, columns) as writer:

                class Writer:
                    def write(self, row):
                        read_at_write.append(consumed[-1])
                        writer.write(row)

                yield Writer()

    adapter = web_adapter(hook, catalog, bucket)
    subject = {Identity.VISITOR_ID: frozenset({VISITOR})}
    result, _ = collect(adapter, subject, sink=Watching())
    assert result == CollectResult(rows=6)
    assert consumed == [len(body), len(body)]  # two passes, each reading the whole object
    # Each row reached the sink when little more than the object up to it had been read:
    # at most the chunk holding it and the one after.
    for offset, read in zip(offsets, read_at_write, strict=True):
        assert offset <= read <= offset + 2 * 64 * 1024

    # A sink that fails at the first row stops the reading there.
    consumed.clear()
    with pytest.raises(SinkFull):
        collect(adapter, subject, sink=MemorySink(fail_after=0))
    assert consumed[0] == len(body)
    assert consumed[1] <= 2 * 64 * 1024


def test_errors_of_the_sink_pass_unchanged(hook, catalog, bucket, exports):
    adapter = web_adapter(hook, catalog, bucket)
    with pytest.raises(SinkFull):
        collect(adapter, {Identity.VISITOR_ID: {VISITOR}}, sink=MemorySink(fail_after=1))


# ================================================================================ errors


def test_an_object_changed_between_the_passes_fails_the_collect(
    hook, catalog, client, bucket, exports, monkeypatch
):
    adapter = web_adapter(hook, catalog, bucket)
    count = S3Collect._count_subject_rows

    def count_then_change(self, key, *args):
        found = count(self, key, *args)
        if key == export_key(exports[2]):
            put_object(client, bucket, key, _visits(exports[2], ("/new", VISITOR)))
        return found

    monkeypatch.setattr(S3Collect, "_count_subject_rows", count_then_change)
    with pytest.raises(StoreError, match="changed or vanished") as raised:
        collect(adapter, {Identity.VISITOR_ID: {VISITOR}})
    assert bucket in str(raised.value)
    assert "2024" not in str(raised.value)  # no key


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"visited_at,page,visitor_id\r\n2024,/,\xff\xfe\r\n", "UnicodeDecodeError"),
        (b"visited_at,page,visitor\r\n2024,/,visitor-0001\r\n", "ValueError"),
        (b"visited_at,page,visitor_id\r\n2024,/,visitor-0001,extra\r\n", "more fields"),
    ],
    ids=["not-utf8", "no-subject-column", "extra-field"],
)
def test_unreadable_objects_fail_the_collect_naming_no_key(
    hook, catalog, client, bucket, body, reason
):
    put_object(client, bucket, export_key(date(2024, 7, 1)), body)
    adapter = web_adapter(hook, catalog, bucket)
    with pytest.raises(StoreError, match=reason) as raised:
        collect(adapter, {Identity.VISITOR_ID: {VISITOR}})
    message = str(raised.value)
    assert connections.OBJECT_STORE in message
    assert bucket in message
    assert "2024" not in message
    assert VISITOR not in message


def test_a_missing_bucket_raises_store_error(hook, catalog):
    adapter = web_adapter(hook, catalog, f"lethe-absent-{uuid.uuid4().hex[:8]}")
    with pytest.raises(StoreError, match="NoSuchBucket"):
        collect(adapter, {Identity.VISITOR_ID: {VISITOR}})
