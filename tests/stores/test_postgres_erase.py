"""PostgresRetentionAdapter resolve, erase and rectify against the embedded PostgreSQL.

Every test builds tables shaped like the reference schema (``telecom.sql``) in its own
schema (``lethe_pg_erase_test``), points a copy of the catalog's store at them and checks
row by row what a subject request changed: exactly the subject's rows, nothing of near
twins (one character off) or of colleagues at the same customer, held rows kept and
counted, a second call finding nothing.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import TYPE_CHECKING

import pytest

from lethe.domain.counts import EraseResult, RectifyResult
from lethe.domain.identities import value_hash
from lethe.domain.protection import Protection
from lethe.exceptions import PurgeError, StoreError
from lethe.policy.vocabulary import Identity
from lethe.stores.postgres import PostgresRetentionAdapter, connection, erasure
from tests.stores.conftest import (
    JAN,
    JAN_NEIGHBOUR,
    PIET,
    CursorProxy,
    create_contact_persons,
    create_usage_records,
    erase,
    fresh_schema,
    frozen,
    make_hook,
    postgres_adapter,
    postgres_store,
    utc,
)

if TYPE_CHECKING:
    from lethe.policy.models import PostgresStore
    from tests.stores.conftest import Db

SCHEMA = "lethe_pg_erase_test"


# ================================================================================ fixtures


@pytest.fixture(scope="module")
def db(stack):
    yield from fresh_schema(stack.postgres_dsn, SCHEMA)


class NoIO:
    """A hook that must never be asked for a connection."""

    def get_conn(self):
        raise AssertionError("no connection expected")


adapter_for = partial(postgres_adapter, SCHEMA)


def rectify(adapter, subject, changes, protection=None) -> RectifyResult:
    return adapter.rectify(frozen(subject), changes, protection or Protection())


# ================================================================================ contacts


CONTACTS = [
    # contact, customer, name, phone, email
    (1, 42, "Jan", JAN, "jan@x.nl"),  # the subject
    (2, 42, "Jan (typo)", None, "jan@x.n1"),  # one character off
    (3, 42, "Marie", JAN_NEIGHBOUR, "marie@x.nl"),  # a colleague, phone one digit off
    (4, 43, "Jan elsewhere", None, "jan@x.nl.evil.example"),
    (5, 43, "Upper", None, "JAN@X.NL"),  # the subject's address typed in capitals
    (6, 44, "Jan again", JAN, "Jan.Again@Example.COM"),  # the subject's phone at another customer
    (7, 44, "Wild", "%", "%"),
    (8, 45, "Bad", PIET, "not-an-e-mail"),  # a stored value that is no valid identity
]


@pytest.fixture
def contacts(db):
    """Contact persons (row 1): four customers; the subject at two of them."""
    db.run("DROP TABLE IF EXISTS {s}.contact_persons")
    create_contact_persons(db)
    db.many(
        "INSERT INTO {s}.contact_persons VALUES (%s, %s, %s, %s, %s, %s)",
        [(*row, utc(2024, 1, row[0])) for row in CONTACTS],
    )
    return db


def contact_ids(db: Db) -> set[int]:
    return {row[0] for row in db.rows("SELECT contact_id FROM {s}.contact_persons")}


def contacts_adapter(catalog, **kwargs) -> PostgresRetentionAdapter:
    return adapter_for(catalog, "customer_contact_persons", "contact_persons", **kwargs)


# ================================================================================ resolve


def test_resolve_follows_the_declared_links_and_normalises(catalog, contacts):
    adapter = contacts_adapter(catalog)
    # email -> phone, customer_id; the near twins reveal nothing, the address typed in
    # capitals is the subject's (its customer 43 comes along).
    found = adapter.resolve(frozen({Identity.EMAIL: {"jan@x.nl"}}))
    assert found == {Identity.PHONE: {JAN}, Identity.CUSTOMER_ID: {"42", "43"}}
    # phone -> email, customer_id: the subject's other row reveals a second address,
    # normalised (lower case); a colleague's row (phone one digit off) reveals nothing.
    found = adapter.resolve(frozen({Identity.PHONE: {JAN}}))
    assert found == {
        Identity.EMAIL: {"jan@x.nl", "jan.again@example.com"},
        Identity.CUSTOMER_ID: {"42", "44"},
    }
    # A stored value that is not a valid identity is left out, not returned raw.
    assert adapter.resolve(frozen({Identity.PHONE: {PIET}})) == {Identity.CUSTOMER_ID: {"45"}}
    assert adapter.resolve(frozen({Identity.PHONE: {"+31699999999"}})) == {}


def test_resolve_reveals_only_what_the_link_names(catalog, db):
    """Support tickets link e-mail and phone to each other, never to the customer id."""
    db.run("DROP TABLE IF EXISTS {s}.support_tickets")
    db.run(
        """CREATE TABLE {s}.support_tickets (
            ticket_id bigint PRIMARY KEY, customer_id bigint, contact_name text,
            contact_email text, contact_phone text, subject text NOT NULL, body text NOT NULL,
            opened_at timestamptz NOT NULL, closed_at timestamptz)"""
    )
    db.many(
        "INSERT INTO {s}.support_tickets VALUES (%s, %s, 'n', %s, %s, 's', 'b', now(), NULL)",
        [(1, 42, "jan@x.nl", JAN), (2, 42, "marie@x.nl", PIET), (3, 43, "jan@x.nl", None)],
    )
    adapter = adapter_for(catalog, "support_tickets", "support_tickets")
    assert adapter.resolve(frozen({Identity.EMAIL: {"jan@x.nl"}})) == {Identity.PHONE: {JAN}}
    # The customer id is a subject column but no link starts from it: nothing, no query.
    none = adapter_for(catalog, "support_tickets", "support_tickets", hook=NoIO())
    assert none.resolve(frozen({Identity.CUSTOMER_ID: {"42"}})) == {}


@pytest.fixture
def handsets(db):
    db.run("DROP TABLE IF EXISTS {s}.voip_handsets")
    db.run(
        """CREATE TABLE {s}.voip_handsets (
            handset_id bigint PRIMARY KEY, contract_id bigint NOT NULL,
            customer_id bigint NOT NULL, extension text NOT NULL, ip_address inet,
            mac_address macaddr)"""
    )
    db.many(
        "INSERT INTO {s}.voip_handsets VALUES (%s, %s, %s, %s, %s, %s)",
        [
            (1, 100, 10, JAN, "10.0.0.5/24", "08-00-2B-01-02-03"),
            (2, 100, 10, JAN, "10.0.0.6", None),
            (3, 100, 10, JAN_NEIGHBOUR, "10.0.0.7", "08:00:2b:01:02:04"),
            (4, 200, 20, PIET, "10.0.0.5", "0800.2b01.0205"),
        ],
    )
    return db


def test_resolve_gives_mac_addresses_and_ids_in_identity_form(catalog, handsets):
    adapter = adapter_for(catalog, "voip_handsets", "voip_handsets")
    found = adapter.resolve(frozen({Identity.PHONE: {JAN}}))
    # phone -> mac, customer_id, contract_id; never the IP address (not in the link).
    assert found == {
        Identity.MAC: {"08:00:2b:01:02:03"},
        Identity.CUSTOMER_ID: {"10"},
        Identity.CONTRACT_ID: {"100"},
    }
    found = adapter.resolve(frozen({Identity.PHONE: {PIET, "+31600000000"}}))
    assert found[Identity.MAC] == {"08:00:2b:01:02:05"}
    # No link starts from an IP address or a MAC address: no connection at all.
    none = adapter_for(catalog, "voip_handsets", "voip_handsets", hook=NoIO())
    assert none.resolve(frozen({Identity.IP: {"10.0.0.5"}, Identity.EMAIL: {"a@b.nl"}})) == {}


def test_stores_without_links_reveal_nothing(catalog):
    adapter = adapter_for(catalog, "usage_records", "usage_records", hook=NoIO())
    assert adapter.resolve(frozen({Identity.PHONE: {JAN}})) == {}


# ================================================================================ erase


def test_erase_removes_the_subjects_rows_and_nothing_else(catalog, contacts):
    adapter = contacts_adapter(catalog)
    result = erase(adapter, {Identity.EMAIL: {"jan@x.nl"}, Identity.PHONE: {JAN}})
    assert result == EraseResult(removed=3)  # 1 by both, 5 by the e-mail, 6 by the phone
    assert contact_ids(contacts) == {2, 3, 4, 7, 8}
    # A second erase finds nothing.
    assert erase(adapter, {Identity.EMAIL: {"jan@x.nl"}, Identity.PHONE: {JAN}}) == EraseResult()


def test_a_customer_id_in_the_subject_erases_the_customers_rows(catalog, contacts):
    adapter = contacts_adapter(catalog)
    result = erase(adapter, {Identity.EMAIL: {"jan@x.nl"}, Identity.CUSTOMER_ID: {"42"}})
    assert result == EraseResult(removed=4)  # every contact of customer 42, and 5
    assert contact_ids(contacts) == {4, 6, 7, 8}


@pytest.mark.parametrize("value", ["%", "_", "' OR 1=1 --", "jan@x.nl%", "JAN@X.NL"])
def test_erase_matches_values_exactly(catalog, contacts, value):
    adapter = contacts_adapter(catalog)
    result = erase(adapter, {Identity.EMAIL: {value}})
    expected = {"%": {7}, "JAN@X.NL": {1, 5}}.get(value, set())
    assert result.removed == len(expected)
    assert contact_ids(contacts) == {row[0] for row in CONTACTS} - expected


def test_held_rows_stay_and_are_counted(catalog, contacts):
    adapter = contacts_adapter(catalog)
    subject = {Identity.EMAIL: {"jan@x.nl"}, Identity.PHONE: {JAN}}
    # Held through a column the request did not ask about (customer 44).
    protection = Protection(held={Identity.CUSTOMER_ID: frozenset({"44"})})
    assert erase(adapter, subject, protection) == EraseResult(removed=2, withheld=1)
    assert contact_ids(contacts) == {2, 3, 4, 6, 7, 8}
    assert erase(adapter, subject, protection) == EraseResult(withheld=1)
    # A hold on the whole category keeps every row and counts the subject's.
    assert erase(adapter, subject, Protection(category_held=True)) == EraseResult(withheld=1)
    assert contact_ids(contacts) == {2, 3, 4, 6, 7, 8}


def test_a_store_without_the_subjects_identities_is_not_touched(catalog):
    adapter = contacts_adapter(catalog, hook=NoIO())
    assert erase(adapter, {Identity.VISITOR_ID: {"visitor-0001"}}) == EraseResult()
    assert erase(adapter, {Identity.EMAIL: set()}) == EraseResult()


@pytest.fixture
def usage(db):
    """Month-partitioned usage records; January holds only the subject's records."""
    db.run("DROP TABLE IF EXISTS {s}.usage_records")
    create_usage_records(db)
    rows = [
        # record, customer, contract, caller, callee, month
        (1, 10, 100, JAN, PIET, 1),
        (2, 20, 200, PIET, JAN, 1),  # another customer's record of a call to the subject
        (3, 10, 100, JAN, JAN, 1),
        (4, 10, 100, JAN_NEIGHBOUR, PIET, 2),  # one digit off, same customer
        (5, 10, 100, JAN, "+31600000000", 2),
        (6, 30, 300, PIET, "+31600000000", 2),
        (7, 10, 100, "+31600000000", JAN, 2),
    ]
    db.many(
        "INSERT INTO {s}.usage_records (record_id, customer_id, contract_id, service, "
        "caller_number, callee_number, started_at, duration_seconds) "
        "VALUES (%s, %s, %s, 'mobile', %s, %s, %s, 60)",
        [(r, cu, co, a, b, utc(2024, m, 10, r)) for r, cu, co, a, b, m in rows],
    )
    return db


