"""Retention on one table: count what has expired (:func:`survey`), then remove it
(:func:`purge`).

The survey is one pass over the table. The purge drops the month partitions wholly
before the earliest cutoff first (:mod:`~lethe.stores.postgres.partitions`), then removes
the rest in block ranges (:mod:`~lethe.stores.postgres.blocks`): one server-side statement
per short transaction, the table (or each partition that may hold an expired row) walked
once in physical order.

The survey's pass also notes where the removable rows lie: the first and last heap block
holding one, per table or leaf partition (:class:`SurveyMemo`). A purge that follows it in
the same session walks only those blocks, and no leaf without a removable row: on a table
whose old rows sit together (rows inserted in time order, as usage records and logs are)
it reads the expired part only, not the young part the survey has just counted. Rows
that turn up expired elsewhere after the survey wait for the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from psycopg import sql

from lethe.domain.counts import PurgeResult, Survey
from lethe.policy.models import Anonymise
from lethe.stores.postgres.blocks import purge_relation
from lethe.stores.postgres.partitions import (
    drop_partitions,
    leaves_by_age,
    leaves_to_walk,
)
from lethe.stores.postgres.plan import Plan, plan
from lethe.stores.postgres.predicates import protects_store

if TYPE_CHECKING:
    from collections.abc import Callable

    from lethe.domain.cutoffs import Cutoff
    from lethe.domain.protection import Protection
    from lethe.policy.models import PostgresStore
    from lethe.stores.postgres.catalog import Table
    from lethe.stores.postgres.connection import Progress, Session
    from lethe.stores.postgres.partitions import Leaf

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SurveyMemo:
    """Where a survey found removable rows, for the purge that follows it.

    :param removable_blocks: relation oid (the table, or a leaf partition) -> the first and
        the last heap block holding a removable row; a relation without one is absent.
    """

    cutoff: Cutoff
    protection: Protection
    removable_blocks: dict[int, tuple[int, int]] = field(default_factory=dict)


def survey(
    session: Session, store: PostgresStore, table: Table, cutoff: Cutoff, protection: Protection
) -> tuple[Survey, SurveyMemo]:
    """Count the table's rows, the expired ones and the protected ones among them, and
    note which blocks of which relation hold the removable ones.

    A table range-partitioned on its age column is counted leaf by leaf: a leaf wholly
    before the earliest cutoff or wholly after the latest is only counted (``count``,
    ``min`` and ``max`` of its age: no row's expiry to work out), unless rows must be
    checked for holds or restrictions or an anonymising store's rows may be done already;
    the other leaves are surveyed row by row.
    """
    rows = _leaf_by_leaf(session, store, table, cutoff, protection)
    if rows is None:
        survey_plan = plan(store, table, cutoff, protection)
        rows = _survey_rows(session, survey_plan, None if table.relkind == "p" else table.oid)
    total = expired = held = restricted = unaged = 0
    newest = oldest_removable = oldest = None
    blocks: dict[int, tuple[int, int]] = {}
    for row in rows:
        leaf, first_block, last_block = row[:3]
        total += row[3]
        expired += row[4]
        held += row[5]
        restricted += row[6]
        newest = _later(newest, row[7])
        unaged += row[8]
        oldest_removable = _earlier(oldest_removable, row[9])
        oldest = _earlier(oldest, row[10])
        if first_block is not None:
            blocks[leaf] = (int(first_block), int(last_block))
    log.info(
        "Surveyed %s: %d rows, %d expired (%d held, %d restricted), %d unaged",
        store.table,
        total,
        expired,
        held,
        restricted,
        unaged,
    )
    found = Survey(
        total=total,
        expired=expired,
        held=held,
        restricted=restricted,
        newest=_utc(newest),
        unaged=unaged,
        oldest_removable=_utc(oldest_removable),
        oldest=_utc(oldest),
    )
    return found, SurveyMemo(cutoff=cutoff, protection=protection, removable_blocks=blocks)


def purge(
    session: Session,
    store: PostgresStore,
    table: Table,
    cutoff: Cutoff,
    protection: Protection,
    *,
    batch_size: int,
    progress: Progress,
    memo: SurveyMemo | None = None,
    sessions: int = 1,
    open_session: Callable[[], Session] | None = None,
) -> PurgeResult:
    """Remove (or anonymise) every expired row that is neither held nor restricted.

    What is committed is counted in ``progress`` as it goes, for the caller's error.

    :param memo: what the survey just before found (same cutoff and protection): only
        the blocks it found removable rows in are walked. None: every block.
    :param sessions: how many sessions may walk one relation's removable blocks at once
        (:func:`~lethe.stores.postgres.blocks.purge_relation`); the others are opened
        with ``open_session``.
    """
    purge_plan = plan(store, table, cutoff, protection)
    if protection.category_held:
        log.info("%s: the whole category is held; nothing purged", store.table)
    else:
        if store.partitioned_by_month:
            drop_partitions(session, store, table, purge_plan, cutoff, protection, progress)
        _purge_batches(
            session,
            store,
            table,
            cutoff,
            protection,
            purge_plan,
            batch_size,
            progress,
            memo,
            sessions=sessions,
            open_session=open_session,
        )
    details = {"partition_rows": progress.partition_rows}
    anonymises = isinstance(store.on_expiry, Anonymise)
    details["anonymised" if anonymises else "batch_rows"] = progress.batch_rows
    log.info(
        "Purged %s: %d rows (%d partitions dropped, %d batches)",
        store.table,
        progress.removed,
        progress.partitions_dropped,
        progress.batches,
    )
    return PurgeResult(
        removed=progress.removed,
        batches=progress.batches,
        partitions_dropped=progress.partitions_dropped,
        details=details,
    )


def _purge_batches(
    session: Session,
    store: PostgresStore,
    table: Table,
    cutoff: Cutoff,
    protection: Protection,
    purge_plan: Plan,
    batch_size: int,
    progress: Progress,
    memo: SurveyMemo | None,
    *,
    sessions: int,
    open_session: Callable[[], Session] | None,
) -> None:
    """Delete (or anonymise) the removable rows left, walking the table (or each leaf
    partition that may hold one) in block ranges, one committed transaction each; with a
    survey's ``memo``, only the blocks where it found removable rows (by up to
    ``sessions`` sessions at once)."""
    if table.relkind == "p":
        leaves = leaves_to_walk(session, store, table, cutoff)
        plans = [(oid, plan(store, table, cutoff, protection, on=leaf)) for leaf, oid in leaves]
    else:
        plans = [(table.oid, purge_plan)]
    for oid, leaf_plan in plans:
        within = None if memo is None else memo.removable_blocks.get(oid)
        if memo is not None and within is None:
            continue  # the survey found no removable row in it
        progress.batch_rows += purge_relation(
            session,
            store,
            table,
            leaf_plan,
            batch_size=batch_size,
            progress=progress,
            within=within,
            sessions=sessions,
            open_session=open_session,
        )


def _leaf_by_leaf(
    session: Session, store: PostgresStore, table: Table, cutoff: Cutoff, protection: Protection
) -> list[tuple] | None:
    """The survey's rows, one per leaf partition, counting the leaves wholly on one side
    of the cutoffs without working out each row's expiry; None: not partitioned by age."""
    leaves = leaves_by_age(session, store, table)
    if leaves is None:
        return None
    whole_ok = not (protects_store(store, protection) or isinstance(store.on_expiry, Anonymise))
    rows: list[tuple] = []
    for leaf in leaves:
        expired = leaf.upper is not None and leaf.upper <= cutoff.earliest and whole_ok
        young = leaf.lower is not None and leaf.lower >= cutoff.latest
        if expired or young:
            rows.append(_count_leaf(session, store, leaf, expired=expired))
        else:
            leaf_plan = plan(store, table, cutoff, protection, on=leaf.name)
            rows += _survey_rows(session, leaf_plan, leaf.oid)
    return rows


