"""Dropping whole month partitions of a range-partitioned table in a purge.

A partition whose upper bound is at or before the earliest cutoff holds only expired
rows: unless it holds a held or restricted row, it is detached and dropped, under the
session's short ``lock_timeout`` (:data:`~lethe.stores.postgres.connection.LOCK_TIMEOUT`)
so a purge never queues behind long transactions. A partition holding a protected row
stays; its other rows go in the purge's batches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from psycopg import sql

from lethe.stores.postgres.predicates import protects_any_value

if TYPE_CHECKING:
    from datetime import datetime

    from lethe.domain.cutoffs import Cutoff
    from lethe.domain.protection import Protection
    from lethe.policy.models import PostgresStore
    from lethe.stores.postgres.catalog import Table
    from lethe.stores.postgres.connection import Progress, Session
    from lethe.stores.postgres.plan import Plan

log = logging.getLogger(__name__)

#: Partition-key column types whose bounds are instants (or local dates) we can compare.
_TIME_TYPES = frozenset({"timestamptz", "timestamp", "date"})
#: Pulls the upper bound literal out of ``FOR VALUES FROM (...) TO ('...')``.
_UPPER_BOUND_RE = r"TO \('([^']*)'\)$"

_PARTITIONS_SQL = """
SELECT n.nspname, c.relname, bound.upper_bound
FROM pg_catalog.pg_inherits AS i
JOIN pg_catalog.pg_class AS c ON c.oid = i.inhrelid
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
CROSS JOIN LATERAL (
    SELECT (regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid), %(bound_re)s))[1]
        ::timestamptz AS upper_bound
) AS bound
WHERE i.inhparent = %(oid)s
ORDER BY bound.upper_bound NULLS LAST, c.relname
"""


def drop_partitions(
    session: Session,
    store: PostgresStore,
    table: Table,
    purge_plan: Plan,
    cutoff: Cutoff,
    protection: Protection,
    progress: Progress,
) -> None:
    """Detach and drop every month partition wholly before the earliest cutoff.

    A partition holding a held or restricted row stays; its other rows go in batches.
    """
    age_column = store.age.column  # partitioned stores age from their own column
    if (
        table.relkind != "p"
        or table.range_key != age_column
        or table.columns[age_column].base not in _TIME_TYPES
    ):
        log.warning(
            "%s is not range-partitioned on %s; expired rows go in batches only",
            store.table,
            age_column,
        )
        return
    progress.action = "listing partitions"
    with session.cursor() as cur:
        cur.execute(_PARTITIONS_SQL, {"oid": table.oid, "bound_re": _UPPER_BOUND_RE})
        partitions = cur.fetchall()
    session.rollback()
    earliest = cutoff.earliest
    check = protects_any_value(store, protection)
    for schema, name, upper in partitions:
        if upper is None or upper > earliest:
            continue  # the default partition, or one that may hold young rows
        part = sql.Identifier(schema, name)
        progress.action = f"dropping partition {schema}.{name}"
        with session.cursor() as cur:
            # Writers wait (readers do not) while the partition is counted.
            cur.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(part))
            if check:
                cur.execute(
                    sql.SQL(
                        "SELECT count(*), count(*) FILTER (WHERE {held} OR {restricted}) "
                        "FROM {part} AS t"
                    ).format(held=purge_plan.held, restricted=purge_plan.restricted, part=part),
                    purge_plan.params,
                )
            else:
                cur.execute(sql.SQL("SELECT count(*), 0 FROM {} AS t").format(part))
            rows, protected = cur.fetchone()
            if protected:
                session.rollback()
                log.info(
                    "Partition %s.%s holds %d protected rows; purging it in batches",
                    schema,
                    name,
                    protected,
                )
                continue
            progress.pending = rows
            cur.execute(
                sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(purge_plan.relation, part)
            )
            cur.execute(sql.SQL("DROP TABLE {}").format(part))
        progress.committing(session, rows)
        session.commit()
        progress.pending = 0
        progress.committed(rows)
        progress.partition_rows += rows
        progress.partitions_dropped += 1
        log.info("Dropped partition %s.%s of %s (%d rows)", schema, name, store.table, rows)


_LEAVES_SQL = """
SELECT n.nspname, c.relname, c.oid,
       (regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid), %(bound_re)s))[1]
           ::timestamptz AS lower_bound
