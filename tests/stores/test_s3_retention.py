"""Retention on S3: survey and purge against the embedded S3 server (moto).

Each test creates its own bucket and points a copy of the catalog's store at it (or builds
a store), then checks which objects (and versions) went and which stayed, and which
prefixes were listed to find them.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from lethe import connections
from lethe.domain.cutoffs import Cutoff
from lethe.domain.protection import Protection
from lethe.exceptions import PurgeError, StoreError
from lethe.policy import Identity, S3Store
from lethe.policy.vocabulary import KeyTimeSource
from lethe.stores.base import Refs, Settlement
from lethe.stores.s3 import S3RetentionAdapter
from tests.stores.conftest import (
    export_key,
    new_bucket,
    object_keys,
    put_object,
    s3_adapter,
    s3_hook,
)

SECOND = timedelta(seconds=1)


@pytest.fixture
def hook(stack):
    return s3_hook()


@pytest.fixture
def bucket(client):
    return new_bucket(client, "lethe-retention")


def _versions(client, bucket: str) -> dict[str, int]:
    """Versions plus delete markers, by key."""
    found: dict[str, int] = {}
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
            found[entry["Key"]] = found.get(entry["Key"], 0) + 1
    return found


def _visits(day: str, *visitors: str) -> bytes:
    rows = "".join(f"{day}T10:00:00Z,/tarieven,{visitor}\r\n" for visitor in visitors)
    return f"visited_at,page,visitor_id\r\n{rows}".encode()


# --- web analytics exports: key time, pruned listing, protection by content ----------------------


def test_web_exports_purge_lists_only_expired_prefixes(hook, catalog, client, bucket, calls):
    cutoff = datetime(2024, 3, 10, tzinfo=UTC)
    days = [datetime(2023, 12, 30), datetime(2024, 1, 15), datetime(2024, 3, 8)]
    days += [datetime(2024, 3, 9), datetime(2024, 3, 10), datetime(2024, 4, 1)]
    keys = {day.date().isoformat(): export_key(day) for day in days}
    for day, key in keys.items():
        put_object(client, bucket, key, _visits(day, "v-1"))
    outside = {
        "exports/2024/01/15/other.csv",  # in an expired prefix, but not the layout
        "exports/readme.txt",
        "elsewhere/2020/01/01/visits-20200101.csv",
    }
    for key in outside:
        put_object(client, bucket, key)
    adapter = s3_adapter(hook, catalog, "web_statistics", bucket)
    calls.clear()

    survey = adapter.survey(Cutoff(default=cutoff), Protection())
    assert (survey.total, survey.expired, survey.removable) == (6, 4, 4)
    assert survey.newest == datetime(2024, 4, 1, tzinfo=UTC)
    assert survey.oldest_removable == datetime(2023, 12, 30, tzinfo=UTC)
    assert not [op for op, _ in calls if op == "GetObject"]  # no protection: no reads
    calls.clear()

    result = adapter.purge(Cutoff(default=cutoff), Protection())
    assert result.removed == 4  # 2024-03-09 ends exactly at the cutoff: expired
    assert result.batches == 1
    listed = {(p["Prefix"], p.get("Delimiter")) for op, p in calls if op == "ListObjectsV2"}
    assert object_keys(client, bucket) == {keys["2024-03-10"], keys["2024-04-01"]} | outside
    assert listed == {
        ("exports/", "/"),  # the years
        ("exports/2023/", None),  # a whole expired year
        ("exports/2024/", "/"),  # the months of the year the cutoff falls in
        ("exports/2024/01/", None),  # a whole expired month (February has no exports)
        ("exports/2024/03/", "/"),  # the days of the cutoff's month
        ("exports/2024/03/08/", None),
        ("exports/2024/03/09/", None),
    }
    assert not [op for op, _ in calls if op == "GetObject"]
    assert sum(op == "DeleteObjects" for op, _ in calls) == 1

    assert adapter.purge(Cutoff(default=cutoff), Protection()).removed == 0


def test_key_time_one_second_either_side_of_the_period_end(hook, catalog, client, bucket):
    day = datetime(2024, 3, 9)
    key = export_key(day)
    put_object(client, bucket, key, _visits("2024-03-09", "v-1"))
    adapter = s3_adapter(hook, catalog, "web_statistics", bucket)
    end = datetime(2024, 3, 10, tzinfo=UTC)

    assert adapter.survey(Cutoff(default=end - SECOND), Protection()).expired == 0
    assert adapter.purge(Cutoff(default=end - SECOND), Protection()).removed == 0
    assert object_keys(client, bucket) == {key}
    assert adapter.purge(Cutoff(default=end + SECOND), Protection()).removed == 1
    assert object_keys(client, bucket) == set()


def test_protected_visitors_keep_their_exports(hook, catalog, client, bucket, calls):
    cutoff = datetime(2024, 3, 10, tzinfo=UTC)
    held = export_key(datetime(2024, 1, 15))
    restricted = export_key(datetime(2023, 12, 30))
    both = export_key(datetime(2023, 12, 29))
    plain = export_key(datetime(2024, 2, 1))
    young = export_key(datetime(2024, 3, 11))
    put_object(client, bucket, held, _visits("2024-01-15", "v-1", "v-held", "v-2"))
    put_object(client, bucket, restricted, _visits("2023-12-30", "v-restricted"))
    put_object(client, bucket, both, _visits("2023-12-29", "v-restricted", "v-3", "v-held"))
    put_object(client, bucket, plain, _visits("2024-02-01", "v-1", "v-2"))
    put_object(client, bucket, young, _visits("2024-03-11", "v-held"))
    protection = Protection(
        held={Identity.VISITOR_ID: frozenset({"v-held"})},
        restricted={Identity.VISITOR_ID: frozenset({"v-restricted"})},
    )
    adapter = s3_adapter(hook, catalog, "web_statistics", bucket)
    calls.clear()

    survey = adapter.survey(Cutoff(default=cutoff), protection)
    assert (survey.expired, survey.held, survey.restricted, survey.removable) == (4, 2, 1, 1)
    # Only expired objects are read, each once.
    read = sorted(p["Key"] for op, p in calls if op == "GetObject")
    assert read == sorted([held, restricted, both, plain])

    result = adapter.purge(Cutoff(default=cutoff), protection)
    assert result.removed == 1
    assert (result.details["held"], result.details["restricted"]) == (2, 1)
    assert object_keys(client, bucket) == {held, restricted, both, young}

    # A protection on an identity the store does not hold reads nothing.
    calls.clear()
    other = Protection(held={Identity.PHONE: frozenset({"+31612345678"})})
    assert adapter.survey(Cutoff(default=cutoff), other).held == 0
    assert not [op for op, _ in calls if op == "GetObject"]

    # A hold on the whole category keeps everything, without reading.
    calls.clear()
    everything = adapter.purge(Cutoff(default=cutoff), Protection(category_held=True))
    assert (everything.removed, everything.details["held"]) == (0, 3)
    assert not [op for op, _ in calls if op == "GetObject"]


def test_an_export_that_cannot_be_checked_is_kept_and_fails_the_purge(
    hook, catalog, client, bucket
):
    broken = export_key(datetime(2024, 1, 2))
    fine = export_key(datetime(2024, 1, 3))
    put_object(client, bucket, broken, b"visited_at,page\r\n2024-01-02T10:00:00Z,/\r\n")
    put_object(client, bucket, fine, _visits("2024-01-03", "v-1"))
    adapter = s3_adapter(hook, catalog, "web_statistics", bucket)
    protection = Protection(held={Identity.VISITOR_ID: frozenset({"v-held"})})

    with pytest.raises(PurgeError) as caught:
        adapter.purge(Cutoff(default=datetime(2024, 3, 1, tzinfo=UTC)), protection)
    assert (caught.value.removed, caught.value.failed) == (1, 1)
    assert "exports/2024" not in str(caught.value)
    assert object_keys(client, bucket) == {broken}


def test_an_empty_expired_export_holds_no_rows_and_is_purged_despite_protections(
    hook, catalog, client, bucket
):
    empty = export_key(datetime(2024, 1, 2))
    held = export_key(datetime(2024, 1, 3))
    put_object(client, bucket, empty, b"")  # a 0-byte export: no header, no rows
    put_object(client, bucket, held, _visits("2024-01-03", "v-held"))
    adapter = s3_adapter(hook, catalog, "web_statistics", bucket)
    protection = Protection(
        held={Identity.VISITOR_ID: frozenset({"v-held"})},
        restricted={Identity.VISITOR_ID: frozenset({"v-restricted"})},
    )
    cutoff = Cutoff(default=datetime(2024, 3, 1, tzinfo=UTC))

    survey = adapter.survey(cutoff, protection)
    assert (survey.expired, survey.held, survey.restricted, survey.removable) == (2, 1, 0, 1)
    assert adapter.purge(cutoff, protection).removed == 1  # no PurgeError for "unreadable"
    assert object_keys(client, bucket) == {held}
    assert adapter.purge(cutoff, protection).removed == 0


def test_jsonl_rows_are_checked_by_key(hook, catalog, client, bucket):
    category = catalog.category("web_statistics")
    store = S3Store(
        kind="s3",
        conn_id=connections.OBJECT_STORE,
        bucket=bucket,
        prefix="events/",
        key_layout="events/{yyyy}/{mm}/{dd}/{source}.jsonl",
        time_from="key",
        object_format="jsonl",
        subject=[
            {"field": "ip", "identity": "ip"},
            {"field": "customer", "identity": "customer_id"},
        ],
    )
    rows = {
        "events/2024/01/01/web.jsonl": [{"ip": "192.0.2.7", "customer": 1}],
        "events/2024/01/01/app.jsonl": [{"ip": "192.0.2.8"}, {"ip": "192.0.2.9", "customer": 42}],
        "events/2024/01/02/web.jsonl": [{"ip": "192.0.2.10"}, {"page": "/"}],
    }
    for key, lines in rows.items():
        body = "\n\n".join(json.dumps(line) for line in lines) + "\n"
        put_object(client, bucket, key, body.encode())
    protection = Protection(
        held={Identity.CUSTOMER_ID: frozenset({"42"})},
        restricted={Identity.IP: frozenset({"192.0.2.7"})},
    )
    adapter = S3RetentionAdapter(hook=hook, store=store, category=category)

    result = adapter.purge(Cutoff(default=datetime(2024, 2, 1, tzinfo=UTC)), protection)

    assert (result.removed, result.details["held"], result.details["restricted"]) == (1, 1, 1)
    assert object_keys(client, bucket) == {
        "events/2024/01/01/web.jsonl",
        "events/2024/01/01/app.jsonl",
    }


# --- last-modified time and per-subject cutoffs -------------------------------------------------


def test_last_modified_one_second_either_side(hook, catalog, client, bucket):
    key = export_key(datetime(2030, 1, 1))  # the key's date means nothing here
    put_object(client, bucket, key, _visits("2030-01-01", "v-1"))
    modified = client.head_object(Bucket=bucket, Key=key)["LastModified"].astimezone(UTC)
    adapter = s3_adapter(
        hook, catalog, "web_statistics", bucket, time_from=KeyTimeSource.LAST_MODIFIED
    )

    survey = adapter.survey(Cutoff(default=modified), Protection())
    assert (survey.total, survey.expired, survey.newest) == (1, 0, modified)
    assert adapter.purge(Cutoff(default=modified - SECOND), Protection()).removed == 0
    assert adapter.purge(Cutoff(default=modified), Protection()).removed == 0
    assert object_keys(client, bucket) == {key}
    assert adapter.purge(Cutoff(default=modified + SECOND), Protection()).removed == 1
    assert object_keys(client, bucket) == set()


def test_per_subject_cutoffs_apply_the_earliest(hook, catalog, client, bucket):
    # Which customer an object belongs to is unknown without reading it: nothing goes
    # before every customer's retention has passed.
    default = datetime(2024, 3, 10, tzinfo=UTC)
    older = export_key(datetime(2024, 2, 1))
    newer = export_key(datetime(2024, 3, 1))
    for key in (older, newer):
        put_object(client, bucket, key, _visits("2024-01-01", "v-1"))
    adapter = s3_adapter(hook, catalog, "web_statistics", bucket)
    cutoff = Cutoff(
        default=default,
        per_subject={"42": datetime(2024, 2, 15, tzinfo=UTC)},
        subject_identity=Identity.CUSTOMER_ID,
    )
    assert adapter.purge(cutoff, Protection()).removed == 1
    assert object_keys(client, bucket) == {newer}


# --- versioned lawful-intercept logs ------------------------------------------------------------


@pytest.fixture
def versioned_bucket(client, bucket):
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return bucket


def test_versioned_bucket_keeps_no_version_of_an_expired_key(
    hook, catalog, client, versioned_bucket, calls
):
    bucket = versioned_bucket
    cutoff = datetime(2024, 2, 1, tzinfo=UTC)
    line = json.dumps({"src": "192.0.2.1", "dst": "198.51.100.7"}).encode() + b"\n"
    expired = {
        "traffic/email/2024/01/31/22.jsonl": 1,
        "traffic/email/2024/01/31/23.jsonl": 3,  # ends exactly at the cutoff; rewritten twice
        "traffic/telephony/2023/12/01/00.jsonl": 2,
        "traffic/internet/2023/06/15/12.jsonl": 1,
    }
    young = {
        "traffic/email/2024/02/01/00.jsonl": 2,
        "traffic/internet/2024/03/01/05.jsonl": 1,
    }
    for key, count in {**expired, **young}.items():
        for _ in range(count):
            put_object(client, bucket, key, line)
    # Only old versions and a delete marker left: an interrupted purge, or a user's delete.
    gone = "traffic/telephony/2023/11/30/23.jsonl"
    put_object(client, bucket, gone, line)
    put_object(client, bucket, gone, line)
    client.delete_object(Bucket=bucket, Key=gone)
    outside = "traffic/fax/2023/01/01/00.jsonl"  # not one of the layout's services
    put_object(client, bucket, outside, line)
    adapter = s3_adapter(hook, catalog, "lawful_intercept_traffic", bucket)
    assert adapter.store.versioned
    adapter.page_size = 2  # a key's versions span listing pages
    calls.clear()

    survey = adapter.survey(Cutoff(default=cutoff), Protection())
    assert (survey.total, survey.expired) == (6, 4)

    result = adapter.purge(Cutoff(default=cutoff), Protection())
    assert result.removed == 4
    assert result.versions_removed == sum(expired.values()) + 3  # + 2 versions, 1 marker
    assert not [op for op, _ in calls if op == "GetObject"]
    listed = [p["Prefix"] for op, p in calls if op == "ListObjectVersions"]
    assert _versions(client, bucket) == {**young, outside: 1}
    assert not [p for p in listed if p.startswith(("traffic/email/2024/02", "traffic/fax"))]
    assert not [p for p in listed if p.startswith("traffic/internet/2024/03")]

    again = adapter.purge(Cutoff(default=cutoff), Protection())
    assert (again.removed, again.versions_removed) == (0, 0)
    assert _versions(client, bucket) == {**young, outside: 1}


def test_versioned_export_is_kept_whole_when_an_old_version_is_protected(
    hook, catalog, client, versioned_bucket
):
    bucket = versioned_bucket
    kept = export_key(datetime(2024, 1, 5))
    put_object(client, bucket, kept, _visits("2024-01-05", "v-held"))
    put_object(client, bucket, kept, _visits("2024-01-05", "v-1"))  # rewritten without the visitor
    gone = export_key(datetime(2024, 1, 6))
    put_object(client, bucket, gone, _visits("2024-01-06", "v-1"))
    put_object(client, bucket, gone, _visits("2024-01-06", "v-2"))
    adapter = s3_adapter(hook, catalog, "web_statistics", bucket, versioned=True)
    protection = Protection(held={Identity.VISITOR_ID: frozenset({"v-held"})})

    result = adapter.purge(Cutoff(default=datetime(2024, 2, 1, tzinfo=UTC)), protection)

    assert (result.removed, result.versions_removed, result.details["held"]) == (1, 2, 1)
    assert _versions(client, bucket) == {kept: 2}


def _traffic(*pairs: tuple[str, str]) -> bytes:
    """Lawful-intercept records as the generator writes them: {"ts","from","to","bytes"}."""
    return "".join(
        json.dumps({"ts": "2024-01-05T10:11:12Z", "from": a, "to": b, "bytes": 2048}) + "\n"
        for a, b in pairs
    ).encode()


def test_lawful_intercept_objects_naming_a_held_identity_are_kept(
    hook, catalog, client, versioned_bucket
):
    """A hold for every category reaches the traffic logs through their from/to fields."""
    bucket = versioned_bucket
    held_mail, held_phone, restricted_ip = "held@example.nl", "+31612345678", "192.0.2.44"
    mail_from = "traffic/email/2024/01/05/10.jsonl"  # the held address sends
    phone_to = "traffic/telephony/2024/01/05/11.jsonl"  # the held number is called
    old_version = "traffic/telephony/2024/01/06/09.jsonl"  # named only in an older version
    ip_from = "traffic/internet/2024/01/05/12.jsonl"  # restricted, not held
    others = "traffic/email/2024/01/07/08.jsonl"
    twin = "traffic/telephony/2024/01/07/09.jsonl"  # a number one digit off the held one
    put_object(client, bucket, mail_from, _traffic(("a@example.nl", "b@example.nl")))
    put_object(client, bucket, mail_from, _traffic(("a@x.nl", "b@x.nl"), (held_mail, "c@x.nl")))
    put_object(client, bucket, phone_to, _traffic(("+31201234567", held_phone)))
    put_object(client, bucket, old_version, _traffic(("+31201234567", held_phone)))
    put_object(client, bucket, old_version, _traffic(("+31201234567", "+31201234568")))
    put_object(client, bucket, ip_from, _traffic((restricted_ip, "198.51.100.7")))
    put_object(client, bucket, others, _traffic(("a@example.nl", "info@example.com")))
    put_object(client, bucket, twin, _traffic(("+31612345679", "+31201234567")))
    adapter = s3_adapter(hook, catalog, "lawful_intercept_traffic", bucket)
    assert set(adapter.store.identities) == {Identity.EMAIL, Identity.PHONE, Identity.IP}
    protection = Protection(
        held={
            Identity.EMAIL: frozenset({held_mail}),
            Identity.PHONE: frozenset({held_phone}),
        },
        restricted={Identity.IP: frozenset({restricted_ip})},
    )
    cutoff = Cutoff(default=datetime(2024, 2, 1, tzinfo=UTC))

    survey = adapter.survey(cutoff, protection)
    # Like the purge, the survey reads every version: the older one names the held number.
    assert (survey.total, survey.expired, survey.held, survey.restricted) == (6, 6, 3, 1)

    result = adapter.purge(cutoff, protection)

    assert (result.removed, result.details["held"], result.details["restricted"]) == (2, 3, 1)
    # Every version of a kept key stays; nothing of the removed ones does.
    assert _versions(client, bucket) == {mail_from: 2, phone_to: 1, old_version: 2, ip_from: 1}


def test_object_lock_refusals_fail_the_purge_after_the_rest(hook, catalog, client):
    bucket = f"lethe-locked-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    line = b'{"src": "192.0.2.1"}\n'
    locked = "traffic/email/2023/05/01/10.jsonl"
    put_object(client, bucket, locked, line)
    put_object(client, bucket, locked, line, ObjectLockLegalHoldStatus="ON")
    free = [f"traffic/email/2023/05/01/{hour:02d}.jsonl" for hour in (11, 12, 13)]
    for key in free:
        put_object(client, bucket, key, line)
    adapter = s3_adapter(hook, catalog, "lawful_intercept_traffic", bucket)

    with pytest.raises(PurgeError) as caught:
        adapter.purge(Cutoff(default=datetime(2024, 1, 1, tzinfo=UTC)), Protection())
    assert (caught.value.removed, caught.value.failed) == (3, 1)
    assert "AccessDenied" in str(caught.value)
    assert "traffic/email" not in str(caught.value)
    remaining = _versions(client, bucket)
    assert remaining == {locked: 1}  # the unlocked old version went, the locked one stayed
    client.put_object_legal_hold(Bucket=bucket, Key=locked, LegalHold={"Status": "OFF"})


# --- DeleteObjects chunking ---------------------------------------------------------------------


def test_more_than_1000_expired_keys_go_in_chunks(hook, catalog, client, bucket, calls):
    category = catalog.category("web_statistics")
    store = S3Store(
        kind="s3",
        conn_id=connections.OBJECT_STORE,
        bucket=bucket,
        prefix="bulk/",
        key_layout="bulk/{yyyy}/{mm}/{dd}/{n}.json",
        time_from="key",
    )
    keys = [f"bulk/2024/01/02/{n:05d}.json" for n in range(1005)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda key: put_object(client, bucket, key, b"{}"), keys))
    put_object(client, bucket, "bulk/2024/01/03/young.json", b"{}")
    adapter = S3RetentionAdapter(hook=hook, store=store, category=category)
    calls.clear()

    result = adapter.purge(Cutoff(default=datetime(2024, 1, 3, tzinfo=UTC)), Protection())

    assert (result.removed, result.batches) == (1005, 2)
    sizes = [len(p["Delete"]["Objects"]) for op, p in calls if op == "DeleteObjects"]
    assert sizes == [1000, 5]
    assert object_keys(client, bucket) == {"bulk/2024/01/03/young.json"}


def test_each_deleteobjects_call_is_reported_once_its_answer_is_in(
    hook, catalog, client, bucket, monkeypatch
):
    """What a killed purge removed is on record: the caller hears of every call's removals."""
    from lethe.stores.s3 import deletion

    monkeypatch.setattr(deletion, "DELETE_BATCH", 50)  # calls of 50: a few keys suffice
    category = catalog.category("web_statistics")
    store = S3Store(
        kind="s3",
        conn_id=connections.OBJECT_STORE,
        bucket=bucket,
        prefix="told/",
        key_layout="told/{yyyy}/{mm}/{dd}/{n}.json",
        time_from="key",
    )
    keys = [f"told/2024/01/02/{n:05d}.json" for n in range(120)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda key: put_object(client, bucket, key, b"{}"), keys))
    adapter = S3RetentionAdapter(hook=hook, store=store, category=category)
    told: list[int] = []
    adapter.on_removed = told.append

    result = adapter.purge(Cutoff(default=datetime(2024, 1, 3, tzinfo=UTC)), Protection())

    assert sorted(told) == [20, 50, 50]
    assert sum(told) == result.removed == 120


