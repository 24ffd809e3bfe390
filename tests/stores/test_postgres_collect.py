"""PostgresRetentionAdapter.collect against the embedded PostgreSQL: one subject's rows, exactly.

Every test builds tables shaped like the reference schema (``telecom.sql``) in its own
schema (``lethe_pg_collect_test``), points a copy of the catalog's store at them and
collects into an in-memory export sink, then checks row by row what reached the sink:
all of the subject's rows, once each, and nothing of anyone else.
"""

from __future__ import annotations

import dataclasses
import gc
import tracemalloc
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest
from psycopg import sql

from lethe.domain.counts import CollectResult
from lethe.domain.protection import Protection
from lethe.exceptions import StoreError
from lethe.policy.vocabulary import Identity
from lethe.stores.postgres import PostgresRetentionAdapter, connection, predicates
from tests.stores.conftest import (
    CONN_ID,
    JAN,
    JAN_NEIGHBOUR,
    PIET,
    CursorProxy,
    MemoryRowSink,
    SinkFull,
    collect_into,
    create_contact_persons,
    create_usage_records,
    fresh_schema,
    make_hook,
    postgres_adapter,
    postgres_store,
    utc,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from lethe.policy.models import PostgresStore

SCHEMA = "lethe_pg_collect_test"

HOSTILE = ["' OR 1=1 --", "%", "_", "*", "../", ".*", "\\", "jan@x.nl%"]


# ================================================================================ the sink


class MemorySink(MemoryRowSink):
    """The test sink of a table's rows, found by the table."""

    no_files = "a table has no files"

    def table(self, store: PostgresStore) -> list[dict[str, Any]]:
        """The rows written for ``store`` (of any category)."""
        found = [rows for (_, location), rows in self.tables.items() if location == store.table]
        return found[0] if found else []


# ================================================================================ fixtures


@pytest.fixture(scope="module")
def db(stack):
    yield from fresh_schema(stack.postgres_dsn, SCHEMA)


adapter_for = partial(postgres_adapter, SCHEMA)


def collect(adapter, subject: Mapping[Identity, set[str]], protection=None, *, sink=None, **kwargs):
    return collect_into(sink or MemorySink(), adapter, subject, protection, **kwargs)


def ids(rows: list[dict[str, Any]], key: str) -> list[Any]:
    return [row[key] for row in rows]


# =========================================================================== usage records

USAGE_COLUMNS = (
    "record_id",
    "customer_id",
    "contract_id",
    "service",
    "caller_number",
    "callee_number",
    "started_at",
    "duration_seconds",
    "cell_id",
    "charge_cents",
)


@pytest.fixture(scope="module")
def usage(db):
    """Month-partitioned usage records (as in telecom.sql) of a few callers."""
    create_usage_records(db)
    for column in ("caller_number", "callee_number", "customer_id", "contract_id"):
        db.run(
            sql.SQL("CREATE INDEX ON {} ({})").format(
                sql.Identifier(SCHEMA, "usage_records"), sql.Identifier(column)
            )
        )
    rows = [
        # record, customer, contract, caller, callee, month
        (1, 10, 100, JAN, PIET, 1),  # the subject calls
        (2, 20, 200, PIET, JAN, 1),  # the subject is called (another customer's record)
        (3, 10, 100, JAN, JAN, 2),  # the subject calls its own voicemail: once, not twice
        (4, 10, 100, JAN_NEIGHBOUR, PIET, 2),  # one digit off, same customer
        (5, 10, 101, PIET, JAN_NEIGHBOUR, 2),
        (6, 30, 300, PIET, "+31600000000", 1),
        (7, 10, 100, JAN, "+31600000000", 2),
    ]
    rows += [(100 + i, 40, 400, value, PIET, 1) for i, value in enumerate(HOSTILE)]
    db.many(
        "INSERT INTO {s}.usage_records (record_id, customer_id, contract_id, service, "
        "caller_number, callee_number, started_at, duration_seconds, cell_id) "
        "VALUES (%s, %s, %s, 'mobile', %s, %s, %s, 60, 'NL-AMS-1')",
        [(r, cu, co, a, b, utc(2024, m, 10, r % 24)) for r, cu, co, a, b, m in rows],
    )
    return rows


def test_usage_records_of_a_caller_and_callee_each_once_in_column_order(catalog, usage):
    adapter = adapter_for(catalog, "usage_records", "usage_records")
    result, sink = collect(adapter, {Identity.PHONE: {JAN}})

    assert result == CollectResult(rows=4, withheld=0)
    rows = sink.table(adapter.store)
    assert ids(rows, "record_id") == [1, 2, 3, 7]  # ordered by the key columns
    assert sink.columns == {("usage_records", f"{SCHEMA}.usage_records"): USAGE_COLUMNS}
    first = rows[0]
    assert list(first) == list(USAGE_COLUMNS)
    # Values are the driver's Python objects; the sink serialises them.
    assert first["record_id"] == 1
    assert isinstance(first["record_id"], int)
    assert first["started_at"] == utc(2024, 1, 10, 1)
    assert first["started_at"].tzinfo is not None
    assert (first["caller_number"], first["callee_number"]) == (JAN, PIET)
    assert all(JAN in (row["caller_number"], row["callee_number"]) for row in rows)


def test_several_identities_and_columns_are_ored_without_duplicates(catalog, usage):
    adapter = adapter_for(catalog, "usage_records", "usage_records")
    result, sink = collect(
        adapter,
        {Identity.PHONE: {JAN, PIET}, Identity.CONTRACT_ID: {"101"}, Identity.EMAIL: {"a@b.nl"}},
    )
    # Every record with JAN or PIET on either side, or of contract 101; record 5 matches both.
    expected = [1, 2, 3, 4, 5, 6, 7] + [100 + i for i in range(len(HOSTILE))]
    assert ids(sink.table(adapter.store), "record_id") == expected
    assert result.rows == len(expected)


def test_a_customer_id_pulls_the_customers_records_a_phone_does_not(catalog, usage):
    adapter = adapter_for(catalog, "usage_records", "usage_records")
    _, by_customer = collect(adapter, {Identity.CUSTOMER_ID: {"10"}})
    assert ids(by_customer.table(adapter.store), "record_id") == [1, 3, 4, 5, 7]
    _, by_phone = collect(adapter, {Identity.PHONE: {JAN_NEIGHBOUR}})
    assert ids(by_phone.table(adapter.store), "record_id") == [4, 5]


@pytest.mark.parametrize("value", [*HOSTILE, "+3161234567_", "+3161234567%", "+31612345678\x00"])
def test_metacharacters_match_only_themselves(catalog, usage, value):
    adapter = adapter_for(catalog, "usage_records", "usage_records")
    result, sink = collect(adapter, {Identity.PHONE: {value}})
    rows = sink.table(adapter.store)
    exact = [100 + HOSTILE.index(value)] if value in HOSTILE else []
    assert ids(rows, "record_id") == exact
    assert result.rows == len(exact)


def test_customer_ids_are_compared_as_bigint(catalog, usage):
    adapter = adapter_for(catalog, "usage_records", "usage_records")
    # A value bigint cannot hold matches nothing, and does not break the query.
    too_big = "9" * 19
    result, sink = collect(adapter, {Identity.CUSTOMER_ID: {too_big, "30", " 30", "3e1"}})
    assert ids(sink.table(adapter.store), "record_id") == [6]
    assert result.rows == 1
    result, sink = collect(adapter, {Identity.CUSTOMER_ID: {too_big}})
    assert result == CollectResult()
    assert sink.tables == {}


def test_the_query_uses_the_subject_columns_indexes(catalog, usage, db):
    adapter = adapter_for(catalog, "usage_records", "usage_records")
    subject = {Identity.PHONE: frozenset({JAN}), Identity.CUSTOMER_ID: frozenset({"10"})}
    table = _describe(adapter)
    params: dict[str, Any] = {}
    where = predicates.subject_filter(adapter.store, table, subject, params)
    text = where.as_string(db.conn)
    assert "::text" not in text.replace("::text[]", "")  # never a cast of the column
    assert '"t"."customer_id" = ANY(%(subject2)s::bigint[])' in text
    assert params["subject2"] == [10]
    query = sql.SQL("SELECT * FROM {} AS t WHERE {}").format(
        sql.Identifier(SCHEMA, "usage_records"), where
    )
    plan = db.plan(query, params)
    assert "Seq Scan" not in plan
    for index in ("caller_number", "callee_number", "customer_id"):
        assert index in plan


# ============================================================================ holds, restrictions


def test_held_rows_are_withheld_and_counted_restricted_rows_included(catalog, usage):
    adapter = adapter_for(catalog, "usage_records", "usage_records")
    protection = Protection(
        # A hold on the other party of record 1 keeps record 1 out of the subject's export.
        held={Identity.PHONE: frozenset({PIET}), Identity.EMAIL: frozenset({"x@y.nl"})},
        restricted={Identity.PHONE: frozenset({JAN}), Identity.CUSTOMER_ID: frozenset({"10"})},
    )
    result, sink = collect(adapter, {Identity.PHONE: {JAN}}, protection)
    assert ids(sink.table(adapter.store), "record_id") == [3, 7]
    assert result == CollectResult(rows=2, withheld=2)

    # Held through a subject column the request did not ask about (contract 200).
    protection = Protection(held={Identity.CONTRACT_ID: frozenset({"200"})})
    result, sink = collect(adapter, {Identity.PHONE: {JAN}}, protection)
    assert ids(sink.table(adapter.store), "record_id") == [1, 3, 7]
    assert result.withheld == 1


def test_a_category_hold_collects_nothing_and_counts_everything(catalog, usage):
    adapter = adapter_for(catalog, "usage_records", "usage_records")
    result, sink = collect(adapter, {Identity.PHONE: {JAN}}, Protection(category_held=True))
    assert result == CollectResult(rows=0, withheld=4)
    assert sink.tables == {}  # not even an empty table: a hold is never revealed


def test_all_rows_held_leaves_the_sink_as_for_no_rows(catalog, usage):
    adapter = adapter_for(catalog, "usage_records", "usage_records")
    held = Protection(held={Identity.PHONE: frozenset({JAN_NEIGHBOUR})})
    result, held_sink = collect(adapter, {Identity.PHONE: {JAN_NEIGHBOUR}}, held)
    assert result == CollectResult(rows=0, withheld=2)
    result, empty_sink = collect(adapter, {Identity.PHONE: {"+31699999999"}})
    assert result == CollectResult()
    assert held_sink.tables == empty_sink.tables == {}


# ======================================================================= contacts and addresses


@pytest.fixture(scope="module")
def contacts(db):
    """Contact persons (row 1): two customers, three contacts of customer 42."""
    create_contact_persons(db)
    db.run("CREATE INDEX ON {s}.contact_persons (customer_id)")
    db.many(
        "INSERT INTO {s}.contact_persons VALUES (%s, %s, %s, %s, %s, %s)",
        [
            (1, 42, "Jan", JAN, "jan@x.nl", utc(2024, 1, 1)),
            (2, 42, "Jan (typo)", None, "jan@x.n1", utc(2024, 1, 2)),
            (3, 42, "Marie", JAN_NEIGHBOUR, "marie@x.nl", utc(2024, 1, 3)),
            (4, 43, "Jan elsewhere", None, "jan@x.nl.evil.example", utc(2024, 1, 4)),
            (5, 43, "Upper", None, "JAN@X.NL", utc(2024, 1, 5)),  # Jan, typed in capitals
            (6, 43, "Wild", "%", "%", utc(2024, 1, 6)),
        ],
    )


def test_a_contacts_email_does_not_pull_the_customers_other_contacts(catalog, contacts):
    adapter = adapter_for(catalog, "customer_contact_persons", "contact_persons")
    result, sink = collect(adapter, {Identity.EMAIL: {"jan@x.nl"}})
    rows = sink.table(adapter.store)
    assert ids(rows, "contact_id") == [1, 5]  # e-mail addresses match in any case
    assert result.rows == 2
    assert list(rows[0]) == [
        "contact_id",
        "customer_id",
        "full_name",
        "phone",
        "email",
        "created_at",
    ]

    _, sink = collect(adapter, {Identity.EMAIL: {"jan@x.n1"}, Identity.PHONE: {JAN}})
    assert ids(sink.table(adapter.store), "contact_id") == [1, 2]

    # Only a customer id in the subject pulls every contact of that customer.
    _, sink = collect(adapter, {Identity.EMAIL: {"jan@x.nl"}, Identity.CUSTOMER_ID: {"42"}})
    assert ids(sink.table(adapter.store), "contact_id") == [1, 2, 3, 5]


def test_email_columns_match_case_insensitively_and_holds_too(catalog, contacts):
    adapter = adapter_for(catalog, "customer_contact_persons", "contact_persons")
    # The subject's value in any case finds the address stored in any case.
    _, sink = collect(adapter, {Identity.EMAIL: {"Jan@X.nl"}})
    assert ids(sink.table(adapter.store), "contact_id") == [1, 5]
    # A hold typed in capitals keeps both rows out of the export, and counts them.
    held = Protection(held={Identity.EMAIL: frozenset({"JAN@x.NL"})})
    result, sink = collect(adapter, {Identity.EMAIL: {"jan@x.nl"}}, held)
    assert result == CollectResult(withheld=2)
    assert sink.tables == {}


def test_the_email_lookup_uses_an_expression_index_on_lower(catalog, contacts, db):
    """Operators create ``lower(<email column>)`` indexes (docs/data-model.md); the
    subject filter is written so that such an index serves it."""
    db.run(
        "CREATE INDEX IF NOT EXISTS contact_persons_email_lower_idx "
        "ON {s}.contact_persons (lower(email))"
    )
    adapter = adapter_for(catalog, "customer_contact_persons", "contact_persons")
    params: dict[str, Any] = {}
    where = predicates.subject_filter(
        adapter.store, _describe(adapter), {Identity.EMAIL: frozenset({"jan@x.nl"})}, params
    )
    query = sql.SQL("SELECT * FROM {} AS t WHERE {}").format(
        sql.Identifier(SCHEMA, "contact_persons"), where
    )
    plan = db.plan(query, params)
    assert "contact_persons_email_lower_idx" in plan
    assert "Seq Scan" not in plan


@pytest.mark.parametrize("value", HOSTILE)
def test_email_metacharacters_match_only_themselves(catalog, contacts, value):
    adapter = adapter_for(catalog, "customer_contact_persons", "contact_persons")
    _, sink = collect(adapter, {Identity.EMAIL: {value}, Identity.PHONE: {value}})
    assert ids(sink.table(adapter.store), "contact_id") == ([6] if value == "%" else [])


def test_a_store_without_columns_of_the_subjects_identities_is_skipped(catalog):
    class NoIO:
        def get_conn(self):
            raise AssertionError("no connection for a store the subject has no identity in")

    category = catalog.category("customer_contact_persons")
    adapter = PostgresRetentionAdapter(hook=NoIO(), store=category.stores[0], category=category)
    sink = MemorySink()
    assert adapter.collect(
        {Identity.VISITOR_ID: frozenset({"v-12345678"})}, Protection(), sink
    ) == (CollectResult())
    assert adapter.collect({Identity.EMAIL: frozenset()}, Protection(), sink) == CollectResult()
    assert sink.tables == {}


# ================================================================================ inet columns


@pytest.fixture(scope="module")
def devices(db):
    """Managed devices (row 8) with inet addresses, some stored with a netmask."""
    db.run(
        """CREATE TABLE {s}.managed_devices (
            device_id bigint PRIMARY KEY, contract_id bigint NOT NULL, customer_id bigint NOT NULL,
            device_type text NOT NULL, internal_ip inet, public_ip inet,
            installed_software text[] NOT NULL DEFAULT '{{}}')"""
    )
    db.run("CREATE INDEX ON {s}.managed_devices (internal_ip)")
    db.run("CREATE INDEX ON {s}.managed_devices (public_ip)")
    db.many(
        "INSERT INTO {s}.managed_devices VALUES (%s, 1, 1, 'router', %s, %s, %s)",
        [
            (1, "10.0.0.5/24", "192.0.2.10", ["fw 1.2"]),  # host with a netmask
            (2, "10.0.0.6/24", "192.0.2.10/32", []),
            (3, "10.0.0.50", "192.0.2.100", []),  # 10.0.0.5 is a prefix of its text
            (4, "10.0.0.0/24", "192.0.2.1", []),  # the network 10.0.0.5 is in
            (5, "2001:db8::1/64", None, []),
            (6, "2001:db8::10", "::ffff:10.0.0.5", []),
            (7, None, "10.0.0.5", []),
        ],
    )


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.0.5", [1, 7]),
        ("192.0.2.10", [1, 2]),
        ("10.0.0.0", [4]),
        ("2001:db8::1", [5]),
        ("::ffff:10.0.0.5", [6]),
        ("10.0.0", []),  # not an address: no match, no error
        ("10.0.0.5/24", []),
    ],
)
def test_inet_columns_match_the_host_address_exactly(catalog, devices, address, expected):
    adapter = adapter_for(catalog, "managed_devices", "managed_devices")
    result, sink = collect(adapter, {Identity.IP: {address}})
    rows = sink.table(adapter.store)
    assert ids(rows, "device_id") == expected
    assert result.rows == len(expected)
    if expected == [1, 7]:
        assert rows[0]["installed_software"] == ["fw 1.2"]