def _count_leaf(session: Session, store: PostgresStore, leaf: Leaf, *, expired: bool) -> tuple:
    """A survey row of a leaf whose rows have all expired (and none is protected) or
    none has: its rows counted, its oldest and newest age.

    Two statements, so that each can take the cheap path: a plain ``count(*)`` (an
    index-only scan where the leaf is all-visible), and ``min``/``max`` of the age (the
    two ends of its index, where it has one).
    """
    age = sql.Identifier(store.age.column)
    with session.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*) FROM {} AS t").format(leaf.name))
        (count,) = cur.fetchone()
        cur.execute(
            sql.SQL(
                "SELECT min(t.{age})::timestamptz, max(t.{age})::timestamptz FROM {leaf} AS t"
            ).format(age=age, leaf=leaf.name)
        )
        oldest, newest = cur.fetchone()
    session.rollback()
    if not expired:
        return (leaf.oid, None, None, count, 0, 0, 0, newest, 0, None, oldest)
    # Every row may go: the removable ones lie anywhere in the leaf.
    first, last = (0, max(leaf.blocks - 1, 0)) if count else (None, None)
    return (leaf.oid, first, last, count, count, 0, 0, newest, 0, oldest, oldest)


def _survey_rows(session: Session, survey_plan: Plan, relation: int | None) -> list[tuple]:
    with session.cursor() as cur:
        cur.execute(_survey_sql(survey_plan, relation), survey_plan.params)
        rows = cur.fetchall()
    session.rollback()
    return rows