def test_each_deleteobjects_call_is_announced_with_its_keys_before_it_is_sent(
    hook, catalog, client, bucket, monkeypatch
):
    """A purge intent names a call's keys while they still exist; its count comes back
    once the call's answer is in."""
    from lethe.stores.s3 import deletion

    monkeypatch.setattr(deletion, "DELETE_BATCH", 50)
    keys = [export_key(datetime(2024, 1, 1) + timedelta(days=n)) for n in range(60)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda key: put_object(client, bucket, key, _visits("2024-01-01")), keys))
    adapter = s3_adapter(hook, catalog, "web_statistics", bucket)
    units: list[tuple[int, list[str], list[int]]] = []

    def removing(count: int, refs: Refs):
        named = [key for key, version_id in refs.items]
        assert refs.xid is None
        assert all(version_id is None for _, version_id in refs.items)
        assert set(named) <= object_keys(client, bucket)  # announced before it is sent
        told: list[int] = []
        units.append((count, named, told))
        return told.append

    adapter.on_removing = removing
    result = adapter.purge(Cutoff(default=datetime(2024, 6, 1, tzinfo=UTC)), Protection())

    assert result.removed == 60
    assert sorted(count for count, _, _ in units) == [10, 50]
    assert sorted(key for _, named, _ in units for key in named) == sorted(keys)
    assert all(told == [count] for count, _, told in units)


