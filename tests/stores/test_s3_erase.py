"""S3RetentionAdapter.erase against the embedded S3 server (moto): one subject's rows.

Each test creates its own bucket (versioned where the test says so), writes CSV or
JSON-lines objects holding rows of several visitors, points a copy of the catalog's store
(or a store of its own) at the bucket and erases one visitor, then reads every object and
every version back: none holds a row of the subject (held ones excepted), every other row
is still there byte for byte, and objects without the subject were not written at all.
"""

from __future__ import annotations

import pytest

from lethe import connections
from lethe.domain.counts import EraseResult
from lethe.domain.protection import Protection
from lethe.exceptions import PurgeError
from lethe.policy import Identity, S3Store
from lethe.stores.s3 import S3RetentionAdapter
from lethe.stores.s3.erasure import S3Erasure
from tests.stores.conftest import (
    VISITOR,
    VISITOR_TWINS,
    erase,
    new_bucket,
    object_keys,
    put_object,
    s3_hook,
    web_adapter,
)

HEADER = b"visited_at,page,visitor_id\r\n"


# ================================================================================ fixtures


@pytest.fixture
def hook(stack):
    return s3_hook()


@pytest.fixture
def bucket(client):
    return new_bucket(client, "lethe-erase")


@pytest.fixture
def versioned(client):
    name = new_bucket(client, "lethe-erase-v")
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def _key(day: int) -> str:
    return f"exports/2024/03/{day:02d}/visits-202403{day:02d}.csv"


def _row(day: int, hour: int, visitor: str, page: str = "/tarieven") -> bytes:
    return f"2024-03-{day:02d}T{hour:02d}:00:00Z,{page},{visitor}\r\n".encode()


def _get(client, bucket: str, key: str, version_id: str | None = None) -> bytes:
    params = {"Bucket": bucket, "Key": key}
    if version_id:
        params["VersionId"] = version_id
    return client.get_object(**params)["Body"].read()


def _versions(client, bucket: str) -> dict[str, list[dict]]:
    """Versions and delete markers (``"marker": True``), by key."""
    found: dict[str, list[dict]] = {}
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for entry in page.get("Versions", []):
            found.setdefault(entry["Key"], []).append({**entry, "marker": False})
        for entry in page.get("DeleteMarkers", []):
            found.setdefault(entry["Key"], []).append({**entry, "marker": True})
    return found


# ================================================================================ exactness


def test_a_shared_export_is_rewritten_without_the_subject(hook, catalog, client, bucket, calls):
    others = [_row(1, 8 + i, twin) for i, twin in enumerate(VISITOR_TWINS)]
    mine = [_row(1, 20, VISITOR), _row(1, 21, VISITOR, "/contact")]
    shared = HEADER + others[0] + mine[0] + b"".join(others[1:]) + mine[1]
    only_mine = HEADER + _row(2, 9, VISITOR) + _row(2, 10, VISITOR)
    not_mine = HEADER + b"".join(_row(3, 9 + i, twin) for i, twin in enumerate(VISITOR_TWINS))
    outside = "exports/2024/03/01/other.csv"  # not the layout: never touched
    put_object(client, bucket, _key(1), shared, ContentType="text/csv", Metadata={"rows": "7"})
    put_object(client, bucket, _key(2), only_mine)
    untouched_etag = client.put_object(Bucket=bucket, Key=_key(3), Body=not_mine)["ETag"]
    put_object(client, bucket, outside, only_mine)
    adapter = web_adapter(hook, catalog, bucket)
    calls.clear()

    result = erase(adapter, {Identity.VISITOR_ID: {VISITOR}})
    assert result == EraseResult(removed=1 + 2, rewritten=1)  # 1 object, 2 rows
    assert object_keys(client, bucket) == {_key(1), _key(3), outside}
    # The same header and every other row, byte for byte, in their order.
    assert _get(client, bucket, _key(1)) == HEADER + b"".join(others)
    head = client.head_object(Bucket=bucket, Key=_key(1))
    assert (head["ContentType"], head["Metadata"]) == ("text/csv", {"rows": "7"})
    assert client.head_object(Bucket=bucket, Key=_key(3))["ETag"] == untouched_etag
    assert _get(client, bucket, outside) == only_mine
    puts = [p for op, p in calls if op == "PutObject"]
    assert [p["Key"] for p in puts] == [_key(1)]
    assert puts[0]["IfMatch"]  # conditional on what was read

    calls.clear()
    assert erase(adapter, {Identity.VISITOR_ID: {VISITOR}}) == EraseResult()
    assert not [op for op, _ in calls if op in ("PutObject", "DeleteObjects")]