def _survey_sql(survey_plan: Plan, relation: int | None) -> sql.Composable:
    """One pass over the table counting every figure of a :class:`Survey`, and the first
    and last heap block holding a removable row: one row for ``relation`` (the oid of
    the table, or of the one leaf partition the plan reads), or with None one row per
    leaf partition of a partitioned table (a ``ctid`` is a partition's own).

    Where no row can be held or restricted, the protected counts are 0 and every expired
    row is removable: the pass then evaluates fewer aggregates (each costs every row).
    """
    # A tid's text is "(block,offset)", which reads as a point.
    block = "(({}(x.tid) FILTER (WHERE {}))::text::point)[0]::bigint"
    if survey_plan.protects:
        removable = "x.expired AND NOT x.held AND NOT x.restricted"
        figures = (
            "count(*) FILTER (WHERE x.expired AND x.held), "
            "count(*) FILTER (WHERE x.expired AND NOT x.held AND x.restricted), "
            "max(x.age)::timestamptz, "
            "count(*) FILTER (WHERE x.age IS NULL), "
            f"(min(x.age) FILTER (WHERE {removable}))::timestamptz, "
            "(min(x.age) FILTER (WHERE NOT x.expired OR NOT (x.held OR x.restricted)))"
            "::timestamptz "
        )
    else:
        removable = "x.expired"
        figures = (
            "0, 0, max(x.age)::timestamptz, count(*) - count(x.age), "
            "(min(x.age) FILTER (WHERE x.expired))::timestamptz, min(x.age)::timestamptz "
        )
    return sql.SQL(
        "SELECT {leaf}, {first}, {last}, count(*), count(*) FILTER (WHERE x.expired), {figures}"
        "FROM (SELECT t.tableoid AS leaf, t.ctid AS tid, {age} AS age, {expired} AS expired, "
        "{held} AS held, {restricted} AS restricted FROM {from_}) AS x{group}"
    ).format(
        leaf=sql.SQL("x.leaf") if relation is None else sql.Literal(relation),
        first=sql.SQL(block.format("min", removable)),
        last=sql.SQL(block.format("max", removable)),
        figures=sql.SQL(figures),
        group=sql.SQL(" GROUP BY x.leaf" if relation is None else ""),
        age=survey_plan.age,
        expired=survey_plan.expired,
        held=survey_plan.held,
        restricted=survey_plan.restricted,
        from_=survey_plan.from_,
    )


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b > a) else a


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b < a) else a


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)