def test_partitioned_records_go_in_batches_and_no_partition_is_dropped(catalog, usage, monkeypatch):
    deletes: list[int] = []
    real_session = connection.session

    class Spy(CursorProxy):
        def execute(self, query, params=None):
            if "DELETE" in repr(query):
                deletes.append(len(params["key0"]))
            return self.cursor.execute(query, params)

    def spying(conn):
        found = real_session(conn)
        return dataclasses.replace(found, cursor=lambda: Spy(found.cursor()))

    monkeypatch.setattr(connection, "session", spying)
    adapter = adapter_for(catalog, "usage_records", "usage_records")
    adapter.erase_batch_size = 2
    result = erase(adapter, {Identity.PHONE: {JAN}})
    assert result == EraseResult(removed=5)
    assert deletes == [2, 2, 1]  # bounded batches, one transaction each
    remaining = {row[0] for row in usage.rows("SELECT record_id FROM {s}.usage_records")}
    assert remaining == {4, 6}
    # January is empty now, but a partition is never dropped for one subject.
    assert usage.exists("usage_records_p202401")
    assert erase(adapter, {Identity.PHONE: {JAN}}) == EraseResult()


def test_a_failing_batch_reports_what_was_erased_before(catalog, usage, monkeypatch):
    adapter = adapter_for(catalog, "usage_records", "usage_records")
    adapter.erase_batch_size = 2
    real = erasure._erase_batches

    def fail_in_second_batch(session, store, table, where, held, params, size, progress):
        original = session.cursor
        calls = {"n": 0}

        class Failing(CursorProxy):
            def execute(self, query, params=None):
                if "DELETE" in repr(query):
                    calls["n"] += 1
                    if calls["n"] == 2:
                        # A statement PostgreSQL refuses (division by zero, SQLSTATE 22012).
                        return self.cursor.execute("SELECT 1 / 0")
                return self.cursor.execute(query, params)

        failing = dataclasses.replace(session, cursor=lambda: Failing(original()))
        return real(failing, store, table, where, held, params, size, progress)

    monkeypatch.setattr(erasure, "_erase_batches", fail_in_second_batch)
    with pytest.raises(PurgeError) as raised:
        erase(adapter, {Identity.PHONE: {JAN}})
    assert raised.value.removed == 2
    assert "22012" in str(raised.value)
    assert JAN not in str(raised.value)
    assert len(usage.rows("SELECT 1 FROM {s}.usage_records")) == 5  # the first batch only