def test_settling_counts_the_keys_of_an_intent_that_are_gone(hook, catalog, client, bucket):
    keys = [export_key(datetime(2024, 1, day)) for day in (1, 2, 3)]
    for key in keys:
        put_object(client, bucket, key, _visits("2024-01-01", "v-1"))
    client.delete_object(Bucket=bucket, Key=keys[0])
    adapter = s3_adapter(hook, catalog, "web_statistics", bucket)

    settled = adapter.settle(3, Refs(items=tuple([key, None] for key in keys)))

    assert settled == Settlement(removed=1)


def test_settling_a_versioned_key_counts_it_once_every_named_version_is_gone(
    hook, catalog, client, versioned_bucket
):
    bucket = versioned_bucket
    key = export_key(datetime(2024, 1, 1))
    versions = [put_object(client, bucket, key, _visits("2024-01-01", f"v-{n}")) for n in (1, 2)]
    adapter = s3_adapter(hook, catalog, "web_statistics", bucket, versioned=True)
    refs = Refs(items=tuple([key, version] for version in versions))

    client.delete_object(Bucket=bucket, Key=key, VersionId=versions[0])
    assert adapter.settle(1, refs) == Settlement(removed=0)
    client.delete_object(Bucket=bucket, Key=key, VersionId=versions[1])
    assert adapter.settle(1, refs) == Settlement(removed=1)


