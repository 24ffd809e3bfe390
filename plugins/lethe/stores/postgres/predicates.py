"""The SQL pieces every call shares: which rows are a subject's, which are protected,
which are anonymised already (alias ``t`` is the store's table).

A subject's rows are found by comparing each subject column in its own type against
the values bound as one typed array (``bigint[]``, ``inet[]``, ``text[]`` ...), so the
column's index serves the lookup (:func:`subject_filter`, :func:`typed_values`); e-mail
columns are compared in lower case, which an index on ``lower(a)`` serves. Protection
compares the columns' text forms (:func:`matches`). Identifiers come from the validated
policy and are always quoted with ``sql.Identifier``; every value is a bound parameter.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any

from psycopg import sql

if TYPE_CHECKING:
    from collections.abc import Mapping

    from lethe.domain.protection import Protection
    from lethe.policy.models import PostgresStore
    from lethe.policy.vocabulary import Identity
    from lethe.stores.postgres.catalog import Column, Table
    from lethe.stores.postgres.connection import Session

#: Column types compared by address as well as by their text form (``host()``).
ADDRESS_TYPES = frozenset({"inet", "cidr"})
#: Integer column types and the values they hold: a subject value outside can never match.
_INTEGER_RANGES = {
    "int2": (-(2**15), 2**15 - 1),
    "int4": (-(2**31), 2**31 - 1),
    "int8": (-(2**63), 2**63 - 1),
}
_INTEGER_RE = re.compile(r"-?[0-9]{1,19}")


def relation(store: PostgresStore) -> sql.Identifier:
    """The store's table, quoted (``"schema"."name"``)."""
    schema, name = store.table.split(".")
    return sql.Identifier(schema, name)


def subject_filter(
    store: PostgresStore,
    table: Table,
    subject: Mapping[Identity, frozenset[str]],
    params: dict[str, Any],
) -> sql.Composable | None:
    """``(t.a = ANY(%(subject0)s::<type of a>[]) OR ...)`` over the subject's columns.

    Each column is compared in its own type, with the values bound as one typed array,
    so the column's index serves the lookup; an e-mail column is compared in lower case
    (``lower(t.a) = ANY(%(subject0)s::text[])``), served by an index on ``lower(a)``.
    Values a column's type cannot hold (a number out of range, an address that is not
    one) are left out for that column;
    None when no column is left to compare.
    """
    terms = []
    for index, selector in enumerate(store.subject):
        values = subject.get(selector.identity)
        if not values:
            continue
        column = table.columns[selector.column]
        name = f"subject{index}"
        if selector.identity == "email":
            # Stored as people typed them: compared in lower case on both sides, which
            # an expression index on lower(<column>) serves.
            lowered = sorted({v.lower() for v in values if "\x00" not in v})
            if not lowered:
                continue
            params[name] = lowered
            terms.append(
                sql.SQL("lower({}::text) = ANY({}::text[])").format(
                    sql.Identifier("t", selector.column), sql.Placeholder(name)
                )
            )
            continue
        bound = typed_values(column, values)
        if not bound:
            continue
        params[name] = bound
        terms.append(
            sql.SQL("{} = ANY({}::{}[])").format(
                sql.Identifier("t", selector.column),
                sql.Placeholder(name),
                sql.SQL(column.type),
            )
        )
    if not terms:
        return None
    return sql.SQL("({})").format(sql.SQL(" OR ").join(terms))


