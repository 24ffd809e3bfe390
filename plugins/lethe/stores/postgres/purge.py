"""Retention on one table: count what has expired (:func:`survey`), then remove it
(:func:`purge`).

The survey is one pass over the table. The purge drops the month partitions wholly
before the earliest cutoff first (:mod:`~lethe.stores.postgres.partitions`), then removes
the rest in block ranges (:mod:`~lethe.stores.postgres.blocks`): one server-side statement
per short transaction, the table (or each partition that may hold an expired row) walked
once in physical order.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from psycopg import sql

from lethe.domain.counts import PurgeResult, Survey
from lethe.policy.models import Anonymise
from lethe.stores.postgres.blocks import purge_relation
from lethe.stores.postgres.partitions import drop_partitions, leaves_to_walk
from lethe.stores.postgres.plan import Plan, plan

if TYPE_CHECKING:
    from lethe.domain.cutoffs import Cutoff
    from lethe.domain.protection import Protection
    from lethe.policy.models import PostgresStore
    from lethe.stores.postgres.catalog import Table
    from lethe.stores.postgres.connection import Progress, Session

log = logging.getLogger(__name__)


def survey(
    session: Session, store: PostgresStore, table: Table, cutoff: Cutoff, protection: Protection
) -> Survey:
    """Count the table's rows, the expired ones and the protected ones among them."""
    survey_plan = plan(store, table, cutoff, protection)
    with session.cursor() as cur:
        cur.execute(_survey_sql(survey_plan), survey_plan.params)
        row = cur.fetchone()
    session.rollback()
    total, expired, held, restricted, newest, unaged, oldest_removable, oldest = row
    log.info(
        "Surveyed %s: %d rows, %d expired (%d held, %d restricted), %d unaged",
        store.table,
        total,
        expired,
        held,
        restricted,
        unaged,
    )
    return Survey(
        total=total,
        expired=expired,
        held=held,
        restricted=restricted,
        newest=_utc(newest),
        unaged=unaged,
        oldest_removable=_utc(oldest_removable),
        oldest=_utc(oldest),
    )


def purge(
    session: Session,
    store: PostgresStore,
    table: Table,
    cutoff: Cutoff,
    protection: Protection,
    *,
    batch_size: int,
    progress: Progress,
) -> PurgeResult:
    """Remove (or anonymise) every expired row that is neither held nor restricted.

    What is committed is counted in ``progress`` as it goes, for the caller's error.
    """
    purge_plan = plan(store, table, cutoff, protection)
    if protection.category_held:
        log.info("%s: the whole category is held; nothing purged", store.table)
    else:
        if store.partitioned_by_month:
            drop_partitions(session, store, table, purge_plan, cutoff, protection, progress)
        _purge_batches(session, store, table, cutoff, protection, purge_plan, batch_size, progress)
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
) -> None:
    """Delete (or anonymise) the removable rows left, walking the table (or each leaf
    partition that may hold one) in block ranges, one committed transaction each."""
    if table.relkind == "p":
        relations = leaves_to_walk(session, store, table, cutoff)
        plans = [plan(store, table, cutoff, protection, on=leaf) for leaf in relations]
    else:
        plans = [purge_plan]
    for leaf_plan in plans:
        progress.batch_rows += purge_relation(
            session, store, table, leaf_plan, batch_size=batch_size, progress=progress
        )


def _survey_sql(survey_plan: Plan) -> sql.Composable:
    """One pass over the table counting every figure of a :class:`Survey`."""
    return sql.SQL(
        "SELECT count(*), "
        "count(*) FILTER (WHERE x.expired), "
        "count(*) FILTER (WHERE x.expired AND x.held), "
        "count(*) FILTER (WHERE x.expired AND NOT x.held AND x.restricted), "
        "max(x.age)::timestamptz, "
        "count(*) FILTER (WHERE x.age IS NULL), "
        "(min(x.age) FILTER (WHERE x.expired AND NOT x.held AND NOT x.restricted))::timestamptz, "
        "(min(x.age) FILTER (WHERE NOT x.expired OR NOT (x.held OR x.restricted)))::timestamptz "
        "FROM (SELECT {age} AS age, {expired} AS expired, {held} AS held, "
        "{restricted} AS restricted FROM {from_}) AS x"
    ).format(
        age=survey_plan.age,
        expired=survey_plan.expired,
        held=survey_plan.held,
        restricted=survey_plan.restricted,
        from_=survey_plan.from_,
    )


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)