def test_an_inet_lookup_uses_the_index(catalog, devices, db):
    adapter = adapter_for(catalog, "managed_devices", "managed_devices")
    params: dict[str, Any] = {}
    where = predicates.subject_filter(
        adapter.store, _describe(adapter), {Identity.IP: frozenset({"10.0.0.5"})}, params
    )
    assert "::inet[]" in where.as_string(db.conn)
    assert params["subject0"][0] == "10.0.0.5/0"
    assert params["subject0"][-1] == "10.0.0.5/32"
    query = sql.SQL("SELECT * FROM {} AS t WHERE {}").format(
        sql.Identifier(SCHEMA, "managed_devices"), where
    )
    plan = db.plan(query, params)
    assert "Seq Scan" not in plan
    assert "internal_ip" in plan
    assert "public_ip" in plan


def test_a_held_address_withholds_the_device(catalog, devices):
    adapter = adapter_for(catalog, "managed_devices", "managed_devices")
    protection = Protection(held={Identity.IP: frozenset({"192.0.2.10"})})
    result, sink = collect(adapter, {Identity.IP: {"10.0.0.5"}}, protection)
    assert ids(sink.table(adapter.store), "device_id") == [7]
    assert result == CollectResult(rows=1, withheld=1)


# ============================================================================== streaming