def test_per_key_errors_in_a_response_are_counted_not_removed(hook, catalog, client, bucket):
    keys = [export_key(datetime(2024, 1, day)) for day in (1, 2, 3)]
    for key in keys:
        put_object(client, bucket, key, _visits("2024-01-01", "v-1"))
    adapter = s3_adapter(hook, catalog, "web_statistics", bucket)
    original = client.delete_objects

    def partly(**params):
        objects = params["Delete"]["Objects"]
        refused, rest = objects[:1], objects[1:]
        response = original(**{**params, "Delete": {**params["Delete"], "Objects": rest}})
        response["Errors"] = [
            {"Key": o["Key"], "Code": "InternalError", "Message": "x"} for o in refused
        ]
        return response

    client.delete_objects = partly
    try:
        with pytest.raises(PurgeError) as caught:
            adapter.purge(Cutoff(default=datetime(2024, 2, 1, tzinfo=UTC)), Protection())
    finally:
        del client.delete_objects
    assert (caught.value.removed, caught.value.failed) == (2, 1)
    assert "InternalError" in str(caught.value)
    assert object_keys(client, bucket) == {keys[0]}


# --- store errors -------------------------------------------------------------------------------


def test_missing_bucket_raises_store_error(hook, catalog):
    adapter = s3_adapter(hook, catalog, "web_statistics", f"lethe-absent-{uuid.uuid4().hex[:8]}")
    with pytest.raises(StoreError, match="NoSuchBucket") as caught:
        adapter.survey(Cutoff(default=datetime(2024, 1, 1, tzinfo=UTC)), Protection())
    assert connections.OBJECT_STORE in str(caught.value)
    with pytest.raises(StoreError, match="NoSuchBucket"):
        adapter.purge(Cutoff(default=datetime(2024, 1, 1, tzinfo=UTC)), Protection())