# ================================================================================ anonymise


def form_store(anonymise: dict) -> PostgresStore:
    return postgres_store(
        SCHEMA,
        "form_entries",
        ["entry_id"],
        {"column": "submitted_at"},
        [
            {"column": "email", "identity": "email"},
            {"column": "phone", "identity": "phone"},
        ],
        on_expiry={"anonymise": anonymise},
    )


@pytest.fixture
def forms(db):
    db.run("DROP TABLE IF EXISTS {s}.form_entries")
    db.run(
        """CREATE TABLE {s}.form_entries (
            entry_id bigint PRIMARY KEY, full_name text NOT NULL, email text NOT NULL,
            phone text, message text NOT NULL, submitted_at timestamptz NOT NULL)"""
    )
    db.many(
        "INSERT INTO {s}.form_entries VALUES (%s, %s, %s, %s, %s, now())",
        [
            (1, "Jan", "jan@x.nl", JAN, "call me"),
            (2, "Jan", "jan@x.nl", None, "again"),
            (3, "Jan (twin)", "jan@x.n1", JAN_NEIGHBOUR, "not me"),
            (4, "Jan (held)", "jan@x.nl", PIET, "held"),
            (5, "Marie", "marie@x.nl", None, "hello"),
        ],
    )
    return db


def test_anonymise_overwrites_the_subjects_rows_once(catalog, forms):
    category = catalog.category("contact_form_entries")
    # The e-mail (a subject column) stays: anonymised rows still match, yet are not
    # anonymised or counted again.
    store = form_store({"full_name": "[removed]", "phone": None, "message": "[removed]"})
    adapter = PostgresRetentionAdapter(hook=make_hook(), store=store, category=category)
    protection = Protection(held={Identity.PHONE: frozenset({PIET})})
    subject = {Identity.EMAIL: {"jan@x.nl"}}

    assert erase(adapter, subject, protection) == EraseResult(anonymised=2, withheld=1)
    rows = forms.by_key("SELECT entry_id, full_name, email, phone, message FROM {s}.form_entries")
    assert rows[1] == rows[2] == ("[removed]", "jan@x.nl", None, "[removed]")
    assert rows[3] == ("Jan (twin)", "jan@x.n1", JAN_NEIGHBOUR, "not me")
    assert rows[4] == ("Jan (held)", "jan@x.nl", PIET, "held")
    assert rows[5] == ("Marie", "marie@x.nl", None, "hello")

    assert erase(adapter, subject, protection) == EraseResult(withheld=1)
    assert erase(adapter, subject) == EraseResult(anonymised=1)  # the hold was lifted
    assert erase(adapter, subject) == EraseResult()
    assert len(forms.rows("SELECT 1 FROM {s}.form_entries")) == 5  # nothing deleted