def test_every_other_byte_survives_a_rewrite(hook, catalog, client, bucket):
    """A byte-order mark, a quoted field spanning lines, blank lines, LF and CRLF endings
    and a last line without an ending all stay exactly as they were."""
    header = b"\xef\xbb\xbfvisited_at,page,visitor_id\n"
    quoted = b'2024-03-01T08:00:00Z,"/zoek?q=""a,b""\r\nline two",visitor-0002\r\n'
    mine = b"2024-03-01T09:00:00Z,/tarieven,visitor-0001\n"
    quoted_mine = b'2024-03-01T09:30:00Z,"/x\nspanning",visitor-0001\r\n'
    blank = b"\r\n"
    last = "2024-03-01T10:00:00Z,/caf\u00e9,visitor-0003".encode()
    body = header + quoted + mine + blank + quoted_mine + last
    put_object(client, bucket, _key(1), body)
    adapter = web_adapter(hook, catalog, bucket)

    assert erase(adapter, {Identity.VISITOR_ID: {VISITOR}}) == EraseResult(removed=2, rewritten=1)
    assert _get(client, bucket, _key(1)) == header + quoted + blank + last


def test_jsonl_objects_keep_other_lines_exactly(hook, catalog, client, bucket):
    store = S3Store.model_validate(
        {
            "kind": "s3",
            "conn_id": connections.OBJECT_STORE,
            "bucket": bucket,
            "prefix": "events/",
            "key_layout": "events/{yyyy}/{mm}/{dd}.jsonl",
            "time_from": "key",
            "object_format": "jsonl",
            "subject": [
                {"field": "visitor", "identity": "visitor_id"},
                {"field": "customer", "identity": "customer_id"},
            ],
        }
    )
    lines = [
        b'{"visitor": "visitor-0001", "page": "/a"}\n',
        b'{"visitor":"visitor-0002","page":"/b","nested":{"visitor":"visitor-0001"}}\n',
        b'{"visitor": "visitor-0003", "customer": 42}\n',  # a number, matched as its JSON
        b"\n",
        b'{"page": "/c", "customer": 43}',
    ]
    put_object(client, bucket, "events/2024/03/01.jsonl", b"".join(lines))
    category = catalog.category("web_statistics")
    adapter = S3RetentionAdapter(hook=hook, store=store, category=category)

    result = erase(adapter, {Identity.VISITOR_ID: {VISITOR}, Identity.CUSTOMER_ID: {"42"}})
    assert result == EraseResult(removed=2, rewritten=1)
    assert _get(client, bucket, "events/2024/03/01.jsonl") == lines[1] + lines[3] + lines[4]


def test_empty_objects_hold_no_rows(hook, catalog, client, bucket):
    put_object(client, bucket, _key(1), b"")
    put_object(client, bucket, _key(2), HEADER)
    adapter = web_adapter(hook, catalog, bucket)
    assert erase(adapter, {Identity.VISITOR_ID: {VISITOR}}) == EraseResult()
    assert object_keys(client, bucket) == {_key(1), _key(2)}


def test_stores_without_subject_fields_make_no_call(catalog):
    class NoIO:
        def get_conn(self):
            raise AssertionError("no S3 call for a store without subject fields")

    category = catalog.category("lawful_intercept_traffic")
    adapter = S3RetentionAdapter(hook=NoIO(), store=category.stores[0], category=category)
    subject = {Identity.VISITOR_ID: {VISITOR}, Identity.PHONE: {"+31612345678"}}
    assert erase(adapter, subject) == EraseResult()
    web = catalog.category("web_statistics")
    store = next(s for s in web.stores if s.kind == "s3")
    adapter = S3RetentionAdapter(hook=NoIO(), store=store, category=web)
    assert erase(adapter, {Identity.PHONE: {"+31612345678"}}) == EraseResult()