def test_unreachable_endpoint_raises_store_error_naming_the_connection(catalog, monkeypatch):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    extra = {
        "endpoint_url": f"http://127.0.0.1:{port}",
        "region_name": "us-east-1",
        "config_kwargs": {"retries": {"max_attempts": 1, "mode": "standard"}},
    }
    monkeypatch.setenv(
        "AIRFLOW_CONN_LETHE_DEAD_S3",
        json.dumps({"conn_type": "aws", "login": "a", "password": "b", "extra": extra}),
    )
    adapter = s3_adapter(
        S3Hook(aws_conn_id="lethe_dead_s3"),
        catalog,
        "web_statistics",
        "lethe-unreachable",
        conn_id="lethe_dead_s3",
    )
    with pytest.raises(StoreError, match="lethe_dead_s3") as caught:
        adapter.survey(Cutoff(default=datetime(2024, 1, 1, tzinfo=UTC)), Protection())
    assert "lethe-unreachable" in str(caught.value)
    with pytest.raises(StoreError, match="lethe_dead_s3"):
        adapter.purge(Cutoff(default=datetime(2024, 1, 1, tzinfo=UTC)), Protection())


# --- concurrent purges: only what existed is counted (issue 13) ---------------------------------


def _conditional_deletes(client, lock, sent=None):
    """Make ``client`` answer DeleteObjects as S3 does for entries with an ``ETag`` (a
    conditional delete, S3 since 2025-09): deleted only while the key is there with that
    ETag, else a per-key ``NoSuchKey`` or ``PreconditionFailed`` error. moto ignores the
    element (it deletes unconditionally and reports every key deleted); the check and the
    delete happen under ``lock``, as one request is atomic on S3."""
    original = client.delete_objects

    def conditional(**params):
        with lock:
            bucket = params["Bucket"]
            objects, errors = [], []
            for entry in params["Delete"]["Objects"]:
                if sent is not None:
                    sent.append(entry)
                if "ETag" in entry and "VersionId" not in entry:
                    try:
                        etag = client.head_object(Bucket=bucket, Key=entry["Key"])["ETag"]
                    except client.exceptions.ClientError:
                        errors.append({"Key": entry["Key"], "Code": "NoSuchKey"})
                        continue
                    if etag != entry["ETag"]:
                        errors.append({"Key": entry["Key"], "Code": "PreconditionFailed"})
                        continue
                objects.append({k: v for k, v in entry.items() if k != "ETag"})
            response = {"Errors": errors}
            if objects:
                delete = {**params["Delete"], "Objects": objects}
                answer = original(**{**params, "Delete": delete})
                response["Errors"] += answer.get("Errors", [])
            return response

    client.delete_objects = conditional


