"""What the adapter reads from ``pg_catalog`` about a store's table: its oid, kind, column
types and range-partition key (:func:`describe`), and column types without their modifier
(:func:`plain_types`, for rectify's casts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lethe.exceptions import StoreError
from lethe.policy.models import AgeFromColumn, Anonymise

if TYPE_CHECKING:
    from collections.abc import Mapping

    from lethe.policy.models import Category, PostgresStore
    from lethe.stores.postgres.connection import Session

#: Types whose name without a modifier means length 1, and their unbounded cousins.
_UNBOUNDED = {"bpchar": "bpchar", "_bpchar": "bpchar[]", "bit": "varbit", "_bit": "varbit[]"}

_TABLE_SQL = """
SELECT c.oid, c.relkind, pt.partstrat, pt.partnatts, pa.attname
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_partitioned_table AS pt ON pt.partrelid = c.oid
LEFT JOIN pg_catalog.pg_attribute AS pa
    ON pa.attrelid = c.oid AND pa.attnum = pt.partattrs[0]
WHERE n.nspname = %(schema)s AND c.relname = %(name)s
"""

_COLUMNS_SQL = """
SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), t.typname
FROM pg_catalog.pg_attribute AS a
JOIN pg_catalog.pg_type AS t ON t.oid = a.atttypid
WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_PLAIN_TYPES_SQL = """
SELECT a.attname::text, pg_catalog.format_type(a.atttypid, NULL)
FROM pg_catalog.pg_attribute AS a WHERE a.attrelid = %(oid)s
AND a.attname::text = ANY(%(names)s::text[]) AND a.attnum > 0 AND NOT a.attisdropped
"""


@dataclass(frozen=True)
class Column:
    """A column of the store's table: its SQL type (``format_type``) and base type name."""

    type: str
    base: str


@dataclass(frozen=True)
class Table:
    """What the adapter reads once from ``pg_catalog`` about the store's table."""

    oid: int
    relkind: str
    columns: Mapping[str, Column]
    #: The single column the table is range-partitioned on, else None.
    range_key: str | None


def describe(session: Session, store: PostgresStore, category: Category) -> Table:
    """The table's oid, kind, column types and range-partition key.

    :raises lethe.exceptions.StoreError: when the table, or a column the policy names,
        is missing.
    """
    schema, name = store.table.split(".")
    with session.cursor() as cur:
        cur.execute(_TABLE_SQL, {"schema": schema, "name": name})
        found = cur.fetchone()
        if found is None:
            session.rollback()
            raise StoreError(f"table {store.table} not found through connection {store.conn_id!r}")
        oid, relkind, strategy, key_count, key_column = found
        cur.execute(_COLUMNS_SQL, {"oid": oid})
        columns = {name: Column(type, base) for name, type, base in cur.fetchall()}
    session.rollback()
    wanted = [
        *store.key_columns,
        *(s.column for s in store.subject),
        *store.free_text,
    ]
    if isinstance(store.age, AgeFromColumn):
        wanted.append(store.age.column)
    else:
        wanted.append(store.age.via.local_column)
    if isinstance(store.on_expiry, Anonymise):
        wanted.extend(store.on_expiry.anonymise)
    missing = sorted({column for column in wanted if column not in columns})
    if missing:
        raise StoreError(
            f"table {store.table} has no column {', '.join(missing)} "
            f"(named by the policy of category {category.id})"
        )
    range_key = key_column if strategy == "r" and key_count == 1 else None
    return Table(oid=oid, relkind=relkind, columns=columns, range_key=range_key)


def plain_types(session: Session, table: Table, columns: list[str]) -> dict[str, str]:
    """Each column's SQL type without its modifier (``character varying``, not
    ``character varying(20)``): a cast to it keeps the value whole, and the column's
    own modifier then refuses what does not fit, instead of cutting it."""
    with session.cursor() as cur:
        cur.execute(_PLAIN_TYPES_SQL, {"oid": table.oid, "names": columns})
        found = dict(cur.fetchall())
    # Without a length, ``character`` and ``bit`` mean length 1 (a cast would cut).
    return {c: _UNBOUNDED.get(table.columns[c].base, found[c]) for c in columns}