def typed_values(column: Column, values: frozenset[str]) -> list[Any]:
    """The subject's ``values`` a column of this type can hold, ready to bind as its array.

    Integer columns get ints in range; ``inet`` columns every form of the address, one per
    prefix length (``192.0.2.1/0`` ... ``192.0.2.1/32``), so that an address stored with
    a netmask equals it in the column's own type; ``cidr`` columns the host network. Other
    types get the text values, cast by PostgreSQL. No type holds a NUL character.
    """
    texts = sorted(value for value in values if "\x00" not in value)
    if column.base in _INTEGER_RANGES:
        low, high = _INTEGER_RANGES[column.base]
        numbers = (int(text) for text in texts if _INTEGER_RE.fullmatch(text))
        return sorted({number for number in numbers if low <= number <= high})
    if column.base in ADDRESS_TYPES:
        addresses = []
        for text in texts:
            try:
                addresses.append(ipaddress.ip_address(text))
            except ValueError:
                continue
        if column.base == "cidr":
            return [str(address) for address in addresses]
        return [
            f"{address}/{length}"
            for address in addresses
            for length in range(address.max_prefixlen + 1)
        ]
    return texts


def matches(
    store: PostgresStore,
    table: Table,
    protected: Mapping[Identity, frozenset[str]],
    prefix: str,
    params: dict[str, Any],
) -> sql.Composable:
    """Whether any subject column of the row is among the ``protected`` values; binds
    ``<prefix>_<identity>`` in ``params``."""
    terms = []
    for subject in store.subject:
        values = protected.get(subject.identity)
        if not values:
            continue
        name = f"{prefix}_{subject.identity.value}"
        params[name] = sorted(values)
        column: sql.Composable = sql.Identifier("t", subject.column)
        if subject.identity == "email":  # held values are lower case (Protection)
            column = sql.SQL("lower({}::text)").format(column)
        terms.append(sql.SQL("{}::text = ANY({}::text[])").format(column, sql.Placeholder(name)))
        if table.columns[subject.column].base in ADDRESS_TYPES:
            # inet's text form carries the mask ('192.0.2.1/32'); held values may not.
            terms.append(
                sql.SQL("host({}) = ANY({}::text[])").format(column, sql.Placeholder(name))
            )
    if not terms:
        return sql.SQL("FALSE")
    return sql.SQL("COALESCE({}, FALSE)").format(sql.SQL(" OR ").join(terms))


def anonymised(store: PostgresStore, table: Table, params: dict[str, Any]) -> sql.Composable:
    """``t.a IS NOT DISTINCT FROM CAST(%(anon0)s AS <type>) AND ...``: the row already
    holds every replacement value of ``on_expiry``; binds ``anon<i>`` in ``params``."""
    done = []
    for index, (column, value) in enumerate(store.on_expiry.anonymise.items()):
        params[f"anon{index}"] = value
        done.append(
            sql.SQL("{} IS NOT DISTINCT FROM CAST({} AS {})").format(
                sql.Identifier("t", column),
                sql.Placeholder(f"anon{index}"),
                sql.SQL(table.columns[column].type),
            )
        )
    return sql.SQL(" AND ").join(done)


def identity_text(table: Table, column: str) -> sql.Composable:
    """A subject column as identity text: an address by its host (``host(t.a)``, no
    mask), anything else by its text form (``t.a::text``)."""
    if table.columns[column].base in ADDRESS_TYPES:
        return sql.SQL("host({})").format(sql.Identifier("t", column))
    return sql.SQL("{}::text").format(sql.Identifier("t", column))


def count_rows(
    session: Session, store: PostgresStore, where: sql.Composable, params: dict[str, Any]
) -> int:
    """How many rows of the table ``where`` selects."""
    query = sql.SQL("SELECT count(*) FROM {} AS t WHERE {}").format(relation(store), where)
    with session.cursor() as cur:
        cur.execute(query, params)
        (count,) = cur.fetchone()
    return count


def protects_store(store: PostgresStore, protection: Protection) -> bool:
    """Whether ``protection`` holds the whole category or names a value of this store's
    subject identities (so the store's expired rows must be checked row by row)."""
    return protection.category_held or protects_any_value(store, protection)


def protects_any_value(store: PostgresStore, protection: Protection) -> bool:
    """Whether ``protection`` names any value of this store's subject identities (else
    :func:`matches` is just FALSE for its held and its restricted values)."""
    identities = store.identities
    return any(protection.held.get(i) or protection.restricted.get(i) for i in identities)
