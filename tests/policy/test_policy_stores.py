"""What the store models tell the engine: cutoffs, file and key matching, listing prefixes.

These use the real catalog, so they also pin the layouts the other layers build on.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lethe.policy import (
    CustomerDefinedRetention,
    Duration,
    FixedRetention,
    Identity,
    S3Store,
    SftpStore,
    UntilServiceEnd,
)
from lethe.policy.models import AgeFromColumn, AgeFromJoin, PostgresStore
from lethe.retention import resolve_cutoff

MOMENT = datetime(2024, 7, 10, 0, 0, tzinfo=UTC)


def _store(catalog, category_id, kind):
    return next(s for s in catalog.category(category_id).stores if isinstance(s, kind))


# ============================================================================ retention


# Cutoffs are computed in one place, lethe.retention.resolve_cutoff (tests/stores/
# test_cutoff.py); the models only say what the retention is.


def test_fixed_retention_period(catalog):
    retention = catalog.by_statement_row(12).retention
    assert isinstance(retention, FixedRetention)
    assert retention.period == Duration(months=6)
    assert retention.human() == "6 months"


def test_until_service_end_grace(catalog):
    retention = catalog.by_statement_row(1).retention
    assert isinstance(retention, UntilServiceEnd)
    assert retention.grace == Duration(days=30)
    assert UntilServiceEnd(kind="until_service_end").human() == "until service end"


def test_customer_defined_effective_period(catalog):
    retention = catalog.by_statement_row(13).retention
    assert isinstance(retention, CustomerDefinedRetention)
    assert retention.effective(None) == Duration(days=90)
    assert retention.effective(0) == Duration(days=90)
    assert retention.effective(30) == Duration(days=30)
    assert retention.effective(365) == Duration(days=365)
    assert retention.effective(4000) == Duration(years=1)
    assert retention.setting.table == "telecom.recording_settings"
    assert (retention.setting.key_column, retention.setting.value_column) == (
        "customer_id",
        "retention_days",
    )


# ============================================================================ postgres


def test_usage_records_are_partitioned_and_aged_on_their_own_column(catalog):
    store = _store(catalog, catalog.by_statement_row(12).id, PostgresStore)
    assert store.partitioned_by_month
    assert isinstance(store.age, AgeFromColumn)
    assert store.age_column == "started_at"
    assert store.on_expiry == "delete"


def test_until_service_end_tables_age_via_the_service_end(catalog):
    for category in catalog.categories():
        if isinstance(category.retention, UntilServiceEnd):
            for store in category.stores:
                assert isinstance(store.age, AgeFromJoin), category.id
                assert store.age.via.table in (
                    "telecom.contracts",
                    "telecom.customer_service_end",
                )
                assert store.age_column == "ended_at"


def test_every_store_uses_a_known_connection(catalog):
    from lethe import connections

    for _, _, store in catalog.stores():
        assert store.conn_id in connections.ALL


# ============================================================================ sftp


def test_support_recording_path(catalog):
    store = _store(catalog, catalog.by_statement_row(6).id, SftpStore)
    assert store.root == "/recordings/support"
    found = store.match("2024/07/09/20240709T134501Z_+31612345678_c0001.wav")
    assert found is not None
    assert found.time == datetime(2024, 7, 9, 13, 45, 1, tzinfo=UTC)
    assert found.subjects == {Identity.PHONE: ("+31612345678",)}


@pytest.mark.parametrize(
    "path",
    [
        "20240709T134501Z_+31612345678_c0001.wav",  # not in a date directory
        "2024/07/09/20240709T134501Z_0612345678_c0001.wav",  # not E.164
        "2024/07/09/20240709T134501Z_+31612345678_c0001.mp3",
        "2024/07/09/20241339T134501Z_+31612345678_c0001.wav",  # no such date
    ],
)
def test_support_recording_paths_not_governed(catalog, path):
    store = _store(catalog, catalog.by_statement_row(6).id, SftpStore)
    assert store.match(path) is None


def test_customer_recording_path(catalog):
    store = _store(catalog, catalog.by_statement_row(13).id, SftpStore)
    assert store.root == "/recordings/customers"
    found = store.match("123/2024/07/09/20240709T134501Z_+31201234567_+31612345678.wav")
    assert found is not None
    assert found.groups["customer_id"] == "123"
    assert found.subjects[Identity.CUSTOMER_ID] == ("123",)
    assert found.subjects[Identity.PHONE] == ("+31201234567", "+31612345678")


# ============================================================================ s3


def test_lawful_intercept_key(catalog):
    store = _store(catalog, catalog.by_statement_row(4).id, S3Store)
    assert (store.bucket, store.versioned) == ("lethe-lawful-intercept", True)
    found = store.match("traffic/telephony/2024/01/31/23.jsonl")
    assert found is not None
    assert found.start == datetime(2024, 1, 31, 23, tzinfo=UTC)
    assert found.end == datetime(2024, 2, 1, 0, tzinfo=UTC)
    assert found.parts["service"] == "telephony"


@pytest.mark.parametrize(
    "key",
    [
        "traffic/fax/2024/01/31/23.jsonl",  # not a listed service
        "traffic/email/2024/13/01/00.jsonl",
        "traffic/email/2024/02/30/00.jsonl",  # no such day
        "traffic/email/2024/01/31/24.jsonl",
        "traffic/email/2024/01/31/23.jsonl.tmp",
        "other/email/2024/01/31/23.jsonl",
    ],
)
def test_lawful_intercept_keys_not_governed(catalog, key):
    store = _store(catalog, catalog.by_statement_row(4).id, S3Store)
    assert store.match(key) is None


def test_lawful_intercept_listing_prefixes(catalog):
    store = _store(catalog, catalog.by_statement_row(4).id, S3Store)
    assert store.prefix_for({}) == "traffic/"
    assert store.prefix_for({"service": "email"}) == "traffic/email/"
    assert store.prefix_for({"service": "email", "yyyy": 2024, "mm": 1}) == "traffic/email/2024/01/"
    assert store.part_values["service"] == ("email", "telephony", "internet")


def test_web_analytics_export_key(catalog):
    store = _store(catalog, catalog.by_statement_row(15).id, S3Store)
    found = store.match("exports/2024/07/09/visits-20240709.csv")
    assert found is not None
    assert (found.start, found.end) == (
        datetime(2024, 7, 9, tzinfo=UTC),
        datetime(2024, 7, 10, tzinfo=UTC),
    )
    # A repeated placeholder must repeat the same value.
    assert store.match("exports/2024/07/09/visits-20240708.csv") is None
    assert store.object_format == "csv"
    assert store.identities == (Identity.VISITOR_ID,)


def test_an_object_is_expired_only_when_all_of_its_period_is(catalog):
    category = catalog.by_statement_row(4)
    store = _store(catalog, category.id, S3Store)
    # 00:00Z is 02:00 in Amsterdam (CEST); six months back is 02:00 CET = 01:00Z.
    cutoff = resolve_cutoff(category, MOMENT).default
    assert cutoff == datetime(2024, 1, 10, 1, tzinfo=UTC)
    last_hour = store.match("traffic/email/2024/01/10/00.jsonl")
    first_hour = store.match("traffic/email/2024/01/10/01.jsonl")
    assert last_hour.end <= cutoff
    assert not first_hour.end <= cutoff


# ============================================================================ protection


def test_every_shipped_store_accounts_for_every_identity_type(catalog):
    """Each type is found by a selector or declared impossible (never_holds), so an ordinary
    hold or restriction never stops a shipped DAG's purge."""
    for category in catalog.categories():
        for store in category.stores:
            covered = [*store.identities, *store.never_holds]
            assert sorted(covered) == sorted(Identity), (category.id, store.location)


def test_lawful_intercept_logs_declare_where_identities_are(catalog):
    category = catalog.by_statement_row(4)
    (store,) = category.stores
    assert category.rights == ()  # protection checks only: no subject request reaches them
    assert {(s.field, s.identity) for s in store.subject} == {
        (field, identity)
        for field in ("from", "to")
        for identity in (Identity.EMAIL, Identity.PHONE, Identity.IP)
    }
    assert Identity.CUSTOMER_ID in store.never_holds
