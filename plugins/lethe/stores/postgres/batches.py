"""Deleting (or anonymising) one subject's rows in bounded batches, one short transaction
each (:func:`in_batches`, for an erasure; a purge walks block ranges instead, see
:mod:`~lethe.stores.postgres.blocks`).

Each batch reads the next keys in a ``SELECT ... LIMIT ... FOR UPDATE`` the caller
writes, then deletes or anonymises exactly those rows through typed ``unnest`` key
arrays, and commits. The loop ends with the first short batch. Progress is logged at
INFO (counts only): the first batch, then at most every :data:`PROGRESS_INTERVAL`
seconds.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from psycopg import sql

from lethe.exceptions import StoreError
from lethe.policy.models import Anonymise

if TYPE_CHECKING:
    from collections.abc import Mapping

    from lethe.policy.models import PostgresStore
    from lethe.stores.postgres.catalog import Table
    from lethe.stores.postgres.connection import Progress, Session

log = logging.getLogger(__name__)

#: Seconds between two INFO lines of a purge's batch progress (the first batch is logged).
PROGRESS_INTERVAL = 10.0


def in_batches(
    session: Session,
    store: PostgresStore,
    table: Table,
    *,
    relation: sql.Composable,
    select: sql.Composable,
    remaining: sql.Composable,
    params: dict[str, Any],
    change_params: Mapping[str, Any],
    size: int,
    label: str,
    progress: Progress,
) -> int:
    """Delete (or anonymise) the rows ``select`` picks, one committed batch at a time.

    Each batch reads the next ``size`` keys (``select``, bound with ``params`` and
    ``limit``), then deletes or anonymises exactly those rows through typed key arrays
    (bound with ``change_params``); anonymised rows must no longer match ``remaining``.
    The loop ends with the first short batch, or one that changed nothing.

    :param label: names the batches in ``progress.action`` and the log.
    :return: the rows deleted or anonymised.
    """
    these, key_names = _these_keys(store, table)
    if isinstance(store.on_expiry, Anonymise):
        change = _anonymise_update(store, table, relation, these)
        # Anonymised rows must stop matching, or the loop would never end.
        verify = sql.SQL("SELECT count(*) FROM {} AS t WHERE {} AND {}").format(
            relation, these, remaining
        )
    else:
        change = sql.SQL("DELETE FROM {} WHERE {}").format(relation, these)
        verify = None
    total = 0
    last_logged = time.monotonic()
    while True:
        progress.action = f"{label} {progress.batches + 1}"
        with session.cursor() as cur:
            cur.execute(select, {**params, "limit": size})
            found = cur.fetchall()
            if not found:
                session.rollback()
                return total
            progress.pending = len(found)
            columns_of_keys = zip(*found, strict=True)
            batch = {n: list(v) for n, v in zip(key_names, columns_of_keys, strict=True)}
            cur.execute(change, {**change_params, **batch})
            changed = cur.rowcount
            if verify is not None:
                cur.execute(verify, {**params, **batch})
                (unchanged,) = cur.fetchone()
                if unchanged:
                    raise StoreError(
                        f"anonymising {store.table} left {unchanged} rows unchanged "
                        f"(a replacement value does not round-trip in its column)"
                    )
        session.commit()
        progress.pending = 0
        progress.removed += changed
        progress.batches += 1
        total += changed
        # Progress of a long purge at the level operators run at: counts only, the first
        # batch and then at most one line per PROGRESS_INTERVAL seconds.
        now = time.monotonic()
        if progress.batches == 1 or now - last_logged >= PROGRESS_INTERVAL:
            last_logged = now
            log.info(
                "%s: %s %d done: %d rows in it, %d so far",
                store.table,
                label,
                progress.batches,
                changed,
                total,
            )
        if len(found) < size or changed == 0:
            return total


def _these_keys(store: PostgresStore, table: Table) -> tuple[sql.Composable, list[str]]:
    """``(k1, k2) IN (SELECT * FROM unnest(%(key0)s::<type>[], ...))`` and the names of
    its parameters: exactly the rows of one batch, by their key columns."""
    keys = store.key_columns
    key_names = [f"key{index}" for index in range(len(keys))]
    these = sql.SQL("({columns}) IN (SELECT * FROM unnest({arrays}))").format(
        columns=sql.SQL(", ").join(sql.Identifier(k) for k in keys),
        arrays=sql.SQL(", ").join(
            sql.SQL("{}::{}[]").format(sql.Placeholder(n), sql.SQL(table.columns[k].type))
            for n, k in zip(key_names, keys, strict=True)
        ),
    )
    return these, key_names


def _anonymise_update(
    store: PostgresStore, table: Table, relation: sql.Composable, these: sql.Composable
) -> sql.Composable:
    """``UPDATE <table> SET a = CAST(%(anon0)s AS <type>), ... WHERE <these>``."""
    columns = list(store.on_expiry.anonymise)
    return sql.SQL("UPDATE {} SET {} WHERE {}").format(
        relation,
        sql.SQL(", ").join(
            sql.SQL("{} = CAST({} AS {})").format(
                sql.Identifier(column),
                sql.Placeholder(f"anon{index}"),
                sql.SQL(table.columns[column].type),
            )
            for index, column in enumerate(columns)
        ),
        these,
    )