#: The subject whose rows the streaming tests collect, and one with a fifth as many.
BIG_VISITOR, BIG_ROWS = "visitor-000001", 12_000
SMALL_VISITOR, SMALL_ROWS = "visitor-small", 2_000


@pytest.fixture(scope="module")
def visits(db):
    """12 000 visits of one visitor (about 12 MB as Python rows), 2 000 of another and 100
    of a third ("other-visitor")."""
    db.run(
        """CREATE TABLE {s}.web_visits (
            visit_id bigint PRIMARY KEY, visitor_id text NOT NULL, ip_address inet,
            user_agent text, page_path text NOT NULL, visited_at timestamptz NOT NULL)"""
    )
    db.run("CREATE INDEX ON {s}.web_visits (visitor_id)")
    db.run(
        "INSERT INTO {s}.web_visits SELECT g, CASE WHEN g <= 100 THEN 'other-visitor' "  # noqa: S608
        f"WHEN g <= {100 + SMALL_ROWS} THEN '{SMALL_VISITOR}' ELSE '{BIG_VISITOR}' END, "
        "'192.0.2.7', repeat('Mozilla/5.0 ', 20), "
        "'/tarieven/' || g, timestamptz '2024-01-01 00:00+00' + g * interval '1 second' "
        f"FROM generate_series(1, {100 + SMALL_ROWS + BIG_ROWS}) AS g"
    )
    db.run("ANALYZE {s}.web_visits")
    return BIG_ROWS