@pytest.mark.parametrize("in_session", [True, False], ids=["survey-then-purge", "purge-only"])
def test_two_concurrent_purges_together_count_exactly_what_existed(
    catalog, client, bucket, in_session
):
    keys = [f"bulk/2024/01/{day:02d}/{n:04d}.json" for day in (1, 2) for n in range(50)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda key: put_object(client, bucket, key, b"{}"), keys))
    young = "bulk/2024/02/01/young.json"
    put_object(client, bucket, young, b"{}")
    category = catalog.category("web_statistics")
    store = S3Store(
        kind="s3",
        conn_id=connections.OBJECT_STORE,
        bucket=bucket,
        prefix="bulk/",
        key_layout="bulk/{yyyy}/{mm}/{dd}/{n}.json",
        time_from="key",
    )
    lock = threading.Lock()
    sent: list[dict] = []
    adapters = []
    for _ in range(2):
        hook = s3_hook()
        _conditional_deletes(hook.get_conn(), lock, sent)
        adapters.append(S3RetentionAdapter(hook=hook, store=store, category=category))
    cutoff = Cutoff(default=datetime(2024, 1, 10, tzinfo=UTC))
    start = threading.Barrier(2)

    def purge(adapter):
        with contextlib.ExitStack() as stack:
            if in_session:
                stack.enter_context(adapter.session())
                assert adapter.survey(cutoff, Protection()).expired == len(keys)
            start.wait()
            return adapter.purge(cutoff, Protection())

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(purge, adapters))

    assert sum(r.removed for r in results) == len(keys)
    if in_session:  # each purge tried every key its survey found: removed or gone meanwhile
        assert [r.removed + r.details["gone_meanwhile"] for r in results] == [len(keys)] * 2
    assert object_keys(client, bucket) == {young}
    # Every key was sent with the ETag it was listed with.
    assert len(sent) >= len(keys)
    assert all(entry.get("ETag") for entry in sent)