def test_an_anonymisation_that_does_not_round_trip_fails_instead_of_looping(catalog, forms):
    category = catalog.category("contact_form_entries")
    store = form_store({"full_name": "  padded  "}).model_copy(
        update={"table": f"{SCHEMA}.form_entries_trimmed"}
    )
    forms.run("DROP TABLE IF EXISTS {s}.form_entries_trimmed")
    forms.run(
        "CREATE TABLE {s}.form_entries_trimmed (entry_id bigint PRIMARY KEY, "
        "full_name text NOT NULL, email text, phone text, submitted_at timestamptz)"
    )
    # A trigger trims every name: the padded replacement never arrives as written.
    forms.run(
        "CREATE OR REPLACE FUNCTION {s}.trim_name() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN NEW.full_name := btrim(NEW.full_name); RETURN NEW; END $$"
    )
    forms.run(
        "CREATE TRIGGER trim_name BEFORE UPDATE ON {s}.form_entries_trimmed "
        "FOR EACH ROW EXECUTE FUNCTION {s}.trim_name()"
    )
    forms.run("INSERT INTO {s}.form_entries_trimmed VALUES (1, 'Jan', 'jan@x.nl', NULL, now())")
    adapter = PostgresRetentionAdapter(hook=make_hook(), store=store, category=category)
    with pytest.raises(PurgeError, match="does not round-trip"):
        erase(adapter, {Identity.EMAIL: {"jan@x.nl"}})