FROM pg_catalog.pg_partition_tree(%(oid)s::regclass) AS p
JOIN pg_catalog.pg_class AS c ON c.oid = p.relid
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE p.isleaf
ORDER BY lower_bound NULLS FIRST, c.relname
"""
#: Pulls the lower bound literal out of ``FOR VALUES FROM ('...') TO (...)``.
_LOWER_BOUND_RE = r"FROM \('([^']*)'\)"


def leaves_to_walk(
    session: Session, store: PostgresStore, table: Table, cutoff: Cutoff
) -> list[tuple[sql.Identifier, int]]:
    """The leaf partitions of a partitioned table that may hold an expired row, with their
    oids.

    When the table is range-partitioned on the store's own time column, a leaf whose range
    starts at or after the latest cutoff holds only young rows and is left out; otherwise
    (another key, a default partition, MINVALUE) every leaf is walked.
    """
    age_column = getattr(store.age, "column", None)
    by_age = (
        table.range_key is not None
        and table.range_key == age_column
        and table.columns[age_column].base in _TIME_TYPES
    )
    with session.cursor() as cur:
        cur.execute(_LEAVES_SQL, {"oid": table.oid, "bound_re": _LOWER_BOUND_RE})
        leaves = cur.fetchall()
    session.rollback()
    latest = cutoff.latest
    return [
        (sql.Identifier(schema, name), oid)
        for schema, name, oid, lower in leaves
        if not (by_age and lower is not None and lower >= latest)
    ]


_LEAF_BOUNDS_SQL = """
SELECT c.oid, n.nspname, c.relname,
       (regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid), %(lower_re)s))[1]
           ::timestamptz AS lower_bound,
       (regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid), %(upper_re)s))[1]
           ::timestamptz AS upper_bound,
       pg_catalog.pg_relation_size(c.oid) / pg_catalog.current_setting('block_size')::bigint
FROM pg_catalog.pg_partition_tree(%(oid)s::regclass) AS p
JOIN pg_catalog.pg_class AS c ON c.oid = p.relid
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE p.isleaf
ORDER BY lower_bound NULLS FIRST, c.relname
"""


@dataclass(frozen=True)
class Leaf:
    """A leaf partition of a table range-partitioned on the store's age column.

    :param lower: its range's lower bound; None: unknown (a default partition, MINVALUE,
        a bound of another kind).
    :param upper: its range's upper bound; None likewise.
    :param blocks: its heap's size in blocks.
    """

    oid: int
    name: sql.Identifier
    lower: datetime | None
    upper: datetime | None
    blocks: int


def leaves_by_age(session: Session, store: PostgresStore, table: Table) -> list[Leaf] | None:
    """The leaf partitions with their age ranges, when the table is range-partitioned on
    the store's own time column; else None."""
    age_column = getattr(store.age, "column", None)
    if not (
        table.relkind == "p"
        and table.range_key is not None
        and table.range_key == age_column
        and table.columns[age_column].base in _TIME_TYPES
    ):
        return None
    with session.cursor() as cur:
        cur.execute(
            _LEAF_BOUNDS_SQL,
            {"oid": table.oid, "lower_re": _LOWER_BOUND_RE, "upper_re": _UPPER_BOUND_RE},
        )
        leaves = cur.fetchall()
    session.rollback()
    return [
        Leaf(oid=oid, name=sql.Identifier(schema, name), lower=lower, upper=upper, blocks=blocks)
        for oid, schema, name, lower, upper, blocks in leaves
    ]
