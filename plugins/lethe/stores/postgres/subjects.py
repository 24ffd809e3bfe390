"""A subject's rows in one table: exported (:func:`collect`) and followed to the
subject's other identities (:func:`resolve`).

Both find the rows with :func:`~lethe.stores.postgres.predicates.subject_filter`. Collect
is one query, every column in ordinal order, read from a server-side cursor in batches and
written one by one; held rows are only counted. Resolve follows the store's declared
``links``: ``SELECT DISTINCT`` of the revealed columns for the known values, normalised
as identities.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from psycopg import sql

from lethe.domain.counts import CollectResult
from lethe.domain.identities import InvalidIdentity, normalise
from lethe.stores.postgres.predicates import (
    count_rows,
    identity_text,
    matches,
    relation,
    subject_filter,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from lethe.domain.protection import Protection
    from lethe.policy.models import Category, PostgresStore
    from lethe.policy.vocabulary import Identity
    from lethe.stores.base import ExportSink, RowSink
    from lethe.stores.postgres.catalog import Table
    from lethe.stores.postgres.connection import Session

log = logging.getLogger(__name__)

#: Rows one round trip of a collect fetches from its server-side cursor.
COLLECT_BATCH_SIZE = 2_000
#: The name of a collect's server-side cursor (one per connection at a time).
_COLLECT_CURSOR = "lethe_collect"


def collect(
    session: Session,
    store: PostgresStore,
    category: Category,
    table: Table,
    subject: Mapping[Identity, frozenset[str]],
    protection: Protection,
    sink: ExportSink,
    *,
    batch_size: int,
) -> CollectResult:
    """Write the subject's unheld rows to ``sink``, ``batch_size`` rows a round trip;
    count the held ones."""
    params: dict[str, Any] = {}
    where = subject_filter(store, table, subject, params)
    if where is None:
        result = CollectResult()  # no value can be held by the columns' types
    elif protection.category_held:
        result = CollectResult(withheld=count_rows(session, store, where, params))
    else:
        result = _stream_rows(
            session, store, category, table, where, params, protection, sink, batch_size
        )
    session.rollback()
    log.info(
        "Collected %s for one subject: %d rows, %d withheld",
        store.table,
        result.rows,
        result.withheld,
    )
    return result


def _stream_rows(
    session: Session,
    store: PostgresStore,
    category: Category,
    table: Table,
    where: sql.Composable,
    params: dict[str, Any],
    protection: Protection,
    sink: ExportSink,
    batch_size: int,
) -> CollectResult:
    """Read the selected rows through a server-side cursor and write the unheld ones."""
    columns = list(table.columns)
    held = matches(store, table, protection.held, "held", params)
    query = sql.SQL(
        "SELECT {columns}, {held} AS lethe_held FROM {relation} AS t WHERE {where} ORDER BY {keys}"
    ).format(
        columns=sql.SQL(", ").join(sql.Identifier("t", column) for column in columns),
        held=held,
        relation=relation(store),
        where=where,
        keys=sql.SQL(", ").join(sql.Identifier("t", k) for k in store.key_columns),
    )
    with session.cursor() as cur:
        # Every row will be read: plan for all of them, not for a fast first batch.
        cur.execute("SELECT pg_catalog.set_config('cursor_tuple_fraction', '1', true)")
    written = withheld = 0
    with contextlib.ExitStack() as stack:
        cur = stack.enter_context(session.named(_COLLECT_CURSOR))
        cur.execute(query, params)
        writer: RowSink | None = None
        while batch := cur.fetchmany(batch_size):
            for *values, is_held in batch:
                if is_held:
                    withheld += 1
                    continue
                if writer is None:
                    writer = stack.enter_context(sink.rows(category, store, columns))
                writer.write(dict(zip(columns, values, strict=True)))
                written += 1
    return CollectResult(rows=written, withheld=withheld)


def resolve(
    session: Session,
    store: PostgresStore,
    table: Table,
    known: Mapping[Identity, frozenset[str]],
) -> dict[Identity, set[str]]:
    """Identities the store's links reveal for the ``known`` ones, normalised; stored
    values that are not valid identities are left out (and counted in the log)."""
    found: dict[Identity, set[str]] = {}
    invalid = followed = 0
    for link in store.links:
        if not known.get(link.known):
            continue
        params: dict[str, Any] = {}
        where = subject_filter(store, table, {link.known: known[link.known]}, params)
        if where is None:
            continue  # no known value fits the columns' types
        reveals = [s for s in store.subject if s.identity in link.reveals]
        query = sql.SQL("SELECT DISTINCT {columns} FROM {relation} AS t WHERE {where}").format(
            columns=sql.SQL(", ").join(identity_text(table, s.column) for s in reveals),
            relation=relation(store),
            where=where,
        )
        with session.cursor() as cur:
            cur.execute(query, params)
            rows = cur.fetchall()
        followed += 1
        for row in rows:
            for selector, value in zip(reveals, row, strict=True):
                if value is None:
                    continue
                try:
                    identity = normalise(selector.identity, value, strict=False)
                except InvalidIdentity:
                    invalid += 1
                    continue
                found.setdefault(selector.identity, set()).add(identity)
    session.rollback()
    log.info(
        "Resolved %s: %d links followed, %d identities revealed, %d stored values skipped "
        "as not valid identities",
        store.table,
        followed,
        sum(len(values) for values in found.values()),
        invalid,
    )
    return found