# ================================================================================ rectify


def test_rectify_updates_only_the_subjects_rows_and_hashes_old_and_new(catalog, contacts):
    adapter = contacts_adapter(catalog)
    changes = {"full_name": "Jan de Vries", "phone": "+31611112222"}
    result = rectify(adapter, {Identity.EMAIL: {"jan@x.nl"}}, changes)
    assert result == RectifyResult(
        rows=2,
        old_hashes={
            "full_name": sorted([value_hash("Jan"), value_hash("Upper")]),
            "phone": sorted([value_hash(JAN), value_hash(None)]),
        },
        new_hashes={"full_name": value_hash("Jan de Vries"), "phone": value_hash("+31611112222")},
    )
    rows = contacts.by_key("SELECT contact_id, full_name, phone, email FROM {s}.contact_persons")
    assert rows[1] == ("Jan de Vries", "+31611112222", "jan@x.nl")
    assert rows[5] == ("Jan de Vries", "+31611112222", "JAN@X.NL")
    for contact, _customer, name, phone, email in CONTACTS:
        if contact not in (1, 5):
            assert rows[contact] == (name, phone, email)  # twins and colleagues untouched


def test_rectify_hashes_every_distinct_old_value_sorted(catalog, contacts):
    adapter = contacts_adapter(catalog)
    subject = {Identity.EMAIL: {"jan@x.nl"}, Identity.PHONE: {JAN}}
    result = rectify(adapter, subject, {"full_name": "Jan de Vries", "email": "jan@vries.nl"})
    assert result.rows == 3
    assert result.old_hashes == {
        "full_name": sorted([value_hash("Jan"), value_hash("Upper"), value_hash("Jan again")]),
        "email": sorted(
            [value_hash("jan@x.nl"), value_hash("JAN@X.NL"), value_hash("Jan.Again@Example.COM")]
        ),
    }
    # A second correction starts from the first one's new values: the hashes chain.
    again = rectify(adapter, {Identity.PHONE: {JAN}}, {"full_name": "J. de Vries"})
    assert again.rows == 2
    assert again.old_hashes == {"full_name": [result.new_hashes["full_name"]]}