def _peak_of_collect(adapter, visitor: str) -> tuple[CollectResult, MemorySink, int]:
    """Collect ``visitor``'s rows into a sink that keeps none; the peak traced memory."""
    sink = MemorySink(keep=False)
    gc.collect()
    tracemalloc.start()
    try:
        result = adapter.collect({Identity.VISITOR_ID: frozenset({visitor})}, Protection(), sink)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, sink, peak


def test_peak_memory_does_not_grow_with_the_subjects_rows(catalog, visits):
    adapter = adapter_for(catalog, "web_statistics", "web_visits")
    small, small_sink, small_peak = _peak_of_collect(adapter, SMALL_VISITOR)
    big, big_sink, big_peak = _peak_of_collect(adapter, BIG_VISITOR)
    assert (small, small_sink.written) == (CollectResult(rows=SMALL_ROWS), SMALL_ROWS)
    assert (big, big_sink.written) == (CollectResult(rows=visits), visits)
    # Each row is ~400 bytes of data (~1 KB as Python objects): the 10 000 more rows of
    # the second subject would add ~10 MB if held at once; the peak stays where it was.
    mb = 1024 * 1024
    assert big_peak < small_peak + 2 * mb, f"{small_peak / mb:.1f} -> {big_peak / mb:.1f} MB"
    assert big_peak < 8 * mb, f"peak {big_peak / mb:.1f} MB"