def test_a_key_rewritten_since_it_was_listed_is_not_removed(catalog, client, bucket):
    keys = [export_key(datetime(2024, 1, day)) for day in (1, 2)]
    for key in keys:
        put_object(client, bucket, key, _visits("2024-01-01", "v-1"))
    hook = s3_hook()
    _conditional_deletes(hook.get_conn(), threading.Lock())
    adapter = s3_adapter(hook, catalog, "web_statistics", bucket)
    cutoff = Cutoff(default=datetime(2024, 2, 1, tzinfo=UTC))

    with adapter.session():
        assert adapter.survey(cutoff, Protection()).removable == 2
        put_object(client, bucket, keys[0], _visits("2024-01-01", "v-2"))  # rewritten meanwhile
        result = adapter.purge(cutoff, Protection())

    assert (result.removed, result.details["gone_meanwhile"]) == (1, 1)
    assert object_keys(client, bucket) == {keys[0]}  # the next run judges it again


@pytest.mark.parametrize("versioned", [False, True], ids=["plain", "versioned"])
def test_a_purge_after_its_survey_in_one_session_does_not_list_again(
    hook, catalog, client, bucket, calls, versioned
):
    if versioned:
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    held = export_key(datetime(2024, 1, 15))
    gone = [export_key(datetime(2024, 1, day)) for day in (2, 3)]
    young = export_key(datetime(2024, 3, 11))
    put_object(client, bucket, held, _visits("2024-01-15", "v-held"))
    for key in gone:
        put_object(client, bucket, key, _visits("2024-01-02", "v-1"))
        put_object(client, bucket, key, _visits("2024-01-02", "v-2"))  # a second version
    put_object(client, bucket, young, _visits("2024-03-11", "v-1"))
    adapter = s3_adapter(hook, catalog, "web_statistics", bucket, versioned=versioned)
    protection = Protection(held={Identity.VISITOR_ID: frozenset({"v-held"})})
    cutoff = Cutoff(default=datetime(2024, 3, 10, tzinfo=UTC))

    with adapter.session():
        survey = adapter.survey(cutoff, protection)
        surveyed = len(calls)
        result = adapter.purge(cutoff, protection)

    assert (survey.total, survey.expired, survey.held, survey.removable) == (4, 3, 1, 2)
    purge_calls = [op for op, _ in calls[surveyed:]]
    assert purge_calls == ["DeleteObjects"]  # no listing, no object read again
    assert (result.removed, result.details["held"], result.details["list_calls"]) == (2, 1, 0)
    assert result.versions_removed == (4 if versioned else 0)
    assert object_keys(client, bucket) == {held, young}
    if versioned:
        assert _versions(client, bucket) == {held: 1, young: 1}