def test_rectify_keeps_held_rows_and_counts_them(catalog, contacts):
    adapter = contacts_adapter(catalog)
    subject = {Identity.PHONE: {JAN}}
    held = Protection(held={Identity.CUSTOMER_ID: frozenset({"44"})})
    result = rectify(adapter, subject, {"full_name": "Jan de Vries"}, held)
    assert (result.rows, result.withheld) == (1, 1)
    names = contacts.by_key("SELECT contact_id, full_name FROM {s}.contact_persons")
    assert (names[1], names[6]) == (("Jan de Vries",), ("Jan again",))

    everything = rectify(adapter, subject, {"full_name": "X"}, Protection(category_held=True))
    assert everything == RectifyResult(withheld=2)  # nothing changed, nothing hashed
    names = contacts.by_key("SELECT contact_id, full_name FROM {s}.contact_persons")
    assert (names[1], names[6]) == (("Jan de Vries",), ("Jan again",))


def test_rectify_refuses_columns_the_policy_does_not_mark_rectifiable(catalog):
    adapter = contacts_adapter(catalog, hook=NoIO())
    for changes in ({"customer_id": "43"}, {"full_name": "x", "created_at": "2024-01-01"}):
        with pytest.raises(StoreError, match="cannot be rectified") as raised:
            rectify(adapter, {Identity.EMAIL: {"jan@x.nl"}}, changes)
        assert "full_name" not in str(raised.value).split("cannot")[0]
    assert rectify(adapter, {Identity.VISITOR_ID: {"visitor-0001"}}, {"email": "a@b.nl"}) == (
        RectifyResult()
    )


@pytest.fixture
def devices(db):
    db.run("DROP TABLE IF EXISTS {s}.managed_devices")
    db.run(
        """CREATE TABLE {s}.managed_devices (
            device_id bigint PRIMARY KEY, contract_id bigint NOT NULL, customer_id bigint NOT NULL,
            device_type varchar(12) NOT NULL, internal_ip inet, public_ip inet,
            installed_software text[] NOT NULL DEFAULT '{{}}', site char(4))"""
    )
    db.many(
        "INSERT INTO {s}.managed_devices VALUES (%s, 1, 1, %s, %s, %s)",
        [
            (1, "router", "10.0.0.5/24", "192.0.2.10"),
            (2, "switch", "10.0.0.6", "192.0.2.10"),
            (3, "router", "10.0.0.50", "192.0.2.11"),
        ],
    )
    return db


def test_rectify_casts_to_the_column_type_and_hashes_what_the_column_holds(catalog, devices):
    adapter = adapter_for(catalog, "managed_devices", "managed_devices")
    result = rectify(adapter, {Identity.IP: {"10.0.0.5"}}, {"internal_ip": "10.0.0.9"})
    assert result.rows == 1
    assert result.old_hashes == {"internal_ip": [value_hash("10.0.0.5/24")]}  # as stored
    assert result.new_hashes == {"internal_ip": value_hash("10.0.0.9")}
    rows = devices.by_key("SELECT device_id, host(internal_ip) FROM {s}.managed_devices")
    assert rows == {1: ("10.0.0.9",), 2: ("10.0.0.6",), 3: ("10.0.0.50",)}


RECTIFIABLE = ("device_type", "internal_ip", "public_ip", "site")


def test_a_fixed_length_column_takes_a_value_that_fits_whole(catalog, devices):
    adapter = adapter_for(catalog, "managed_devices", "managed_devices", rectifiable=RECTIFIABLE)
    result = rectify(adapter, {Identity.IP: {"192.0.2.10"}}, {"site": "AMS1"})
    assert (result.rows, result.new_hashes) == (2, {"site": value_hash("AMS1")})
    assert result.old_hashes == {"site": [value_hash(None)]}
    rows = devices.by_key("SELECT device_id, site FROM {s}.managed_devices")
    assert rows == {1: ("AMS1",), 2: ("AMS1",), 3: (None,)}