# ================================================================================ versions


def test_a_versioned_bucket_keeps_no_version_with_the_subject(hook, catalog, client, versioned):
    other = _row(1, 8, "visitor-0002")
    # A shared export written twice: both versions hold the subject.
    put_object(client, versioned, _key(1), HEADER + other + _row(1, 9, VISITOR))
    put_object(
        client, versioned, _key(1), HEADER + other + _row(1, 9, VISITOR) + _row(1, 10, "v-3")
    )
    # The subject's own export, twice.
    put_object(client, versioned, _key(2), HEADER + _row(2, 9, VISITOR))
    put_object(client, versioned, _key(2), HEADER + _row(2, 9, VISITOR) + _row(2, 10, VISITOR))
    # The subject only in an older version; and in a deleted object's history.
    put_object(client, versioned, _key(3), HEADER + _row(3, 9, VISITOR) + other)
    kept = put_object(client, versioned, _key(3), HEADER + other)
    put_object(client, versioned, _key(4), HEADER + _row(4, 9, VISITOR))
    client.delete_object(Bucket=versioned, Key=_key(4))
    # Nothing of the subject: not written, not deleted.
    untouched = put_object(client, versioned, _key(5), HEADER + other)
    adapter = web_adapter(hook, catalog, versioned, versioned=True)

    result = erase(adapter, {Identity.VISITOR_ID: {VISITOR}})
    # Rewritten: key 1 (1 row). Deleted: key 2 whole, key 3's and key 4's old versions.
    assert result == EraseResult(removed=1 + 1 + 1 + 1, rewritten=1)

    versions = _versions(client, versioned)
    assert len(versions[_key(1)]) == 1  # the rewritten object, no history
    assert _get(client, versioned, _key(1)) == HEADER + other + _row(1, 10, "v-3")
    assert _key(2) not in versions  # every version and marker
    assert [v["VersionId"] for v in versions[_key(3)]] == [kept]
    assert all(v["marker"] for v in versions.get(_key(4), []))
    assert [v["VersionId"] for v in versions[_key(5)]] == [untouched]
    for key, entries in versions.items():
        for entry in entries:
            if not entry["marker"]:
                assert VISITOR.encode() not in _get(client, versioned, key, entry["VersionId"])

    assert erase(adapter, {Identity.VISITOR_ID: {VISITOR}}) == EraseResult()


# ================================================================================ holds


def test_an_object_holding_a_held_value_stays_whole(hook, catalog, client, versioned):
    shared = HEADER + _row(1, 8, "visitor-held") + _row(1, 9, VISITOR) + _row(1, 10, VISITOR)
    put_object(client, versioned, _key(1), shared)
    put_object(
        client, versioned, _key(2), HEADER + _row(2, 9, VISITOR) + _row(2, 10, "visitor-0002")
    )
    put_object(client, versioned, _key(3), HEADER + _row(3, 9, VISITOR))
    adapter = web_adapter(hook, catalog, versioned, versioned=True)
    protection = Protection(held={Identity.VISITOR_ID: frozenset({"visitor-held"})})

    result = erase(adapter, {Identity.VISITOR_ID: {VISITOR}}, protection)
    assert result == EraseResult(removed=1 + 1, rewritten=1, withheld=2)
    assert _get(client, versioned, _key(1)) == shared
    assert _key(3) not in _versions(client, versioned)
    assert erase(adapter, {Identity.VISITOR_ID: {VISITOR}}, protection) == EraseResult(withheld=2)

    # A hold on the subject itself, or on the whole category, keeps the subject's rows.
    mine = Protection(held={Identity.VISITOR_ID: frozenset({VISITOR})})
    assert erase(adapter, {Identity.VISITOR_ID: {VISITOR}}, mine) == EraseResult(withheld=2)
    everything = Protection(category_held=True)
    put_object(client, versioned, _key(4), HEADER + _row(4, 9, VISITOR))
    result = erase(adapter, {Identity.VISITOR_ID: {VISITOR}}, everything)
    assert result == EraseResult(withheld=3)
    assert _get(client, versioned, _key(1)) == shared