def test_rows_reach_the_sink_batch_by_batch(catalog, visits, db, monkeypatch):
    fetched: list[int] = []
    real_session = connection.session

    class Spy(CursorProxy):
        def fetchmany(self, size):
            rows = self.cursor.fetchmany(size)
            fetched.append(len(rows))
            return rows

    def spying(conn):
        found = real_session(conn)
        return dataclasses.replace(found, named=lambda name: Spy(found.named(name)))

    monkeypatch.setattr(connection, "session", spying)
    adapter = adapter_for(catalog, "web_statistics", "web_visits")
    adapter.collect_batch_size = 500
    seen: list[str] = []

    def server_side() -> None:
        # While the sink writes, the adapter's session is fetching from its named cursor.
        with db.conn.cursor() as cur:
            cur.execute(
                "SELECT query FROM pg_stat_activity WHERE query LIKE 'FETCH %%lethe_collect%%' "
                "AND pid <> pg_backend_pid()"
            )
            seen.extend(row[0] for row in cur.fetchall())

    sink = MemorySink(fail_after=1200, on_first_row=server_side)
    with pytest.raises(SinkFull):  # the sink's own error passes unchanged
        adapter.collect({Identity.VISITOR_ID: frozenset({BIG_VISITOR})}, Protection(), sink)
    assert sink.written == 1200
    assert fetched == [500, 500, 500]  # 1 500 of 12 000 rows ever left the server
    assert len(seen) == 1
    assert "500" in seen[0]
    # The connection was released: a new collect works.
    adapter.collect_batch_size = 2_000
    result, _ = collect(adapter, {Identity.VISITOR_ID: {"other-visitor"}})
    assert result.rows == 100