@pytest.mark.parametrize(
    ("changes", "column", "code"),
    [
        ({"device_type": "switch", "public_ip": "jan's laptop"}, "public_ip", "22P02"),
        ({"device_type": "a much too long type"}, "device_type", "22001"),  # never cut
        ({"device_type": None}, "device_type", "23502"),
        ({"site": "AMS-1"}, "site", "22001"),  # char(4): not cut to 4, nor to 1
    ],
)
def test_a_value_the_column_cannot_hold_is_refused_without_echo(
    catalog, devices, changes, column, code
):
    adapter = adapter_for(catalog, "managed_devices", "managed_devices", rectifiable=RECTIFIABLE)
    with pytest.raises(StoreError) as raised:
        rectify(adapter, {Identity.IP: {"192.0.2.10"}}, changes)
    message = str(raised.value)
    assert column in message
    assert code in message
    assert f"{SCHEMA}.managed_devices" in message
    for value in changes.values():
        assert value is None or value not in message
    # One transaction: nothing changed, not even the valid column.
    rows = devices.by_key("SELECT device_id, device_type FROM {s}.managed_devices")
    assert rows == {1: ("router",), 2: ("switch",), 3: ("router",)}


# ================================================================================ free text


def create_support_tickets(db: Db, name: str = "support_tickets") -> None:
    db.run(f"DROP TABLE IF EXISTS {{s}}.{name}")
    db.run(
        f"""CREATE TABLE {{s}}.{name} (
            ticket_id bigint PRIMARY KEY, customer_id bigint, contact_name text,
            contact_email text, contact_phone text, subject text NOT NULL, body text NOT NULL,
            opened_at timestamptz NOT NULL, closed_at timestamptz)"""
    )


#: A ticket's body mentioning the subject as people write it -> the body after erasure.
REDACTED_SPELLINGS = [
    "+31612345678",
    "0612345678",
    "06-12345678",
    "06 1234 5678",
    "+31 (0)6 12345678",
    "0031 6 1234 5678",
    "+31-6-12345678",
    "06-12 34 56 78",
    "(06) 12345678",
    "+31 6 12 34 56 78",
    "06.12.34.56.78",
    "06/12345678",
    "31612345678",
    "jan@x.nl",
    "JAN@X.NL",
    "Jan@X.nl",
]
#: Mentions of other people (near twins, longer numbers, other addresses): kept.
KEPT_SPELLINGS = [
    "06-12345679",
    "06123456789",
    "+316123456789",
    "106 1234 5678",
    "+31612345670",
    "jan@x.n1",
    "bjan@x.nl",
    "jan@x.nl.evil.example",
    "jan@x.nl-shop.nl",
    "jan.x@x.nl",
    "janXx.nl",
]


@pytest.fixture
def tickets(db):
    """Support tickets: the subject's own, others mentioning the subject in many spellings,
    others mentioning near twins, and a held one mentioning the subject."""
    create_support_tickets(db)
    rows = [
        (1, 42, "jan@x.nl", JAN, "Storing", "Bel me op 06-12345678.", None),
        (2, 42, "held@x.nl", PIET, "Map", "Vraag het JAN@X.NL of 0612345678.", None),
        (3, 43, "piet@y.nl", PIET, "Terugbellen 0031 6 1234 5678", "Geen tekst.", utc(2020, 1, 1)),
    ]
    for offset, spelling in enumerate([*REDACTED_SPELLINGS, *KEPT_SPELLINGS]):
        rows.append((100 + offset, 50, "other@y.nl", None, "Vraag", f"Bel {spelling}, dank.", None))
    db.many(
        "INSERT INTO {s}.support_tickets VALUES (%s, %s, 'n', %s, %s, %s, %s, now(), %s)",
        rows,
    )
    return db


def tickets_adapter(catalog, **kwargs) -> PostgresRetentionAdapter:
    return adapter_for(catalog, "support_tickets", "support_tickets", **kwargs)