# ============================================================================ timestamps


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-05T10:00:00.000Z",  # S3 and MinIO listings
        "2024-01-05T10:00:00Z",
        "2024-02-29T23:59:59.123456Z",
        "2024-01-05T10:00:00.1234567Z",  # more digits than microseconds: botocore's parser
        "Fri, 05 Jan 2024 10:00:00 GMT",  # an HTTP date (HeadObject): botocore's parser
        "2024-01-05T11:00:00+01:00",
        1704448800,
    ],
)
def test_s3_timestamps_are_read_as_botocore_reads_them(value):
    from botocore import parsers

    from lethe.stores.s3.access import s3_timestamp

    read, botocores = s3_timestamp(value), parsers.DEFAULT_TIMESTAMP_PARSER(value)
    assert read == botocores
    assert read.utcoffset() == botocores.utcoffset()


def test_the_stores_client_reads_listed_timestamps_fast_and_alike(
    hook, catalog, bucket, monkeypatch
):
    """Through the embedded S3: the listing's LastModified never reaches botocore's own
    (slow) parser, and is the instant the HEAD's HTTP date, read by that parser, gives."""
    from botocore import parsers

    from lethe.stores.s3.access import S3Access

    botocores, slow = parsers.DEFAULT_TIMESTAMP_PARSER, []
    monkeypatch.setattr(
        parsers, "DEFAULT_TIMESTAMP_PARSER", lambda value: slow.append(value) or botocores(value)
    )
    client = S3Access(hook=hook, store=_web_store(catalog, bucket), category=None).client()
    for day in ("05", "06", "07"):
        put_object(client, bucket, f"exports/2024/01/{day}/visits.csv", b"x")
    listed = client.list_objects_v2(Bucket=bucket)["Contents"]
    assert len(listed) == 3
    assert slow == []
    headed = client.head_object(Bucket=bucket, Key=listed[0]["Key"])["LastModified"]
    assert len(slow) == 1  # the HTTP date: botocore's parser
    assert listed[0]["LastModified"] == headed
    assert listed[0]["LastModified"].utcoffset() == timedelta(0)


def _web_store(catalog, bucket: str) -> S3Store:
    store = next(s for s in catalog.category("web_statistics").stores if s.kind == "s3")
    return store.model_copy(update={"bucket": bucket})
