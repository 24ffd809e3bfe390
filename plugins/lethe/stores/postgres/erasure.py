"""A subject's rows in one table: erased (:func:`erase`, with the redaction of mentions
in free text) and rectified (:func:`rectify`).

Erase deletes (or anonymises) the subject's unheld rows in batches with the purge's
key-array mechanics (:func:`~lethe.stores.postgres.batches.in_batches`), never dropping a
partition; then, for a store with ``free_text`` columns, one ``UPDATE ... SET c =
regexp_replace(c, <pattern>, '[removed]', 'gi')`` redacts the subject's e-mail addresses
and phone numbers (in any common written form) wherever they are mentioned in those
columns, in every unheld row of any subject and age (the pattern is built from escaped
values and bound as a parameter). Rectify locks, reads and updates the subject's unheld
rows in one statement (``WITH old AS (... FOR UPDATE) UPDATE ... RETURNING old``) and
returns SHA-256 hashes of the old and new values, never the values; it does not rewrite
free text.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from lethe.domain.counts import EraseResult, RectifyResult
from lethe.domain.identities import phone_parts, value_hash
from lethe.exceptions import StoreError
from lethe.policy.models import Anonymise
from lethe.stores.postgres.batches import in_batches
from lethe.stores.postgres.catalog import plain_types
from lethe.stores.postgres.connection import failure
from lethe.stores.postgres.predicates import (
    anonymised,
    count_rows,
    matches,
    relation,
    subject_filter,
)
from lethe.stores.postgres.subjects import COLLECT_BATCH_SIZE

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from lethe.domain.protection import Protection
    from lethe.policy.models import Category, PostgresStore
    from lethe.policy.vocabulary import Identity
    from lethe.stores.postgres.catalog import Table
    from lethe.stores.postgres.connection import Progress, Session

log = logging.getLogger(__name__)

#: Rows one transaction of a subject's erasure deletes or anonymises.
ERASE_BATCH_SIZE = 5_000
#: What a mention of an erased subject in free text is replaced with.
REDACTION_MARKER = "[removed]"
#: Between two digits of a phone number as people write it: up to three spaces, dots,
#: hyphens, slashes or brackets (``06-12 34 56 78``, ``+31 (0)6 12345678``).
_DIGIT_GAP = "[ .()/-]{0,3}"

# ================================================================================ erase


def erase(
    session: Session,
    store: PostgresStore,
    table: Table,
    subject: Mapping[Identity, frozenset[str]],
    mention: str | None,
    protection: Protection,
    *,
    batch_size: int,
    progress: Progress,
) -> EraseResult:
    """Delete (or anonymise) the subject's unheld rows, ``batch_size`` a transaction,
    then redact the ``mention`` pattern (when given) in the free-text columns.

    What is committed is counted in ``progress`` as it goes, for the caller's error.
    """
    anonymises = isinstance(store.on_expiry, Anonymise)
    withheld = redacted = 0
    params: dict[str, Any] = {}
    where = subject_filter(store, table, subject, params)
    if where is not None:
        if anonymises:
            done = anonymised(store, table, params)
            where = sql.SQL("{} AND NOT ({})").format(where, done)
        if protection.category_held:
            held: sql.Composable = sql.SQL("TRUE")
        else:
            held = matches(store, table, protection.held, "held", params)
        progress.action = "counting held rows"
        both = sql.SQL("{} AND {}").format(where, held)
        withheld = count_rows(session, store, both, params)
        session.rollback()
        if not protection.category_held:
            _erase_batches(session, store, table, where, held, params, batch_size, progress)
    if mention is not None and not protection.category_held:
        progress.action = "redacting mentions in free text"
        redacted = _redact(session, store, table, mention, protection)
    if anonymises:
        result = EraseResult(anonymised=progress.removed, withheld=withheld, redacted=redacted)
    else:
        result = EraseResult(removed=progress.removed, withheld=withheld, redacted=redacted)
    log.info(
        "Erased one subject from %s: %d rows removed, %d anonymised, %d withheld, "
        "%d rows redacted in free text (%d batches)",
        store.table,
        result.removed,
        result.anonymised,
        result.withheld,
        result.redacted,
        progress.batches,
    )
    return result


def _erase_batches(
    session: Session,
    store: PostgresStore,
    table: Table,
    where: sql.Composable,
    held: sql.Composable,
    params: dict[str, Any],
    batch_size: int,
    progress: Progress,
) -> None:
    """Delete (or anonymise) the subject's unheld rows, one committed batch at a time.

    ``where`` selects the subject's rows still to erase (for an anonymising store,
    those not anonymised yet); the purge's key-array mechanics do the rest.
    """
    table_relation = relation(store)
    select = sql.SQL(
        "SELECT {keys} FROM {relation} AS t WHERE {where} AND NOT {held} "
        "LIMIT {limit} FOR UPDATE OF t"
    ).format(
        keys=sql.SQL(", ").join(sql.Identifier("t", k) for k in store.key_columns),
        relation=table_relation,
        where=where,
        held=held,
        limit=sql.Placeholder("limit"),
    )
    in_batches(
        session,
        store,
        table,
        relation=table_relation,
        select=select,
        remaining=where,
        params=params,
        change_params=params,
        size=batch_size,
        label="erase batch",
        progress=progress,
    )


def _redact(
    session: Session, store: PostgresStore, table: Table, mention: str, protection: Protection
) -> int:
    """Replace every mention of the subject in the store's free-text columns, in one
    committed UPDATE over the unheld rows of any subject and any age.

    ``mention`` (a PostgreSQL regular expression built by :func:`mention_pattern`
    from escaped values) and the marker are bound parameters, matched
    case-insensitively.

    :return: the rows changed.
    """
    params: dict[str, Any] = {"mention": mention, "marker": REDACTION_MARKER}
    held = matches(store, table, protection.held, "held", params)
    query = sql.SQL(
        "UPDATE {relation} AS t SET {assignments} WHERE ({mentioned}) AND NOT {held}"
    ).format(
        relation=relation(store),
        assignments=sql.SQL(", ").join(
            sql.SQL("{} = regexp_replace({}, {}::text, {}::text, 'gi')").format(
                sql.Identifier(column),
                sql.Identifier("t", column),
                sql.Placeholder("mention"),
                sql.Placeholder("marker"),
            )
            for column in store.free_text
        ),
        mentioned=sql.SQL(" OR ").join(
            sql.SQL("{} ~* {}::text").format(
                sql.Identifier("t", column), sql.Placeholder("mention")
            )
            for column in store.free_text
        ),
        held=held,
    )
    with session.cursor() as cur:
        cur.execute(query, params)
        changed = cur.rowcount
    session.commit()
    return changed


def mention_pattern(subject: Mapping[Identity, frozenset[str]]) -> str | None:
    """A PostgreSQL regular expression (matched case-insensitively) for the subject's
    e-mail addresses and phone numbers as people write them in free text; None when the
    subject has neither.

    An address matches whole: not preceded by a character an address can hold, not
    followed by more of a domain (``jan@x.nl`` is not found in ``bjan@x.nl`` nor in
    ``jan@x.nl.example``). A phone number matches in any common written form: with ``+``,
    ``00`` or nothing before the country code, an optional ``(0)`` after it, or (for a
    number of the default region) with its trunk prefix instead (``06...``), and up to
    three spaces, dots, hyphens, slashes or brackets between any two digits; never as
    part of a longer number. Only escaped values and fixed syntax go into it.
    """
    from lethe.policy.vocabulary import Identity

    alternatives = []
    emails = sorted(v for v in subject.get(Identity.EMAIL, ()) if v.isascii())
    if emails:
        literal = "|".join(_as_literal(email) for email in emails)
        alternatives.append(rf"(?<![A-Za-z0-9._%+-])(?:{literal})(?![A-Za-z0-9-]|\.[A-Za-z0-9])")
    numbers = []
    for value in sorted(subject.get(Identity.PHONE, ())):
        parts = phone_parts(value)
        if parts is None:
            continue
        country, national, trunk = parts
        if not (country + national).isdigit() or not country.isascii():
            continue
        prefixes = [rf"(?:(?:\+|00) ?)?{country}{_DIGIT_GAP}(?:\(0\){_DIGIT_GAP})?"]
        if trunk and trunk.isdigit():
            prefixes.append(rf"\(?{trunk}{_DIGIT_GAP}")
        digits = _DIGIT_GAP.join(national)
        numbers.append(f"(?:{'|'.join(prefixes)}){digits}")
    if numbers:
        alternatives.append(rf"(?<![0-9+])(?:{'|'.join(numbers)})(?![0-9])")
    if not alternatives:
        return None
    return "|".join(f"(?:{alternative})" for alternative in alternatives)


def _as_literal(text: str) -> str:
    """``text`` as a PostgreSQL regular expression matching exactly it: every character
    but an ASCII letter or digit escaped (a backslash before a non-alphanumeric character
    is always that character)."""
    return "".join(c if c.isascii() and c.isalnum() else "\\" + c for c in text)


# ================================================================================ rectify


@contextlib.contextmanager
def rectifying(
    session: Session, store: PostgresStore, progress: Progress, columns: list[str]
) -> Iterator[None]:
    """Run a rectification, then close the session; any failure rolls back everything.

    A database failure ends in a :class:`StoreError` naming ``progress.action``, or the
    column the server names (never its value).
    """
    try:
        yield
    except psycopg.Error as exc:
        session.abandon()
        column = getattr(getattr(exc, "diag", None), "column_name", None)
        if column in columns:
            progress.action = f"rectifying column {column}"
        raise StoreError(failure(store, progress.action, exc)) from None
    except StoreError:
        session.abandon()
        raise
    finally:
        session.close()


def rectify(
    session: Session,
    store: PostgresStore,
    category: Category,
    table: Table,
    subject: Mapping[Identity, frozenset[str]],
    changes: Mapping[str, Any],
    protection: Protection,
    progress: Progress,
) -> RectifyResult:
    """Set ``changes`` on the subject's unheld rows in one transaction; hash the old and
    new values. Run it in :func:`rectifying`, which reads ``progress.action`` on failure.
    """
    columns = list(changes)
    missing = [column for column in columns if column not in table.columns]
    if missing:
        session.rollback()
        raise StoreError(
            f"table {store.table} has no column {', '.join(missing)} "
            f"(named rectifiable by the policy of category {category.id})"
        )
    params: dict[str, Any] = {}
    where = subject_filter(store, table, subject, params)
    if where is None:
        session.rollback()
        return RectifyResult()
    types = plain_types(session, table, columns)
    new_hashes: dict[str, str] = {}
    for index, column in enumerate(columns):
        progress.action = f"rectifying column {column} (the new value)"
        params[f"new{index}"] = changes[column]
        with session.cursor() as cur:
            cur.execute(
                sql.SQL("SELECT CAST({} AS {})").format(
                    sql.Placeholder(f"new{index}"), sql.SQL(types[column])
                ),
                {f"new{index}": changes[column]},
            )
            (stored,) = cur.fetchone()
        new_hashes[column] = value_hash(stored)
    if protection.category_held:
        held: sql.Composable = sql.SQL("TRUE")
    else:
        held = matches(store, table, protection.held, "held", params)
    progress.action = "rectify (counting held rows)"
    withheld = count_rows(session, store, sql.SQL("{} AND {}").format(where, held), params)
    rows = 0
    old: dict[str, set[str]] = {column: set() for column in columns}
    if not protection.category_held:
        progress.action = f"rectifying column(s) {', '.join(columns)}"
        query = _rectify_sql(store, columns, types, where, held)
        with session.cursor() as cur:
            cur.execute(query, params)
            while batch := cur.fetchmany(COLLECT_BATCH_SIZE):
                for values in batch:
                    rows += 1
                    for column, value in zip(columns, values, strict=True):
                        old[column].add(value_hash(value))
    session.commit()
    if not rows:
        result = RectifyResult(withheld=withheld)
    else:
        result = RectifyResult(
            rows=rows,
            old_hashes={column: sorted(old[column]) for column in columns},
            new_hashes=new_hashes,
            withheld=withheld,
        )
    log.info(
        "Rectified %d columns of %s for one subject: %d rows updated, %d withheld",
        len(columns),
        store.table,
        result.rows,
        result.withheld,
    )
    return result


def _rectify_sql(
    store: PostgresStore,
    columns: list[str],
    types: Mapping[str, str],
    where: sql.Composable,
    held: sql.Composable,
) -> sql.Composable:
    """One statement: lock the subject's unheld rows, update them, return old values.

    ``WITH old AS (SELECT <keys>, <columns> ... FOR UPDATE) UPDATE <table> AS u SET
    ... FROM old WHERE <keys match> RETURNING <old values>``.
    """
    keys = store.key_columns
    key_aliases = [f"lethe_key{index}" for index in range(len(keys))]
    old_aliases = [f"lethe_old{index}" for index in range(len(columns))]
    return sql.SQL(
        "WITH old AS (SELECT {selected} FROM {relation} AS t WHERE {where} AND NOT {held} "
        "FOR UPDATE OF t) "
        "UPDATE {relation} AS u SET {assignments} FROM old WHERE {join} RETURNING {old}"
    ).format(
        selected=sql.SQL(", ").join(
            [
                *(
                    sql.SQL("{} AS {}").format(sql.Identifier("t", key), sql.Identifier(alias))
                    for key, alias in zip(keys, key_aliases, strict=True)
                ),
                *(
                    sql.SQL("{} AS {}").format(sql.Identifier("t", column), sql.Identifier(alias))
                    for column, alias in zip(columns, old_aliases, strict=True)
                ),
            ]
        ),
        relation=relation(store),
        where=where,
        held=held,
        assignments=sql.SQL(", ").join(
            sql.SQL("{} = CAST({} AS {})").format(
                sql.Identifier(column),
                sql.Placeholder(f"new{index}"),
                sql.SQL(types[column]),
            )
            for index, column in enumerate(columns)
        ),
        join=sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier("u", key), sql.Identifier("old", alias))
            for key, alias in zip(keys, key_aliases, strict=True)
        ),
        old=sql.SQL(", ").join(sql.Identifier("old", alias) for alias in old_aliases),
    )