def test_erasure_redacts_mentions_of_the_subject_in_other_peoples_tickets(catalog, tickets):
    adapter = tickets_adapter(catalog)
    assert adapter.store.free_text == ("subject", "body")
    subject = {Identity.EMAIL: {"jan@x.nl"}, Identity.PHONE: {JAN}}
    held = Protection(held={Identity.EMAIL: frozenset({"held@x.nl"})})

    result = erase(adapter, subject, held)
    # Jan's own ticket goes; ticket 3 (subject line) and every spelling are redacted.
    assert result == EraseResult(removed=1, redacted=1 + len(REDACTED_SPELLINGS))
    texts = tickets.by_key("SELECT ticket_id, subject, body FROM {s}.support_tickets")
    assert 1 not in texts
    assert texts[2] == ("Map", "Vraag het JAN@X.NL of 0612345678.")  # held: untouched
    assert texts[3] == ("Terugbellen [removed]", "Geen tekst.")
    for offset, spelling in enumerate(REDACTED_SPELLINGS):
        assert texts[100 + offset] == ("Vraag", "Bel [removed], dank."), spelling
    for offset, spelling in enumerate(KEPT_SPELLINGS, start=len(REDACTED_SPELLINGS)):
        assert texts[100 + offset] == ("Vraag", f"Bel {spelling}, dank."), spelling

    # Nothing is left to find; once the hold is released, its mention goes too.
    assert erase(adapter, subject, held) == EraseResult()
    assert erase(adapter, subject) == EraseResult(redacted=1)
    texts = tickets.by_key("SELECT ticket_id, body FROM {s}.support_tickets")
    assert texts[2] == ("Vraag het [removed] of [removed].",)


def test_a_category_hold_redacts_nothing(catalog, tickets):
    adapter = tickets_adapter(catalog)
    before = tickets.rows("SELECT * FROM {s}.support_tickets ORDER BY ticket_id")
    result = erase(adapter, {Identity.PHONE: {JAN}}, Protection(category_held=True))
    assert result == EraseResult(withheld=1)
    assert tickets.rows("SELECT * FROM {s}.support_tickets ORDER BY ticket_id") == before


def test_free_text_is_searched_even_without_a_matching_subject_column(catalog, tickets):
    """A phone number alone: no row is the subject's by its columns, mentions still go."""
    adapter = tickets_adapter(catalog)
    result = erase(adapter, {Identity.PHONE: {"+31612345678"}, Identity.VISITOR_ID: {"v1.abc"}})
    assert result.redacted > 0
    assert result.removed == 1  # ticket 1's contact_phone


@pytest.mark.parametrize(
    "values",
    [
        {Identity.EMAIL: {".*"}},
        {Identity.EMAIL: {"' OR 1=1 --"}},
        {Identity.EMAIL: {"j.n@x.nl"}},  # the dot is no wildcard: "jan@x.nl" is not "j.n"
        {Identity.EMAIL: {"jan@x\\.nl"}},
        {Identity.PHONE: {"not a number"}},
        {Identity.PHONE: {".*"}},
    ],
)
def test_mentions_match_only_the_values_themselves(catalog, tickets, values):
    adapter = tickets_adapter(catalog)
    before = tickets.rows("SELECT * FROM {s}.support_tickets ORDER BY ticket_id")
    assert erase(adapter, values) == EraseResult()
    assert tickets.rows("SELECT * FROM {s}.support_tickets ORDER BY ticket_id") == before


def test_a_store_without_free_text_only_erases_its_subjects_rows(catalog, tickets):
    adapter = tickets_adapter(catalog, free_text=())
    result = erase(adapter, {Identity.EMAIL: {"jan@x.nl"}})
    assert result == EraseResult(removed=1)
    assert (
        tickets.one("SELECT count(*) FROM {s}.support_tickets WHERE body LIKE '%%[removed]%%'")[0]
        == 0
    )


def test_a_missing_free_text_column_is_named(catalog, tickets):
    adapter = tickets_adapter(catalog, free_text=("body", "notes"))
    with pytest.raises(PurgeError, match="no column notes") as raised:
        erase(adapter, {Identity.EMAIL: {"jan@x.nl"}})
    assert "jan@x.nl" not in str(raised.value)
    assert len(tickets.rows("SELECT 1 FROM {s}.support_tickets")) == 3 + len(
        REDACTED_SPELLINGS
    ) + len(KEPT_SPELLINGS)


@pytest.mark.parametrize(
    ("free_text", "message"),
    [
        (["body", "body"], "column 'body' is listed more than once"),
        (["Body; DROP"], "is not a valid identifier"),
    ],
)
def test_the_policy_validates_free_text_columns(free_text, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="free_text") as raised:
        postgres_store(SCHEMA, "t", ["id"], {"column": "at"}, [], free_text=free_text)
    assert message in str(raised.value)
