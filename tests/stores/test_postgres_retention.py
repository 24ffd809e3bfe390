"""PostgresRetentionAdapter against the embedded PostgreSQL: which rows go, which stay.

Every test builds small tables shaped like the reference schema in its own schema
(``lethe_pg_retention_test``), runs a survey and a purge through the real PostgresHook and
checks row by row what is left.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from datetime import UTC, date, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from psycopg import sql

from lethe.domain.cutoffs import Cutoff, cutoff_before
from lethe.domain.protection import Protection
from lethe.exceptions import PurgeError, StoreError
from lethe.policy import Duration
from lethe.policy.vocabulary import Identity
from lethe.stores.postgres import PostgresRetentionAdapter, blocks
from lethe.stores.postgres import connection as pg_connection
from lethe.stores.postgres import purge as retention_module
from lethe.stores.postgres.connection import Progress as blocks_progress
from tests.stores.conftest import CONN_ID, ams, fresh_schema, make_hook, postgres_store, utc

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from lethe.policy.models import PostgresStore
    from tests.stores.conftest import Db

SCHEMA = "lethe_pg_retention_test"


# ================================================================================ fixtures


@pytest.fixture(scope="module")
def db(stack):
    yield from fresh_schema(stack.postgres_dsn, SCHEMA)


def adapter(store: PostgresStore, category, **kwargs) -> PostgresRetentionAdapter:
    return PostgresRetentionAdapter(
        hook=make_hook(store.conn_id), store=store, category=category, **kwargs
    )


store = partial(postgres_store, SCHEMA)


# --------------------------------------------------------------------------- tickets table


TICKET_SUBJECTS = [
    {"column": "contact_email", "identity": "email"},
    {"column": "contact_phone", "identity": "phone"},
    {"column": "customer_id", "identity": "customer_id"},
]


def make_tickets(db: Db, rows: list[tuple[int, int | None, str | None, str | None, Any]]):
    """(ticket_id, customer_id, contact_email, contact_phone, closed_at) rows."""
    db.run("DROP TABLE IF EXISTS {s}.tickets")
    db.run(
        """CREATE TABLE {s}.tickets (
            ticket_id bigint PRIMARY KEY,
            customer_id bigint,
            contact_email text,
            contact_phone text,
            subject text NOT NULL DEFAULT 'question',
            closed_at timestamptz)"""
    )
    db.run("CREATE INDEX ON {s}.tickets (closed_at)")
    db.many(
        "INSERT INTO {s}.tickets (ticket_id, customer_id, contact_email, contact_phone, "
        "closed_at) VALUES (%s, %s, %s, %s, %s)",
        rows,
    )


@pytest.fixture
def tickets_category(catalog):
    return catalog.category("support_tickets")


def tickets_store():
    return store("tickets", ["ticket_id"], {"column": "closed_at"}, TICKET_SUBJECTS)


# ============================================================================ constructor


def test_constructor_validates_and_does_no_io(tickets_category):
    class NoIO:
        def get_conn(self):
            raise AssertionError("the constructor must not connect")

    built = PostgresRetentionAdapter(
        hook=NoIO(), store=tickets_store(), category=tickets_category, batch_size=1
    )
    assert built.batch_size == 1
    assert built.store.table == f"{SCHEMA}.tickets"
    assert built.purge_sessions == 2
    too_few_or_many = [
        ("batch_size", 0),
        ("batch_size", -1),
        ("batch_size", 100_001),
        ("purge_sessions", 0),
        ("purge_sessions", 9),
    ]
    for option, bad in too_few_or_many:
        with pytest.raises(ValueError, match=option):
            PostgresRetentionAdapter(
                hook=NoIO(), store=tickets_store(), category=tickets_category, **{option: bad}
            )
    for option in ("batch_size", "purge_sessions"):
        with pytest.raises(TypeError, match=option):
            PostgresRetentionAdapter(
                hook=NoIO(), store=tickets_store(), category=tickets_category, **{option: True}
            )


# ======================================================================= age and cutoffs


def test_one_second_either_side_of_the_cutoff(db, tickets_category):
    moment = ams(2024, 6, 15, 3)  # the run's logical date
    cut = cutoff_before(moment, tickets_category.retention.period)  # P3Y
    assert cut == utc(2021, 6, 15, 1)
    second = timedelta(seconds=1)
    make_tickets(
        db,
        [
            (1, 10, "a@example.com", None, cut - second),  # expired
            (2, 10, "a@example.com", None, cut),  # exactly at the cutoff: kept
            (3, 11, "b@example.com", None, cut + second),  # kept
            (4, 11, "b@example.com", None, None),  # open ticket: never expires
            (5, 12, None, "+31612345678", utc(2019, 1, 1)),  # long expired
        ],
    )
    retention = adapter(tickets_store(), tickets_category)
    cutoff = Cutoff(default=cut)

    survey = retention.survey(cutoff, Protection())
    assert (survey.total, survey.expired, survey.held, survey.restricted) == (5, 2, 0, 0)
    assert survey.unaged == 1
    assert survey.removable == 2
    assert survey.newest == cut + second
    assert survey.newest.tzinfo is UTC
    assert survey.oldest_removable == utc(2019, 1, 1)

    result = retention.purge(cutoff, Protection())
    assert result.removed == 2
    assert result.batches == 1
    assert db.ids("tickets", "ticket_id") == {2, 3, 4}

    again = retention.purge(cutoff, Protection())
    assert (again.removed, again.batches) == (0, 0)
    after = retention.survey(cutoff, Protection())
    assert (after.total, after.expired, after.oldest_removable) == (3, 0, None)


@pytest.mark.parametrize(
    ("moment", "expected_cutoff", "removed", "kept"),
    [
        # Spring: the week back from 7 April 2024 00:00 CEST is 167 hours long.
        (
            ams(2024, 4, 7),
            utc(2024, 3, 30, 23),
            [utc(2024, 3, 30, 22, 59, 59), utc(2024, 3, 30, 22, 30)],  # 22:30 < 168 h ago
            [utc(2024, 3, 30, 23), utc(2024, 3, 30, 23, 0, 1)],
        ),
        # Autumn: the week back from 3 November 2024 00:00 CET is 169 hours long.
        (
            ams(2024, 11, 3),
            utc(2024, 10, 26, 22),
            [utc(2024, 10, 26, 21, 59, 59)],
            [utc(2024, 10, 26, 22), utc(2024, 10, 26, 22, 0, 1), utc(2024, 10, 26, 22, 30)],
        ),
    ],
    ids=["spring", "autumn"],
)
def test_a_week_across_a_dst_change(db, tickets_category, moment, expected_cutoff, removed, kept):
    cut = cutoff_before(moment, Duration.parse("P7D"))
    assert cut == expected_cutoff
    ages = removed + kept
    make_tickets(db, [(i, 1, None, None, age) for i, age in enumerate(ages)])
    result = adapter(tickets_store(), tickets_category).purge(Cutoff(default=cut), Protection())
    assert result.removed == len(removed)
    left = db.ids("tickets", "ticket_id")
    assert left == set(range(len(removed), len(ages)))
    # A naive 7 x 24 h cutoff would have decided differently for one of these rows.
    naive = moment.astimezone(UTC) - timedelta(days=7)
    assert any((age < naive) != (age < cut) for age in ages)


def test_customer_defined_cutoffs_per_subject(db, tickets_category):
    default = utc(2024, 3, 1)
    longer = utc(2024, 1, 1)  # customer 1 keeps its data longer
    shorter = utc(2024, 5, 1)  # customer 2 keeps it shorter
    make_tickets(
        db,
        [
            (1, 1, None, None, utc(2023, 12, 31, 23, 59, 59)),  # before its own cutoff: goes
            (2, 1, None, None, utc(2024, 2, 1)),  # expired by default, not for customer 1
            (3, 2, None, None, utc(2024, 4, 30)),  # young by default, expired for customer 2
            (4, 2, None, None, utc(2024, 5, 1)),  # exactly at customer 2's cutoff: kept
            (5, 3, None, None, utc(2024, 2, 29, 23, 59, 59)),  # default cutoff: goes
            (6, 3, None, None, utc(2024, 3, 1)),  # kept
            (7, None, None, None, utc(2024, 2, 1)),  # no customer: default applies, goes
        ],
    )
    cutoff = Cutoff(
        default=default,
        per_subject={"1": longer, "2": shorter},
        subject_identity=Identity.CUSTOMER_ID,
    )
    retention = adapter(tickets_store(), tickets_category, batch_size=2)
    survey = retention.survey(cutoff, Protection())
    assert (survey.total, survey.expired) == (7, 4)
    assert survey.oldest_removable == utc(2023, 12, 31, 23, 59, 59)
    result = retention.purge(cutoff, Protection())
    assert result.removed == 4
    assert result.batches == 2
    assert db.ids("tickets", "ticket_id") == {2, 4, 6}
    assert retention.purge(cutoff, Protection()).removed == 0


@pytest.mark.parametrize("per_subject", [False, True])
def test_a_survey_with_nothing_protected_counts_what_the_full_pass_counts(
    db, tickets_category, monkeypatch, per_subject
):
    # With nothing held or restricted the survey's pass takes fewer aggregates (every
    # expired row is removable); the figures and block bounds must be the full pass's.
    # Open tickets (no age), and per-customer cutoffs under which the oldest row is young.
    rows = [(i, i % 3, None, None, utc(2024, 1, 1) + timedelta(days=i)) for i in range(1, 120)]
    rows += [(500, 2, None, None, utc(2023, 1, 1)), (501, 1, None, None, None)]
    rows += [(502, None, None, None, None)]
    make_tickets(db, rows)
    cutoff = Cutoff(
        default=utc(2024, 3, 1),
        per_subject={"1": utc(2024, 2, 1), "2": utc(2022, 1, 1)} if per_subject else {},
        subject_identity=Identity.CUSTOMER_ID if per_subject else None,
    )
    memos: list[retention_module.SurveyMemo] = []
    survey_pass = retention_module.survey

    def keep_memo(*args, **kwargs):
        found, memo = survey_pass(*args, **kwargs)
        memos.append(memo)
        return found, memo

    monkeypatch.setattr(retention_module, "survey", keep_memo)
    retention = adapter(tickets_store(), tickets_category)
    lean = retention.survey(cutoff, Protection())
    plan_of = retention_module.plan
    monkeypatch.setattr(
        retention_module,
        "plan",
        lambda *args, **kwargs: dataclasses.replace(plan_of(*args, **kwargs), protects=True),
    )
    full = retention.survey(cutoff, Protection())

    assert lean == full
    assert memos[0].removable_blocks == memos[1].removable_blocks != {}
    assert (lean.total, lean.unaged) == (len(rows), 2)
    assert 0 < lean.expired < lean.total - lean.unaged
    if per_subject:  # customer 2's row of 2023 is young: the oldest removable is younger
        assert lean.oldest == utc(2023, 1, 1) < lean.oldest_removable


def test_per_subject_cutoffs_need_a_subject_column_of_their_identity(db, tickets_category):
    make_tickets(db, [(1, 1, None, None, utc(2020, 1, 1))])
    cutoff = Cutoff(
        default=utc(2024, 1, 1), per_subject={"x": utc(2023, 1, 1)}, subject_identity=Identity.IP
    )
    retention = adapter(tickets_store(), tickets_category)
    with pytest.raises(StoreError, match="per ip"):
        retention.survey(cutoff, Protection())
    with pytest.raises(PurgeError, match="per ip"):
        retention.purge(cutoff, Protection())
    assert db.ids("tickets", "ticket_id") == {1}


# ================================================================================ joined ages


def make_contracts(db: Db, contracts: list[tuple[int, date | None]], addresses: list[tuple]):
    db.run("DROP TABLE IF EXISTS {s}.addresses")
    db.run("DROP TABLE IF EXISTS {s}.contracts CASCADE")
    db.run(
        "CREATE TABLE {s}.contracts (contract_id bigint PRIMARY KEY, "
        "customer_id bigint NOT NULL DEFAULT 1, ended_at date)"
    )
    db.run(
        "CREATE TABLE {s}.addresses (address_id bigint PRIMARY KEY, "
        "contract_id bigint NOT NULL, customer_id bigint NOT NULL, street text NOT NULL)"
    )
    db.many("INSERT INTO {s}.contracts (contract_id, ended_at) VALUES (%s, %s)", contracts)
    db.many(
        "INSERT INTO {s}.addresses VALUES (%s, %s, 1, 'Damrak ' || %s::text)",
        [(a, c, a) for a, c in addresses],
    )


def addresses_store(via_table: str = "contracts"):
    return store(
        "addresses",
        ["address_id"],
        {
            "via": {
                "table": f"{SCHEMA}.{via_table}",
                "local_column": "contract_id",
                "remote_column": "contract_id",
                "column": "ended_at",
            }
        },
        [
            {"column": "customer_id", "identity": "customer_id"},
            {"column": "contract_id", "identity": "contract_id"},
        ],
    )


def test_until_service_end_ages_from_a_local_date(db, catalog):
    category = catalog.category("delivery_addresses")
    assert category.retention.grace == Duration.parse("P30D")
    moment = utc(2024, 3, 1)  # 01:00 on 1 March in Amsterdam
    cut = cutoff_before(moment, category.retention.grace)
    assert cut == utc(2024, 1, 31)  # 31 January 01:00 CET
    make_contracts(
        db,
        [
            (1, date(2024, 1, 30)),
            # Ended on 31 January: local midnight (30 Jan 23:00 UTC) is before the cutoff.
            # Read as UTC midnight it would not be: this row proves the session time zone.
            (2, date(2024, 1, 31)),
            (3, date(2024, 2, 1)),
            (4, None),  # the service is still running
        ],
        [(1, 1), (2, 2), (3, 3), (4, 4), (5, 99), (6, 1)],  # 99: no contract row at all
    )
    retention = adapter(addresses_store(), category)
    cutoff = Cutoff(default=cut)
    survey = retention.survey(cutoff, Protection())
    assert (survey.total, survey.expired, survey.unaged) == (6, 3, 2)
    assert survey.newest == utc(2024, 1, 31, 23)  # 1 February 00:00 CET
    assert survey.oldest_removable == utc(2024, 1, 29, 23)

    held = Protection(held={Identity.CONTRACT_ID: frozenset({"2"})})
    assert retention.survey(cutoff, held).held == 1
    result = retention.purge(cutoff, held)
    assert result.removed == 2
    assert db.ids("addresses", "address_id") == {2, 3, 4, 5}
    assert retention.purge(cutoff, Protection()).removed == 1
    assert db.ids("addresses", "address_id") == {3, 4, 5}
    assert db.ids("contracts", "contract_id") == {1, 2, 3, 4}  # the anchor stays


def test_a_join_that_would_multiply_rows_is_refused(db, catalog):
    category = catalog.category("delivery_addresses")
    make_contracts(db, [(1, date(2020, 1, 1))], [(1, 1)])
    db.run(
        "CREATE OR REPLACE VIEW {s}.contract_ends AS "
        "SELECT contract_id, ended_at FROM {s}.contracts "
        "UNION ALL SELECT contract_id, ended_at + 1 FROM {s}.contracts"
    )
    retention = adapter(addresses_store("contract_ends"), category)
    cutoff = Cutoff(default=utc(2024, 1, 1))
    with pytest.raises(StoreError, match="21000") as raised:
        retention.survey(cutoff, Protection())
    assert f"{SCHEMA}.addresses" in str(raised.value)
    with pytest.raises(PurgeError, match="21000") as purged:
        retention.purge(cutoff, Protection())
    assert purged.value.removed == 0
    assert db.ids("addresses", "address_id") == {1}
    db.run("DROP VIEW {s}.contract_ends")


# ====================================================================== holds, restrictions

HOSTILE = "x'); DROP TABLE lethe_pg_retention_test.tickets; --"


def test_holds_and_restrictions_are_kept_and_counted_apart(db, tickets_category):
    old = utc(2020, 1, 1)
    make_tickets(
        db,
        [
            (1, 1, "held@example.com", "+31600000001", old),  # held (e-mail)
            (2, 2, "free@example.com", "+31600000002", old),  # restricted (phone)
            (3, 3, "held@example.com", "+31600000002", old),  # held and restricted: held
            (4, 4, "free@example.com", "+31600000004", old),  # removable
            (5, 5, "held@example.com", "+31600000005", utc(2024, 5, 1)),  # young
            (6, 66, "other@example.com", "+31600000006", old),  # restricted (customer id)
            (7, 7, HOSTILE, None, old),  # held by a hostile-looking value
            (8, 8, "o'brien\\@example.com", None, old),  # held, quote and backslash
            (9, 9, None, None, old),  # no subject values at all: removable
        ],
    )
    protection = Protection(
        held={
            Identity.EMAIL: frozenset({"held@example.com", HOSTILE, "o'brien\\@example.com"}),
            Identity.IP: frozenset({"192.0.2.1"}),  # an identity the store does not have
        },
        restricted={
            Identity.PHONE: frozenset({"+31600000002", "'; DROP TABLE x; --"}),
            Identity.CUSTOMER_ID: frozenset({"66", "1 OR 1=1"}),
        },
    )
    retention = adapter(tickets_store(), tickets_category)
    cutoff = Cutoff(default=utc(2024, 1, 1))
    survey = retention.survey(cutoff, protection)
    assert (survey.total, survey.expired, survey.held, survey.restricted) == (9, 8, 4, 2)
    assert survey.removable == 2
    result = retention.purge(cutoff, protection)
    assert result.removed == 2
    assert db.ids("tickets", "ticket_id") == {1, 2, 3, 5, 6, 7, 8}
    assert retention.purge(cutoff, protection).removed == 0

    # A hold on the whole category keeps everything and counts every expired row as held.
    category_hold = Protection(category_held=True, restricted=protection.restricted)
    survey = retention.survey(cutoff, category_hold)
    assert (survey.expired, survey.held, survey.restricted, survey.removable) == (6, 6, 0, 0)
    assert survey.oldest_removable is None
    assert retention.purge(cutoff, category_hold) == retention.purge(cutoff, category_hold)
    assert retention.purge(cutoff, category_hold).removed == 0
    assert len(db.ids("tickets", "ticket_id")) == 7


# ============================================================================== batches


@pytest.mark.parametrize(("rows", "batches"), [(10, 4), (9, 3), (2, 1)])
def test_batches_are_bounded(db, tickets_category, rows, batches):
    make_tickets(
        db, [(i, i, None, None, utc(2020, 1, 1) + timedelta(hours=i)) for i in range(rows)]
    )
    make_young = [(100, 1, None, None, utc(2024, 6, 1))]
    db.many(
        "INSERT INTO {s}.tickets (ticket_id, customer_id, contact_email, contact_phone, "
        "closed_at) VALUES (%s, %s, %s, %s, %s)",
        make_young,
    )
    retention = adapter(tickets_store(), tickets_category, batch_size=3)
    result = retention.purge(Cutoff(default=utc(2024, 1, 1)), Protection())
    assert (result.removed, result.batches) == (rows, batches)
    assert result.details["batch_rows"] == rows
    assert db.ids("tickets", "ticket_id") == {100}


def test_a_purge_after_its_survey_walks_only_the_blocks_holding_removable_rows(
    db, tickets_category, monkeypatch
):
    # Young rows fill the first blocks, expired ones (one of them held) the blocks after.
    rows = [(i, i, None, None, utc(2024, 6, 1)) for i in range(2_000)]
    rows += [(10_000 + i, i, None, None, utc(2020, 1, 1)) for i in range(1_000)]
    rows.append((20_000, 7, "held@example.com", None, utc(2020, 1, 1)))
    make_tickets(db, rows)
    cutoff = Cutoff(default=utc(2024, 1, 1))
    held = Protection(held={Identity.EMAIL: frozenset({"held@example.com"})})
    first, last = db.one(
        "SELECT min((ctid::text::point)[0])::int, max((ctid::text::point)[0])::int "
        "FROM {s}.tickets WHERE closed_at < '2024-01-01' AND contact_email IS NULL"
    )
    assert first > 0  # the young rows come first
    walked: list[tuple[int, int] | None] = []
    walk = retention_module.purge_relation

    def spy(*args, within=None, **kwargs):
        walked.append(within)
        return walk(*args, within=within, **kwargs)

    monkeypatch.setattr(retention_module, "purge_relation", spy)
    retention = adapter(tickets_store(), tickets_category)
    with retention.session():
        survey = retention.survey(cutoff, held)
        result = retention.purge(cutoff, held)
    assert (survey.removable, result.removed) == (1_000, 1_000)
    assert walked == [(first, last)]
    assert db.ids("tickets", "ticket_id") == {*range(2_000), 20_000}

    # Nothing removable left: the next survey's purge walks nothing; a purge without a
    # survey walks the whole table.
    with retention.session():
        retention.survey(cutoff, held)
        assert retention.purge(cutoff, held).removed == 0
    assert walked == [(first, last)]
    assert retention.purge(cutoff, held).removed == 0
    assert walked == [(first, last), None]


def test_no_transaction_removes_more_than_batch_size_rows(db, tickets_category, monkeypatch):
    # Ranges of several blocks hold far more expired rows than batch_size: a range that
    # removed more is rolled back and taken in halves, down to one block at a time.
    make_tickets(
        db, [(i, i, None, None, utc(2020, 1, 1) + timedelta(hours=i)) for i in range(3_000)]
    )
    per_transaction: list[int] = []
    committed = blocks_progress.committed

    def spy(self, count):
        per_transaction.append(count)
        committed(self, count)

    monkeypatch.setattr(blocks_progress, "committed", spy)
    retention = adapter(tickets_store(), tickets_category, batch_size=70)
    result = retention.purge(Cutoff(default=utc(2024, 1, 1)), Protection())
    assert result.removed == sum(per_transaction) == 3_000
    assert max(per_transaction) <= 70
    assert db.ids("tickets", "ticket_id") == set()


# ====================================================================== sessions at once


def test_parts_cover_the_range_once_in_order_each_at_least_the_minimum(monkeypatch):
    monkeypatch.setattr(blocks, "MIN_PART_BLOCKS", 10)
    assert blocks._parts(None, 4) == [None]  # a walk of the whole relation stays whole
    for first, last, sessions, count in [
        (5, 24, 1, 1),
        (5, 23, 2, 1),  # 19 blocks: no room for a second part of 10
        (5, 24, 2, 2),
        (0, 99, 3, 3),
        (7, 107, 8, 8),
        (7, 56, 8, 5),
        (0, 0, 2, 1),
    ]:
        parts = blocks._parts((first, last), sessions)
        assert len(parts) == count
        assert [b for lo, hi in parts for b in range(lo, hi + 1)] == list(range(first, last + 1))
        if count > 1:
            assert min(hi - lo + 1 for lo, hi in parts) >= 10


def _alternating_tickets(db: Db) -> set[int]:
    """6,000 tickets over some 60 blocks, expired and young alternating, one expired ticket
    (4,001) held by its e-mail; :return: the ids a purge must leave."""
    rows = [(i, i, None, None, utc(2020, 1, 1) if i % 2 else utc(2024, 6, 1)) for i in range(6_000)]
    rows[4_001] = (4_001, 4_001, "held@example.com", None, utc(2020, 1, 1))
    make_tickets(db, rows)
    return {i for i in range(0, 6_000, 2)} | {4_001}


HELD_TICKET = Protection(held={Identity.EMAIL: frozenset({"held@example.com"})})


def _sessions_seen(monkeypatch) -> tuple[list[tuple[int, int]], list[Any]]:
    """(backend pid, rows) of every committed unit, and every session the adapter opens."""
    from lethe.stores.postgres import adapter as adapter_module

    units: list[tuple[int, int]] = []
    opened: list[Any] = []
    committing, connect = blocks_progress.committing, adapter_module.connect

    def spy_committing(self, session, count):
        if count:
            units.append((session.conn.info.backend_pid, count))
        committing(self, session, count)

    def spy_connect(*args, **kwargs):
        opened.append(connect(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(blocks_progress, "committing", spy_committing)
    monkeypatch.setattr(adapter_module, "connect", spy_connect)
    return units, opened


@pytest.mark.parametrize("sessions", [1, 3])
def test_a_purge_walks_the_removable_blocks_on_several_sessions_at_once(
    db, tickets_category, monkeypatch, sessions
):
    kept = _alternating_tickets(db)
    monkeypatch.setattr(blocks, "MIN_PART_BLOCKS", 4)
    units, opened = _sessions_seen(monkeypatch)
    retention = adapter(tickets_store(), tickets_category, batch_size=200, purge_sessions=sessions)
    cutoff = Cutoff(default=utc(2024, 1, 1))
    with retention.session():
        survey = retention.survey(cutoff, HELD_TICKET)
        result = retention.purge(cutoff, HELD_TICKET)

    assert survey.removable == result.removed == result.details["batch_rows"] == 2_999
    assert db.ids("tickets", "ticket_id") == kept
    # Every unit counted once, each on one of the purge's sessions, all of them used.
    assert sum(rows for _, rows in units) == 2_999
    assert len(units) == result.batches
    assert max(rows for _, rows in units) <= 200
    assert len({pid for pid, _ in units}) == sessions
    assert len(opened) == 2 + (sessions - 1)  # the survey's, the purge's, the others
    assert all(session.conn.closed for session in opened)


def test_a_purge_walks_on_fewer_sessions_when_the_server_refuses_another(
    db, tickets_category, monkeypatch, caplog
):
    """The login may hold 2 connections: the third session is refused by the server, and
    the purge walks on the two it has instead of failing (and retrying) while connections
    are scarce."""
    import json
    import uuid

    from psycopg.conninfo import conninfo_to_dict

    kept = _alternating_tickets(db)
    login = f"lethe_limited_{uuid.uuid4().hex[:8]}"
    role, schema = sql.Identifier(login), sql.Identifier(SCHEMA)
    db.run(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'limited-pw' CONNECTION LIMIT 2").format(role))
    db.run(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role))
    db.run(sql.SQL("GRANT SELECT, DELETE ON {}.tickets TO {}").format(schema, role))
    params = conninfo_to_dict(db.conn.info.dsn)
    connection = {
        "conn_type": "postgres",
        "host": params.get("host", "127.0.0.1"),
        "port": int(params.get("port", 5432)),
        "login": login,
        "password": "limited-pw",
        "schema": db.conn.info.dbname,
    }
    monkeypatch.setenv("AIRFLOW_CONN_LETHE_LIMITED_TEST", json.dumps(connection))
    monkeypatch.setattr(blocks, "MIN_PART_BLOCKS", 4)
    units, opened = _sessions_seen(monkeypatch)
    retention = PostgresRetentionAdapter(
        hook=make_hook("lethe_limited_test"),
        store=tickets_store(),
        category=tickets_category,
        batch_size=200,
        purge_sessions=3,
    )
    cutoff = Cutoff(default=utc(2024, 1, 1))
    try:
        with retention.session():
            survey = retention.survey(cutoff, HELD_TICKET)
            _wait_until_gone(db, login)  # the survey's backend: the purge may have both
            with caplog.at_level(logging.WARNING, logger="lethe"):
                result = retention.purge(cutoff, HELD_TICKET)
    finally:
        _wait_until_gone(db, login)
        db.run(sql.SQL("DROP OWNED BY {}").format(role))
        db.run(sql.SQL("DROP ROLE {}").format(role))

    assert survey.removable == result.removed == 2_999
    assert db.ids("tickets", "ticket_id") == kept
    assert sum(rows for _, rows in units) == 2_999
    assert len({pid for pid, _ in units}) == 2
    assert all(session.conn.closed for session in opened)
    (warning,) = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("lethe")
    ]
    assert "another session could not be opened" in warning
    assert "walking on 2 session(s) instead of 3" in warning


def _wait_until_gone(db: Db, login: str) -> None:
    for _ in range(100):
        (count,) = db.one("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (login,))
        if count == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"{login} still has {count} sessions")


def test_a_failure_on_one_session_stops_the_walk_and_counts_what_every_session_committed(
    db, tickets_category, monkeypatch
):
    _alternating_tickets(db)
    # The last part's rows cannot all go: a trigger refuses ticket 5,001.
    db.run(
        "CREATE OR REPLACE FUNCTION {s}.refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'refused: %', OLD.contact_email; END $$"
    )
    db.run(
        "CREATE TRIGGER refuse BEFORE DELETE ON {s}.tickets FOR EACH ROW "
        "WHEN (OLD.ticket_id = 5001) EXECUTE FUNCTION {s}.refuse()"
    )
    monkeypatch.setattr(blocks, "MIN_PART_BLOCKS", 4)
    units, opened = _sessions_seen(monkeypatch)
    retention = adapter(tickets_store(), tickets_category, batch_size=200, purge_sessions=3)
    cutoff = Cutoff(default=utc(2024, 1, 1))
    with retention.session():
        retention.survey(cutoff, HELD_TICKET)
        with pytest.raises(PurgeError) as raised:
            retention.purge(cutoff, HELD_TICKET)

    (left,) = db.one("SELECT count(*) FROM {s}.tickets WHERE closed_at < '2024-01-01'")
    gone = 3_000 - left
    assert 0 < gone < 2_999
    assert raised.value.removed == gone == sum(rows for _, rows in units)
    assert f"{gone} rows were removed before the failure" in str(raised.value)
    assert "P0001" in str(raised.value)
    assert "refused" not in str(raised.value)
    assert 5_001 in db.ids("tickets", "ticket_id")
    assert all(session.conn.closed for session in opened)


def test_a_purge_interrupted_while_it_waits_for_the_other_sessions_stops_them(
    db, tickets_category, monkeypatch
):
    """A task killed (SIGTERM: an exception in its main thread) while its own part is done
    and the other sessions still walk: they stop after their transaction in progress."""
    import concurrent.futures

    _alternating_tickets(db)
    monkeypatch.setattr(blocks, "MIN_PART_BLOCKS", 4)
    units, opened = _sessions_seen(monkeypatch)
    spied = blocks_progress.committing

    def slow_off_the_main_thread(self, session, count):
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.02)
        spied(self, session, count)

    class Killed(Exception):
        pass

    def killed_while_waiting(self, timeout=None):
        raise Killed

    monkeypatch.setattr(blocks_progress, "committing", slow_off_the_main_thread)
    monkeypatch.setattr(concurrent.futures.Future, "result", killed_while_waiting)
    retention = adapter(tickets_store(), tickets_category, batch_size=20, purge_sessions=2)
    cutoff = Cutoff(default=utc(2024, 1, 1))
    with retention.session():
        retention.survey(cutoff, HELD_TICKET)
        started = time.monotonic()
        with pytest.raises(Killed):
            retention.purge(cutoff, HELD_TICKET)
    waited = time.monotonic() - started

    (left,) = db.one(
        "SELECT count(*) FROM {s}.tickets WHERE closed_at < '2024-01-01' AND ticket_id <> 4001"
    )
    assert left > 0, f"the other session walked its whole part ({waited:.1f} s)"
    assert sum(rows for _, rows in units) == 2_999 - left
    assert all(session.conn.closed for session in opened)


def test_a_batch_fails_rather_than_waits_behind_another_sessions_row_lock(
    db, tickets_category, stack, monkeypatch
):
    """An application's transaction holds an expired row: the batch that reaches it fails
    after LOCK_TIMEOUT instead of waiting (with its own locks held) until that transaction
    ends; what was committed before stays removed and is counted."""
    _alternating_tickets(db)
    monkeypatch.setattr(pg_connection, "LOCK_TIMEOUT", "200ms")
    lock = db.q("SELECT 1 FROM {s}.tickets WHERE ticket_id = 5001 FOR UPDATE")
    with _held_elsewhere(stack, lock) as still_held:
        retention = adapter(tickets_store(), tickets_category, batch_size=200, purge_sessions=1)
        with pytest.raises(PurgeError, match="55P03") as raised:
            retention.purge(Cutoff(default=utc(2024, 1, 1)), HELD_TICKET)
        held_on = still_held()

    assert held_on, "the lock was released before the purge failed: the purge waited"
    assert "another session held a lock it needed for more than 200ms" in str(raised.value)
    (left,) = db.one("SELECT count(*) FROM {s}.tickets WHERE closed_at < '2024-01-01'")
    assert raised.value.removed == 3_000 - left > 0
    assert 5_001 in db.ids("tickets", "ticket_id")


@contextlib.contextmanager
def _held_elsewhere(stack, statement: sql.Composable) -> Iterator[Callable[[], bool]]:
    """Another session runs ``statement`` and keeps its transaction (and locks) open until
    the block ends, or for 30 s at most: a purge that waits for the locks (no lock
    timeout) then goes on instead of hanging the suite. Yields: is it still held?"""
    other = psycopg.connect(stack.postgres_dsn)
    done = threading.Event()
    given_up = threading.Event()

    def give_up_at_last() -> None:
        if not done.wait(30):
            given_up.set()
            other.rollback()

    watchdog = threading.Thread(target=give_up_at_last, daemon=True)
    try:
        other.execute(statement)
        watchdog.start()
        yield lambda: not given_up.is_set()
    finally:
        done.set()
        if watchdog.is_alive():
            watchdog.join()
        other.close()


def test_batch_progress_is_logged_at_info_with_counts_only(
    db, tickets_category, caplog, monkeypatch
):
    make_tickets(
        db,
        [
            (i, i, f"person{i}@example.com", None, utc(2020, 1, 1) + timedelta(hours=i))
            for i in range(7)
        ],
    )
    retention = adapter(tickets_store(), tickets_category, batch_size=3)

    monkeypatch.setattr(blocks, "PROGRESS_INTERVAL", 0.0)  # every batch, for the test
    with caplog.at_level(logging.INFO, logger="lethe.stores.postgres"):
        result = retention.purge(Cutoff(default=utc(2024, 1, 1)), Protection())

    progress = [r for r in caplog.records if " done: " in r.getMessage()]
    assert result.batches == 3
    assert [r.levelno for r in progress] == [logging.INFO] * 3
    assert progress[-1].getMessage().endswith("batch 3 done: 1 rows in it, 7 so far")
    assert not any("@example.com" in r.getMessage() for r in caplog.records)


def test_batch_progress_is_logged_at_most_every_interval_after_the_first(
    db, tickets_category, caplog
):
    make_tickets(db, [(i, i, None, None, utc(2020, 1, 1) + timedelta(hours=i)) for i in range(7)])
    retention = adapter(tickets_store(), tickets_category, batch_size=3)

    with caplog.at_level(logging.INFO, logger="lethe.stores.postgres"):
        retention.purge(Cutoff(default=utc(2024, 1, 1)), Protection())

    progress = [r.getMessage() for r in caplog.records if " done: " in r.getMessage()]
    assert len(progress) == 1  # the first batch; the others came within 10 s
    assert progress[0].endswith("batch 1 done: 3 rows in it, 3 so far")


def test_a_table_that_is_not_partitioned_is_purged_in_batches(db, tickets_category):
    make_tickets(db, [(1, 1, None, None, utc(2020, 1, 1)), (2, 1, None, None, utc(2024, 6, 1))])
    declared = store(
        "tickets",
        ["ticket_id", "closed_at"],
        {"column": "closed_at"},
        TICKET_SUBJECTS,
        partitioned_by_month=True,
    )
    result = adapter(declared, tickets_category).purge(
        Cutoff(default=utc(2024, 1, 1)), Protection()
    )
    assert (result.removed, result.partitions_dropped, result.batches) == (1, 0, 1)
    assert db.ids("tickets", "ticket_id") == {2}


# ============================================================================== partitions


def make_usage(db: Db, months: list[tuple[int, int]], rows: list[tuple], default: bool = False):
    """A month-partitioned usage table; rows are (record_id, customer_id, caller, started_at)."""
    db.run("DROP TABLE IF EXISTS {s}.usage_records CASCADE")
    db.run(
        """CREATE TABLE {s}.usage_records (
            record_id bigint NOT NULL,
            customer_id bigint NOT NULL,
            caller_number text NOT NULL,
            callee_number text NOT NULL DEFAULT '+31201234567',
            started_at timestamptz NOT NULL,
            PRIMARY KEY (record_id, started_at)
        ) PARTITION BY RANGE (started_at)"""
    )
    db.run("CREATE INDEX ON {s}.usage_records (started_at)")
    for year, month in months:
        upper = date(year + month // 12, month % 12 + 1, 1)
        db.run(
            sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(SCHEMA, f"usage_records_p{year}{month:02d}"),
                sql.Identifier(SCHEMA, "usage_records"),
                sql.Literal(f"{date(year, month, 1)} 00:00:00+00"),
                sql.Literal(f"{upper} 00:00:00+00"),
            )
        )
    if default:
        db.run("CREATE TABLE {s}.usage_records_default PARTITION OF {s}.usage_records DEFAULT")
    db.many(
        "INSERT INTO {s}.usage_records (record_id, customer_id, caller_number, started_at) "
        "VALUES (%s, %s, %s, %s)",
        rows,
    )


def usage_store(catalog) -> PostgresStore:
    real = catalog.category("usage_records").stores[0]
    return store(
        "usage_records",
        list(real.key_columns),
        {"column": "started_at"},
        [
            {"column": "caller_number", "identity": "phone"},
            {"column": "callee_number", "identity": "phone"},
            {"column": "customer_id", "identity": "customer_id"},
        ],
        partitioned_by_month=True,
    )


HELD_PHONE = "+31600000001"


def test_month_partitions_are_dropped_whole(db, catalog):
    category = catalog.category("usage_records")
    cut = cutoff_before(ams(2024, 8, 31), category.retention.period)  # P6M
    assert cut == utc(2024, 2, 28, 23)  # 29 February 00:00 CET
    make_usage(
        db,
        [(2023, 12), (2024, 1), (2024, 2), (2024, 3)],
        [
            (1, 1, HELD_PHONE, utc(2023, 12, 5)),  # held: December is not dropped
            (2, 1, "+31600000002", utc(2023, 12, 6)),  # ... but this row goes in a batch
            (3, 1, "+31600000003", utc(2024, 1, 1)),  # January: wholly expired, dropped
            (4, 1, "+31600000004", utc(2024, 1, 15)),
            (5, 1, "+31600000005", utc(2024, 1, 31, 23, 59, 59)),
            (6, 1, "+31600000006", utc(2024, 2, 28, 22, 59, 59)),  # boundary month: goes
            (7, 1, "+31600000007", utc(2024, 2, 28, 23)),  # at the cutoff: kept
            (8, 1, "+31600000008", utc(2024, 2, 29, 10)),  # kept
            (9, 1, "+31600000009", utc(2024, 2, 1)),  # goes
            (10, 1, "+31600000010", utc(2024, 3, 10)),  # kept
            (11, 1, "+31600000011", utc(2023, 6, 1)),  # default partition: batch only
            (12, 1, "+31600000012", utc(2025, 1, 1)),  # default partition: young, kept
        ],
        default=True,
    )
    retention = adapter(usage_store(catalog), category, batch_size=2)
    cutoff = Cutoff(default=cut)
    protection = Protection(held={Identity.PHONE: frozenset({HELD_PHONE})})

    survey = retention.survey(cutoff, protection)
    assert (survey.total, survey.expired, survey.held, survey.removable) == (12, 8, 1, 7)
    assert survey.oldest_removable == utc(2023, 6, 1)
    assert survey.newest == utc(2025, 1, 1)

    result = retention.purge(cutoff, protection)
    assert result.partitions_dropped == 1
    assert result.details == {"partition_rows": 3, "batch_rows": 4}
    assert result.removed == 7
    # One transaction per leaf that holds removable rows, each within batch_size (the
    # leaves are walked in block ranges; 2024-03 starts after the cutoff and is not read):
    # the default partition (11), 2023-12 (2), 2024-02 (9 and 6).
    assert result.batches == 3
    assert db.ids("usage_records", "record_id") == {1, 7, 8, 10, 12}
    assert not db.exists("usage_records_p202401")
    for kept in ("usage_records_p202312", "usage_records_p202402", "usage_records_p202403"):
        assert db.exists(kept)
    assert db.exists("usage_records_default")

    again = retention.purge(cutoff, protection)
    assert (again.removed, again.partitions_dropped, again.batches) == (0, 0, 0)

    # Once the hold is released, December goes whole.
    released = retention.purge(cutoff, Protection())
    assert (released.removed, released.partitions_dropped) == (1, 1)
    assert not db.exists("usage_records_p202312")
    assert db.ids("usage_records", "record_id") == {7, 8, 10, 12}


def test_every_transaction_and_partition_drop_is_announced_with_its_transaction_id(
    db, catalog, stack
):
    """A purge intent names each unit's transaction before its commit (a dropped partition
    too); the unit's count comes back once it is committed, and the transaction is."""
    category = catalog.category("usage_records")
    make_usage(
        db,
        [(2024, 1), (2024, 2)],
        [
            (1, 1, "+31600000001", utc(2024, 1, 5)),  # January: dropped whole
            (2, 1, "+31600000002", utc(2024, 1, 6)),
            (3, 1, "+31600000003", utc(2024, 2, 1)),  # February: batches of one
            (4, 1, "+31600000004", utc(2024, 2, 2)),
            (5, 1, "+31600000005", utc(2024, 2, 20)),  # young: kept
        ],
    )
    retention = adapter(usage_store(catalog), category, batch_size=1)
    units: list[tuple[int, int, list[int]]] = []

    def removing(count: int, refs):
        told: list[int] = []
        units.append((count, refs.xid, told))
        return told.append

    retention.on_removing = removing
    result = retention.purge(Cutoff(default=utc(2024, 2, 10)), Protection())

    assert (result.removed, result.partitions_dropped) == (4, 1)
    assert [count for count, _, _ in units] == [2, 1, 1]
    assert all(told == [count] for count, _, told in units)
    xids = [xid for _, xid, _ in units]
    assert len(set(xids)) == 3
    with psycopg.connect(stack.postgres_dsn) as conn:
        for xid in xids:
            (status,) = conn.execute(
                "SELECT pg_xact_status(%s::text::xid8)", (str(xid),)
            ).fetchone()
            assert status == "committed"