# ================================================================================ errors


def test_errors_name_the_table_and_connection_never_values(catalog, db):
    db.run("CREATE TABLE {s}.odd (id bigint PRIMARY KEY, customer_ref uuid, at timestamptz)")
    db.run("INSERT INTO {s}.odd VALUES (1, gen_random_uuid(), now())")
    category = catalog.category("support_tickets")
    store = postgres_store(
        SCHEMA,
        "odd",
        ["id"],
        {"column": "at"},
        [{"column": "customer_ref", "identity": "visitor_id"}],
    )
    adapter = PostgresRetentionAdapter(hook=make_hook(), store=store, category=category)
    secret = "jan.secret.visitor"
    with pytest.raises(StoreError) as raised:
        adapter.collect({Identity.VISITOR_ID: frozenset({secret})}, Protection(), MemorySink())
    message = str(raised.value)
    assert f"{SCHEMA}.odd" in message
    assert repr(CONN_ID) in message
    assert "22P02" in message
    assert secret not in message

    missing = adapter_for(catalog, "support_tickets", "no_such_table")
    with pytest.raises(StoreError, match="not found through connection 'lethe_telecom_db'"):
        missing.collect({Identity.EMAIL: frozenset({secret})}, Protection(), MemorySink())


# ================================================================================ helpers


def _describe(adapter: PostgresRetentionAdapter):
    session = connection.connect(adapter.hook, adapter.store, StoreError)
    try:
        return adapter._describe(session)
    finally:
        session.close()


def test_every_email_column_of_the_reference_schema_has_the_index_its_lookup_uses(catalog, db):
    """telecom.sql indexes lower(<e-mail column>) for each e-mail column the policies name,
    and the subject filter of every such store is served by that index."""
    from lethe_dev.synthetic import apply_reference_schema

    apply_reference_schema(make_hook())
    checked = set()
    for category in catalog.categories():
        for store in category.stores:
            if store.kind != "postgres" or not store.table.startswith("telecom."):
                continue
            for selector in store.subject:
                if selector.identity != Identity.EMAIL:
                    continue
                adapter = PostgresRetentionAdapter(hook=make_hook(), store=store, category=category)
                params: dict[str, Any] = {}
                where = predicates.subject_filter(
                    adapter.store,
                    _describe(adapter),
                    {Identity.EMAIL: frozenset({"jan@x.nl"})},
                    params,
                )
                schema, table = store.table.split(".")
                query = sql.SQL("SELECT * FROM {} AS t WHERE {}").format(
                    sql.Identifier(schema, table), where
                )
                plan = db.plan(query, params)
                assert f"{table}_email_lower_idx" in plan, (store.table, plan)
                assert "Seq Scan" not in plan, (store.table, plan)
                checked.add(store.table)
    assert {"telecom.contact_persons", "telecom.support_tickets"} <= checked