# ================================================================================ failures


def test_per_key_failures_are_counted_and_the_rest_erased(hook, catalog, client, bucket):
    put_object(
        client, bucket, _key(1), b"visited_at,page\r\n2024-03-01T09:00:00Z,/a\r\n"
    )  # no column
    put_object(client, bucket, _key(2), HEADER + _row(2, 9, VISITOR))
    put_object(client, bucket, _key(3), HEADER + _row(3, 9, VISITOR) + _row(3, 10, "visitor-0002"))
    put_object(client, bucket, _key(4), b"\xff\xfe not utf-8")
    adapter = web_adapter(hook, catalog, bucket)

    with pytest.raises(PurgeError) as raised:
        erase(adapter, {Identity.VISITOR_ID: {VISITOR}})
    assert (raised.value.removed, raised.value.failed) == (1 + 1, 2)
    message = str(raised.value)
    assert "Unreadable" in message
    assert "exports/" not in message.replace(f"{bucket}/exports/", "")  # no key
    assert VISITOR not in message
    assert object_keys(client, bucket) == {_key(1), _key(3), _key(4)}
    assert VISITOR.encode() not in _get(client, bucket, _key(3))


def test_an_object_changed_meanwhile_is_not_overwritten(hook, catalog, client, bucket, monkeypatch):
    put_object(client, bucket, _key(1), HEADER + _row(1, 9, VISITOR) + _row(1, 10, "visitor-0002"))
    adapter = web_adapter(hook, catalog, bucket)
    newer = HEADER + _row(1, 9, VISITOR) + _row(1, 10, "visitor-0002") + _row(1, 11, "v-new")
    real = S3Erasure._rewrite

    def racing(self, key, census, wanted, **kwargs):
        put_object(client, bucket, key, newer)  # another writer, between the count and the write
        return real(self, key, census, wanted, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(S3Erasure, "_rewrite", racing)
        with pytest.raises(PurgeError, match="Changed") as raised:
            erase(adapter, {Identity.VISITOR_ID: {VISITOR}})
    assert (raised.value.removed, raised.value.failed) == (0, 1)
    assert _get(client, bucket, _key(1)) == newer  # the other writer's object stands
    assert erase(adapter, {Identity.VISITOR_ID: {VISITOR}}) == EraseResult(removed=1, rewritten=1)


def test_email_fields_match_in_any_case_and_so_do_holds(hook, catalog, client, bucket):
    store = S3Store.model_validate(
        {
            "kind": "s3",
            "conn_id": connections.OBJECT_STORE,
            "bucket": bucket,
            "prefix": "mail/",
            "key_layout": "mail/{yyyy}/{mm}/{dd}.jsonl",
            "time_from": "key",
            "object_format": "jsonl",
            "subject": [{"field": "from", "identity": "email"}],
        }
    )
    lines = [
        b'{"from": "JAN@X.NL", "bytes": 1}\n',  # the subject, typed in capitals
        b'{"from": "jan@x.n1", "bytes": 2}\n',  # a near twin
        b'{"from": "jan@x.nl", "bytes": 3}\n',
        b'{"from": "Marie@X.nl", "bytes": 4}\n',
    ]
    put_object(client, bucket, "mail/2024/03/01.jsonl", b"".join(lines))
    adapter = S3RetentionAdapter(
        hook=hook, store=store, category=catalog.category("web_statistics")
    )
    subject = {Identity.EMAIL: {"jan@x.nl"}}

    # A hold typed in another case still keeps the object whole.
    held = Protection(held={Identity.EMAIL: frozenset({"Jan@X.nl"})})
    assert erase(adapter, subject, held).withheld == 2  # rows
    assert _get(client, bucket, "mail/2024/03/01.jsonl") == b"".join(lines)

    assert erase(adapter, subject) == EraseResult(removed=2, rewritten=1)
    assert _get(client, bucket, "mail/2024/03/01.jsonl") == lines[1] + lines[3]