@pytest.mark.parametrize(
    "cutoff",
    [
        Cutoff(default=utc(2024, 2, 15)),
        Cutoff(default=utc(2024, 3, 1)),  # on a month's bound
        Cutoff(
            default=utc(2024, 2, 15),
            per_subject={"2": utc(2024, 1, 20)},
            subject_identity=Identity.CUSTOMER_ID,
        ),
    ],
    ids=["mid-month", "month-bound", "per-customer"],
)
def test_a_survey_leaf_by_leaf_counts_what_a_survey_row_by_row_counts(
    db, catalog, monkeypatch, cutoff
):
    # Months wholly expired, the boundary month, young months and a default partition
    # holding both: the leaves only counted must add up to the same figures.
    category = catalog.category("usage_records")
    months = [(2023, 11), (2023, 12), (2024, 1), (2024, 2), (2024, 3), (2024, 4)]
    rows = [
        (n, n % 3, f"+3160000{n:04d}", utc(2023, 11, 1) + timedelta(hours=7 * n))
        for n in range(1, 400)
    ]
    rows += [(1_000, 1, "+31600009999", utc(2022, 5, 1)), (1_001, 2, "+3160000", utc(2025, 1, 1))]
    make_usage(db, months, rows, default=True)
    retention = adapter(usage_store(catalog), category)
    counted: list[str] = []
    count_leaf = retention_module._count_leaf

    def spy(session, store, leaf, *, expired):
        counted.append(leaf.name.as_string(None).split(".")[-1].strip('"'))
        return count_leaf(session, store, leaf, expired=expired)

    monkeypatch.setattr(retention_module, "_count_leaf", spy)
    leaf_by_leaf = retention.survey(cutoff, Protection())
    # Only the months wholly on one side of the cutoffs were merely counted.
    assert sorted(counted) == [
        f"usage_records_p{year}{month:02d}"
        for year, month in months
        if utc(year + month // 12, month % 12 + 1, 1) <= cutoff.earliest
        or utc(year, month, 1) >= cutoff.latest
    ]
    monkeypatch.setattr(retention_module, "leaves_by_age", lambda *args: None)
    row_by_row = retention.survey(cutoff, Protection())

    assert leaf_by_leaf == row_by_row
    assert 0 < leaf_by_leaf.expired < leaf_by_leaf.total == len(rows)


def test_partitions_are_dropped_only_before_the_earliest_subject_cutoff(db, catalog):
    category = catalog.category("usage_records")
    make_usage(
        db,
        [(2024, 1), (2024, 2)],
        [
            (1, 1, "+31600000001", utc(2024, 1, 10)),  # customer 1 keeps longer: kept
            (2, 2, "+31600000002", utc(2024, 1, 11)),  # goes, in a batch
            (3, 2, "+31600000003", utc(2024, 2, 10)),  # young by default
        ],
    )
    cutoff = Cutoff(
        default=utc(2024, 2, 1),
        per_subject={"1": utc(2024, 1, 1)},
        subject_identity=Identity.CUSTOMER_ID,
    )
    result = adapter(usage_store(catalog), category).purge(cutoff, Protection())
    assert (result.removed, result.partitions_dropped) == (1, 0)
    assert db.exists("usage_records_p202401")
    assert db.ids("usage_records", "record_id") == {1, 3}


def test_a_partition_drop_fails_rather_than_blocks(db, catalog, stack, monkeypatch):
    monkeypatch.setattr(pg_connection, "LOCK_TIMEOUT", "200ms")
    category = catalog.category("usage_records")
    make_usage(
        db,
        [(2024, 1), (2024, 2), (2024, 3)],
        [
            (1, 1, "+31600000001", utc(2024, 1, 10)),
            (2, 1, "+31600000002", utc(2024, 2, 10)),
            (3, 1, "+31600000003", utc(2024, 3, 10)),
        ],
    )
    # A long report reading February holds its lock.
    report = db.q("SELECT count(*) FROM {s}.usage_records_p202402")
    with _held_elsewhere(stack, report) as still_held:
        with pytest.raises(PurgeError, match="55P03") as raised:
            adapter(usage_store(catalog), category).purge(
                Cutoff(default=utc(2024, 3, 1)), Protection()
            )
        assert still_held(), "the report ended before the purge failed: the drop waited"
    assert raised.value.removed == 1  # January was dropped before February's lock failed
    assert raised.value.failed == 1
    assert "usage_records_p202402" in str(raised.value)
    assert db.exists("usage_records_p202402")
    assert db.ids("usage_records", "record_id") == {2, 3}


# ============================================================================== anonymise


def make_form_entries(db: Db, rows: list[tuple]):
    """(entry_id, full_name, email, phone, ip, submitted_at) rows."""
    db.run("DROP TABLE IF EXISTS {s}.form_entries")
    db.run(
        """CREATE TABLE {s}.form_entries (
            entry_id bigint PRIMARY KEY,
            full_name text NOT NULL,
            email text,
            phone text,
            ip inet,
            attempts integer NOT NULL DEFAULT 1,
            submitted_at timestamptz NOT NULL)"""
    )
    db.many(
        "INSERT INTO {s}.form_entries (entry_id, full_name, email, phone, ip, "
        "submitted_at) VALUES (%s, %s, %s, %s, %s, %s)",
        rows,
    )


def form_store(anonymise: dict) -> PostgresStore:
    return store(
        "form_entries",
        ["entry_id"],
        {"column": "submitted_at"},
        [{"column": "email", "identity": "email"}, {"column": "ip", "identity": "ip"}],
        on_expiry={"anonymise": anonymise},
    )


ANONYMISED = {"full_name": "[removed]", "email": None, "phone": None, "ip": None}


def test_anonymise_is_idempotent(db, tickets_category):
    old = utc(2020, 1, 1)
    make_form_entries(
        db,
        [
            (1, "Anna de Vries", "anna@example.com", "+31611111111", "198.51.100.1", old),
            (2, "Bas Jansen", None, "+31622222222", None, old),
            (3, "Cor Smit", "cor@example.com", None, None, utc(2024, 6, 1)),  # young
            (4, "Dirk Held", "dirk@example.com", None, None, old),  # held (e-mail)
            (5, "[removed]", None, None, None, old),  # already anonymised
            (6, "Eva Visser", None, None, "192.0.2.7", old),  # held by IP, no mask given
        ],
    )
    protection = Protection(
        held={
            Identity.EMAIL: frozenset({"dirk@example.com"}),
            Identity.IP: frozenset({"192.0.2.7"}),
        }
    )
    retention = adapter(form_store(ANONYMISED), tickets_category, batch_size=1)
    cutoff = Cutoff(default=utc(2024, 1, 1))
    survey = retention.survey(cutoff, protection)
    assert (survey.total, survey.expired, survey.held, survey.removable) == (6, 4, 2, 2)

    result = retention.purge(cutoff, protection)
    assert (result.removed, result.batches) == (2, 2)
    assert result.details["anonymised"] == 2
    assert db.ids("form_entries", "entry_id") == {1, 2, 3, 4, 5, 6}  # nothing deleted
    rows = {
        row[0]: row[1:]
        for row in db.rows("SELECT entry_id, full_name, email, phone, ip FROM {s}.form_entries")
    }
    assert rows[1] == rows[2] == rows[5] == ("[removed]", None, None, None)
    assert rows[3] == ("Cor Smit", "cor@example.com", None, None)
    assert rows[4] == ("Dirk Held", "dirk@example.com", None, None)
    assert rows[6][0] == "Eva Visser"

    after = retention.survey(cutoff, protection)
    assert (after.expired, after.held, after.removable) == (2, 2, 0)
    again = retention.purge(cutoff, protection)
    assert (again.removed, again.batches) == (0, 0)


def test_server_errors_name_the_store_and_code_but_echo_no_values(db, tickets_category):
    make_form_entries(db, [(1, "Anna", "anna@example.com", None, None, utc(2020, 1, 1))])
    retention = adapter(
        form_store({"attempts": "'; secret@example.com"}), tickets_category
    )  # not an integer: PostgreSQL's message would echo the value
    with pytest.raises(PurgeError) as raised:
        retention.purge(Cutoff(default=utc(2024, 1, 1)), Protection())
    message = str(raised.value)
    assert "22P02" in message
    assert f"{SCHEMA}.form_entries" in message
    assert CONN_ID in message
    assert "secret" not in message
    assert raised.value.__cause__ is None
    assert raised.value.removed == 0
    assert db.ids("form_entries", "entry_id") == {1}


# ============================================================================ failures


def test_an_unreachable_database_raises_store_error(monkeypatch, tickets_category, stack):
    monkeypatch.setenv(
        "AIRFLOW_CONN_LETHE_UNREACHABLE_DB",
        "postgresql://nobody:secret@127.0.0.1:1/nothing?connect_timeout=2",
    )
    unreachable = tickets_store().model_copy(update={"conn_id": "lethe_unreachable_db"})
    retention = adapter(unreachable, tickets_category)
    with pytest.raises(StoreError, match="'lethe_unreachable_db'") as raised:
        retention.survey(Cutoff(default=utc(2024, 1, 1)), Protection())
    assert "secret" not in str(raised.value)
    with pytest.raises(PurgeError, match="'lethe_unreachable_db'") as purged:
        retention.purge(Cutoff(default=utc(2024, 1, 1)), Protection())
    assert purged.value.removed == 0

    undefined = tickets_store().model_copy(update={"conn_id": "lethe_undefined_db"})
    with pytest.raises(StoreError, match="'lethe_undefined_db'"):
        adapter(undefined, tickets_category).survey(Cutoff(default=utc(2024, 1, 1)), Protection())


def test_the_provider_hands_out_psycopg_3_here(stack):
    conn = make_hook().get_conn()
    try:
        assert isinstance(conn, psycopg.Connection)
    finally:
        conn.close()


def test_a_psycopg2_connection_is_refused_naming_the_connection(db, tickets_category, monkeypatch):
    """The provider falls back to psycopg2 without psycopg 3 or SQLAlchemy 2: every call
    is refused before any SQL runs, and the psycopg2 connection is closed."""
    from airflow.providers.postgres.hooks import postgres as hook_module

    make_tickets(db, [(1, 10, "jan@x.nl", None, utc(2020, 1, 1))])
    monkeypatch.setattr(hook_module, "USE_PSYCOPG3", False)
    opened = []
    real_get_conn = hook_module.PostgresHook.get_conn

    def recording(self):
        conn = real_get_conn(self)
        opened.append(conn)
        return conn

    monkeypatch.setattr(hook_module.PostgresHook, "get_conn", recording)
    retention = adapter(tickets_store(), tickets_category)
    cutoff = Cutoff(default=utc(2024, 1, 1))
    with pytest.raises(StoreError) as surveyed:
        retention.survey(cutoff, Protection())
    message = str(surveyed.value)
    assert repr(CONN_ID) in message
    assert "opened with psycopg2" in message
    assert "requires psycopg 3" in message
    with pytest.raises(PurgeError, match="requires psycopg 3") as purged:
        retention.purge(cutoff, Protection())
    assert purged.value.removed == 0
    with pytest.raises(StoreError, match="requires psycopg 3"):
        retention.erase({Identity.EMAIL: frozenset({"jan@x.nl"})}, Protection())
    assert len(opened) == 3
    assert all(type(conn).__module__.startswith("psycopg2") for conn in opened)
    assert all(conn.closed for conn in opened)
    assert db.ids("tickets", "ticket_id") == {1}


def test_a_missing_table_or_column_is_named(db, tickets_category):
    missing = store("no_such_table", ["id"], {"column": "closed_at"}, [])
    with pytest.raises(StoreError, match=f"{SCHEMA}.no_such_table not found"):
        adapter(missing, tickets_category).survey(Cutoff(default=utc(2024, 1, 1)), Protection())
    make_tickets(db, [])
    wrong = store("tickets", ["ticket_id"], {"column": "resolved_at"}, TICKET_SUBJECTS)
    with pytest.raises(StoreError, match="no column resolved_at"):
        adapter(wrong, tickets_category).survey(Cutoff(default=utc(2024, 1, 1)), Protection())


def test_hostile_identifiers_cannot_reach_the_adapter():
    with pytest.raises(ValueError, match="not a valid identifier"):
        store('tickets"; DROP TABLE x; --', ["ticket_id"], {"column": "closed_at"}, [])
    with pytest.raises(ValueError, match="not a valid identifier"):
        store("tickets", ["ticket_id"], {"column": "closed_at; DROP TABLE x"}, [])
